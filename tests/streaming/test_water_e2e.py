"""End to end on a seeded water-meter simulation: exact Iceberg rows, dead letters per reason (in
ClickHouse too, each with its meter and instant), every window's count/sum/consumption (register
resets included), exactly the injected alerts,
duplicates counted once, late readings counted and kept in the lake — and the run's Prometheus
metrics, scraped while it runs and as it left them, equal to the same truth."""

from __future__ import annotations

import json
import math
import re
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from meterflow.metrics import Samples, catalogue, last_run_path, run_info_path, scrape
from meterflow.spec import MeterPipeline
from meterflow.stack.broker import BrokerInfo
from tests.conftest import unique_pipeline, write_manifest
from tests.streaming import checks
from tests.streaming.expected import ONE_PARTITION, Expected, compute, instant
from tests.streaming.harness import Process, dead_letters, keyed_dead_letters, lake, meterflow, rows, simulate

pytestmark = [pytest.mark.integration, pytest.mark.flink]

START = "2024-05-01T00:00:00+00:00"
MAX_METER_ID = 128  # restated: the job's limit (meterflow.reading), not imported


@dataclass
class WaterRun:
    """The simulation, its truth, and what the run's metrics endpoints said."""

    pipeline: MeterPipeline
    manifest: Path
    expected: Expected
    truth: dict[str, Any]
    live: Samples
    """meterflow's /metrics once it had counted every record, scraped while the run ran."""
    flink: str
    """Flink's reporter's text, scraped at the same moment."""


@pytest.fixture(scope="module")
def water_run(broker: BrokerInfo, tmp_path_factory: pytest.TempPathFactory) -> WaterRun:
    """One simulation (60 meters, one day, every injection) run through the job to idle, its
    metrics scraped while it runs."""
    out = tmp_path_factory.mktemp("water")
    pipeline = unique_pipeline("water-meters", source=ONE_PARTITION, flink={"checkpointInterval": "2s"})
    manifest = write_manifest(pipeline, out)
    truth = simulate(manifest, out, "--meters", "60", "--duration", "1d", "--seed", "11", "--start", START)
    expected = compute(pipeline, out / "records.jsonl", truth)
    run = Process("run", "-f", str(manifest), "--until-idle")
    try:
        live, flink = _scrape_until_counted(pipeline, run, expected.records)
        assert run.wait(timeout=900) == 0, run.output
    finally:
        run.stop()
    return WaterRun(pipeline, manifest, expected, truth, live, flink)


def _scrape_until_counted(pipeline: MeterPipeline, run: Process, records: int) -> tuple[Samples, str]:
    """Scrape the run's endpoints until they count ``records`` readings in and a checkpoint: the
    run stops by itself once idle, so this polls only while it runs (the counts settle seconds
    before it drains and stops)."""
    last: Samples | None = None
    while run.running():
        try:
            info = json.loads(run_info_path(pipeline.name).read_text())
            last = Samples.parse(scrape(info["metrics"], timeout=10))
            if (
                last.value("meterflow_readings_total") == records
                and last.value("meterflow_job_up") == 1
                and (last.value("meterflow_checkpoints_total", outcome="completed") or 0) > 0
                and last.value("meterflow_job_restarts_total") is not None
                and len(last.by("meterflow_sink_consumer_lag", "topic")) == 5
            ):
                return last, scrape(info["flink_metrics"], timeout=10)
        except (OSError, ValueError, KeyError):
            pass  # not serving yet
        time.sleep(0.3)
    raise AssertionError(
        f"the run ended before its metrics counted {records} records in (last scrape: "
        f"{last.value('meterflow_readings_total') if last else None}):\n{run.output}"
    )


@pytest.fixture(scope="module")
def water(water_run: WaterRun) -> tuple[MeterPipeline, Expected, dict[str, Any]]:
    return water_run.pipeline, water_run.expected, water_run.truth


def test_metrics_scraped_during_the_run_are_exact(water_run: WaterRun) -> None:
    """readings in = the records sent, dead letters by reason = the injections, late and
    duplicates as injected; the job RUNNING with a checkpoint; every metric of the catalogue's
    run part exported, and nothing else."""
    live, expected, truth, name = water_run.live, water_run.expected, water_run.truth, water_run.pipeline.name
    assert live.value("meterflow_readings_total", pipeline=name) == expected.records == truth["counts"]["total_records"]
    assert live.by("meterflow_dead_letters_total", "reason") == expected.dlq_by_reason
    assert sum(expected.dlq_by_reason.values()) == truth["counts"]["malformed"]
    assert live.value("meterflow_readings_late_total") == len(expected.late) == truth["counts"]["late"]
    assert live.value("meterflow_readings_duplicate_total") == expected.duplicates == truth["counts"]["duplicate"]
    assert live.value("meterflow_readings_on_time_total") == expected.unique - len(expected.late)
    assert live.value("meterflow_readings_valid_total") == expected.records - sum(expected.dlq_by_reason.values())
    assert live.by("meterflow_job_state", "state")["RUNNING"] == 1
    assert sum(live.by("meterflow_job_state", "state").values()) == 1
    assert live.value("meterflow_job_restarts_total") == 0
    assert (live.value("meterflow_checkpoint_duration_seconds") or 0) > 0
    topics = {f"{name}.{t}" for t in ("aggregates", "alerts", "counters", "meters", "readings.dlq")}
    assert set(live.by("meterflow_sink_consumer_lag", "topic")) == topics
    assert {s.labels["pipeline"] for s in live.samples} == {name}
    assert live.families == {m.name: m.kind for m in catalogue("run")}


FLINK_METRICS_USED = (
    "flink_jobmanager_job_lastCheckpointDuration",
    "flink_jobmanager_job_numRestarts",
    "flink_taskmanager_job_task_operator_numRecordsIn",
    "flink_taskmanager_job_task_operator_currentOutputWatermark",
)
"""Flink's metrics that meterflow uses (the pipeline-health dashboard among them), each checked in a real scrape."""


def test_flinks_reporter_labels_every_metric_with_the_pipeline(water_run: WaterRun) -> None:
    flink = Samples.parse(water_run.flink)
    name = water_run.pipeline.name
    assert flink.samples and all(s.labels.get("pipeline") == name for s in flink.samples)
    for wanted in FLINK_METRICS_USED:
        assert flink.find(wanted), wanted


def test_the_run_leaves_its_final_metrics_and_status_reads_them(water_run: WaterRun) -> None:
    """After the run: last-run.prom holds its final values (job FINISHED, open alerts = ClickHouse's
    alerts_active), run.json is gone, and `meterflow status -f` reads the pipeline as healthy."""
    pipeline, name = water_run.pipeline, water_run.pipeline.name
    assert not run_info_path(name).exists()
    final = Samples.parse(last_run_path(name).read_text())
    assert final.value("meterflow_readings_total") == water_run.expected.records
    assert final.by("meterflow_job_state", "state")["FINISHED"] == 1
    active = dict(rows(pipeline, "SELECT rule, count() FROM alerts_active GROUP BY rule"))
    assert active, "the simulation left no alert open"
    assert final.by("meterflow_alerts_open", "rule") == active
    events = dict(rows(pipeline, "SELECT transition, count() FROM alert_events FINAL GROUP BY transition"))
    assert final.by("meterflow_alert_transitions_total", "transition") == events
    screen = meterflow("status", "-f", str(water_run.manifest)).stdout.splitlines()
    assert screen[0] == f"{name}: healthy"
    assert screen[2].startswith("  job         not running; the last run ended FINISHED at ")
    assert screen[3] == "  lag         readings 0 (job)"
    total = sum(active.values())
    assert f"  alerts      {total} open: " + ", ".join(f"{r} {n}" for r, n in sorted(active.items())) in screen
    text = meterflow("metrics", "-f", str(water_run.manifest)).stdout
    assert text.startswith(f"# {name} is not running: its metrics as they were when its last run stopped (")
    assert Samples.parse(text).value("meterflow_readings_total") == water_run.expected.records


def test_every_record_is_counted(water: tuple[MeterPipeline, Expected, dict[str, Any]]) -> None:
    checks.every_record_is_counted(*water)


def test_dead_letters_carry_reason_and_payload(
    water: tuple[MeterPipeline, Expected, dict[str, Any]], broker: BrokerInfo
) -> None:
    pipeline, expected, truth = water
    letters = dead_letters(pipeline, broker.bootstrap)
    assert Counter(d["reason"] for d in letters) == Counter(expected.dlq_by_reason)
    assert set(expected.dlq_by_reason) >= {"bad_json", "missing_field", "wrong_type", "not_finite", "out_of_range"}
    assert {d["payload"] for d in letters} == {m["payload"] for m in truth["malformed"]}
    assert all(d["detail"] for d in letters)
    counters = dict(rows(pipeline, "SELECT counter, sum(value) FROM ingest_counters FINAL GROUP BY counter"))
    for reason, count in expected.dlq_by_reason.items():
        assert counters[f"dlq:{reason}"] == count, reason
    # which bad_json letter a dict keeps depends on how the partitions interleave: ask for any
    assert any(d["detail"].startswith("not valid JSON") for d in letters if d["reason"] == "bad_json")


def _meter_of(malformed: dict[str, Any]) -> str:
    """The meter a dead letter names: the payload's meter id, else the record's key — and the
    simulator keys a malformed record by the meter id its payload names (by the meter it was made
    from when the payload names none), so the key is it either way; "" when that is too long."""
    key = str(malformed["key"])
    return key if len(key) <= MAX_METER_ID else ""


def _instant_of(malformed: dict[str, Any]) -> datetime | None:
    """The instant a dead letter names: the payload's timestamp, when the parser read it (not in a
    payload that is not UTF-8, nor after a meter id of the wrong type: the first field stops the
    parse) and it is ISO 8601 with an offset."""
    if malformed["payload_encoding"] != "utf-8" or malformed["variant"] == "meter_id_bool":
        return None
    found = re.search(r'"timestamp":"([^"]*)"', malformed["payload"])
    try:
        moment = datetime.fromisoformat(found.group(1).replace("Z", "+00:00")) if found else None
    except ValueError:
        return None
    return moment.astimezone(UTC).replace(tzinfo=None) if moment and moment.tzinfo else None


def test_dead_letters_name_their_meter_and_instant_in_clickhouse(
    water: tuple[MeterPipeline, Expected, dict[str, Any]], broker: BrokerInfo
) -> None:
    """Every dead letter is a row of dead_letters, once, with its meter and instant; on Kafka it is
    keyed by that meter (no key when it has none)."""
    pipeline, _, truth = water
    malformed = truth["malformed"]
    want = Counter((m["reason"], _meter_of(m), _instant_of(m), m["payload"]) for m in malformed)
    got = rows(pipeline, "SELECT reason, meter_id, event_time, payload FROM dead_letters FINAL")
    assert Counter(got) == want
    assert "" in {meter for _, meter, _, _ in want}  # the 160-character meter id: too long a key too
    assert {reason for reason, _, instant, _ in want if instant is not None} >= {
        "bad_json", "not_finite", "out_of_range", "future_timestamp", "too_old",
    }  # fmt: skip
    [(count, positions, sources)] = rows(
        pipeline,
        "SELECT count(), uniqExact(source_partition, source_offset), groupUniqArray(source) FROM dead_letters FINAL",
    )
    assert (count, positions, sources) == (len(malformed), len(malformed), ["kafka"])  # one row per refused record
    keyed = keyed_dead_letters(pipeline, broker.bootstrap)
    assert len(keyed) == len(malformed)
    assert all(key == (letter["meter_id"].encode() or None) for key, letter in keyed)


def test_lake_holds_every_unique_reading_once(water: tuple[MeterPipeline, Expected, dict[str, Any]]) -> None:
    pipeline, expected, _ = water
    checks.lake_holds_every_unique_reading_once(pipeline, expected)


def test_late_readings_are_counted_and_kept(water: tuple[MeterPipeline, Expected, dict[str, Any]]) -> None:
    pipeline, expected, _ = water
    table = lake(pipeline).to_pylist()
    late_rows = {
        (r["meter_id"], r["measurement_type"], r["event_time"].replace(tzinfo=None)) for r in table if r["late"]
    }
    assert late_rows == {(r["meter_id"], r["measurement_type"], r["at"]) for r in expected.late}
    # and none of them reached a window: every window count matches the on-time readings alone
    windows = rows(pipeline, "SELECT sum(readings) FROM readings_agg FINAL")
    assert windows[0][0] == sum(w.readings for w in expected.windows.values())


def test_every_window_matches(water: tuple[MeterPipeline, Expected, dict[str, Any]]) -> None:
    pipeline, expected, _ = water
    checks.every_window_matches(pipeline, expected, pipeline.spec.windows.size_ms / 1000)


def test_register_resets_do_not_leak(water: tuple[MeterPipeline, Expected, dict[str, Any]]) -> None:
    """The window holding an injected reset counts the flow since the reset: never the register's
    fall (a large negative) nor its value (a large positive)."""
    pipeline, expected, truth = water
    assert truth["resets"], "the simulation injected no register reset"
    for reset in truth["resets"]:
        at = instant(reset["timestamp"])
        key = next(
            k for k in expected.windows
            if k[0] == reset["meter_id"] and k[1] == "Pulse1_Total" and k[3] <= at < k[3] + timedelta(minutes=5)
        )  # fmt: skip
        [(consumption,)] = rows(
            pipeline,
            f"SELECT consumption FROM readings_agg FINAL WHERE meter_id = '{key[0]}' "
            f"AND measurement_type = 'Pulse1_Total' AND window_start = toDateTime64('{key[3]}', 3, 'UTC')",
        )
        assert math.isclose(consumption, expected.windows[key].consumption or 0.0, abs_tol=1e-9)
        assert 0 <= consumption < reset["before"], reset


def test_exactly_the_injected_alerts(water: tuple[MeterPipeline, Expected, dict[str, Any]]) -> None:
    """The example's stateful rules need more than a day (26 h of silence, 24 hours of flow, three
    nights), and its simulated day injects no episode: every alert is a trigger's."""
    pipeline, expected, truth = water
    checks.exactly_the_injected_alerts(pipeline, expected, truth)
    assert {e["kind"] for e in truth["skipped_episodes"]} == {"silent", "leak", "night_leak"}
    assert {a.kind for a in expected.episodes.values()} == {"threshold"}


def test_results_are_enriched(water: tuple[MeterPipeline, Expected, dict[str, Any]]) -> None:
    pipeline, _, truth = water
    labels = rows(pipeline, "SELECT DISTINCT meter_id, suburb, usage_type FROM readings_agg FINAL")
    unknown = set(truth["unknown_meter_ids"])
    assert unknown, "the simulation injected no meter without metadata"
    for meter, suburb, usage in labels:
        if meter in unknown:
            assert (suburb, usage) == ("unknown", "unknown")
        else:
            assert suburb != "unknown" and usage in {"Residential", "Non-Residential", "#N/A"}


def test_a_second_run_changes_nothing(water: tuple[MeterPipeline, Expected, dict[str, Any]], tmp_path: Path) -> None:
    pipeline, _, _ = water
    snapshot = _snapshot(pipeline)
    meterflow("run", "-f", str(write_manifest(pipeline, tmp_path)), "--until-idle")
    assert _snapshot(pipeline) == snapshot
    assert lake(pipeline).num_rows == snapshot["lake"]


def _snapshot(pipeline: MeterPipeline) -> dict[str, Any]:
    return {
        "aggs": rows(pipeline, "SELECT count(), sum(readings), sum(toDecimal128(sum, 6)) FROM readings_agg FINAL"),
        "alerts": rows(pipeline, "SELECT count() FROM alerts FINAL"),
        "totals": rows(pipeline, "SELECT * FROM ingest_totals"),
        "dead_letters": rows(
            pipeline, "SELECT reason, meter_id, count() FROM dead_letters FINAL GROUP BY ALL ORDER BY ALL"
        ),
        "lake": lake(pipeline).num_rows,
    }
