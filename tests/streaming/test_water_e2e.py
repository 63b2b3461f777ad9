"""End to end on a seeded water-meter simulation: exact Iceberg rows, dead letters per reason,
every window's count/sum/consumption (register resets included), exactly the injected alerts,
duplicates counted once, late readings counted and kept in the lake."""

from __future__ import annotations

import math
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from meterflow.spec import MeterPipeline
from meterflow.stack.broker import BrokerInfo
from tests.conftest import unique_pipeline, write_manifest
from tests.streaming import checks
from tests.streaming.expected import ONE_PARTITION, Expected, compute, instant
from tests.streaming.harness import dead_letters, lake, meterflow, rows, simulate

pytestmark = [pytest.mark.integration, pytest.mark.flink]

START = "2024-05-01T00:00:00+00:00"


@pytest.fixture(scope="module")
def water(
    broker: BrokerInfo, tmp_path_factory: pytest.TempPathFactory
) -> tuple[MeterPipeline, Expected, dict[str, Any]]:
    """One simulation (60 meters, one day, every injection) run through the job to idle."""
    out = tmp_path_factory.mktemp("water")
    pipeline = unique_pipeline("water-meters", source=ONE_PARTITION, flink={"checkpointInterval": "2s"})
    manifest = write_manifest(pipeline, out)
    truth = simulate(manifest, out, "--meters", "60", "--duration", "1d", "--seed", "11", "--start", START)
    meterflow("run", "-f", str(manifest), "--until-idle")
    return pipeline, compute(pipeline, out / "records.jsonl", truth), truth


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
    by_reason = {d["reason"]: d for d in letters}
    counters = dict(rows(pipeline, "SELECT counter, sum(value) FROM ingest_counters FINAL GROUP BY counter"))
    for reason, count in expected.dlq_by_reason.items():
        assert counters[f"dlq:{reason}"] == count, reason
    assert by_reason["bad_json"]["detail"].startswith("not valid JSON")


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
    actual = {
        (m, t, s, ws): (n, total, lo, hi, cons)
        for m, t, s, ws, n, total, lo, hi, cons in rows(
            pipeline,
            "SELECT meter_id, measurement_type, series, window_start, readings, sum, min, max, consumption "
            "FROM readings_agg FINAL",
        )
    }
    assert set(actual) == set(expected.windows)
    for key, window in expected.windows.items():
        n, total, lo, hi, cons = actual[key]
        assert n == window.readings, key
        assert math.isclose(total, window.total, rel_tol=1e-9, abs_tol=1e-9), key
        assert (lo, hi) == (window.lowest, window.highest), key
        if window.consumption is None:
            assert cons is None, key
        else:
            assert math.isclose(cons, window.consumption, rel_tol=1e-9, abs_tol=1e-9), key


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
        "lake": lake(pipeline).num_rows,
    }
