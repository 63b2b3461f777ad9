"""Restart safety of the streaming job (issue 3) on water meters.

* A run killed hard mid-stream (SIGKILL to its process group: the CLI and its JVM, as a crash
  would) and run again to idle ends with exactly what one clean run over the same records gives:
  every window, alert and counter in ClickHouse, every Iceberg row once.
* A continuous run after an ``--until-idle`` run keeps running and processes new readings
  (restoring a drained savepoint used to finish the job at once), and Ctrl-C stops it cleanly.

Running ``--until-idle`` twice over the same input is test_water_e2e.test_a_second_run_changes_nothing.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from meterflow.spec import MeterPipeline, names_for
from meterflow.stack.broker import BrokerInfo
from tests.conftest import unique_pipeline, write_manifest
from tests.streaming import checks
from tests.streaming.expected import ONE_PARTITION, Expected, compute, instant
from tests.streaming.harness import Process, await_event, flatten, group_gone, lake, meterflow, rows, simulate

pytestmark = [pytest.mark.integration, pytest.mark.flink]

START = "2024-05-01T00:00:00+00:00"
SIMULATION = ("--meters", "20", "--duration", "2d", "--seed", "5", "--start", START)
"""20 meters x 2 days: about 7,800 records (every injection)."""
RATE = "200"
"""Readings per second of the paced simulation: about 40 s of input, so the kill lands mid-stream."""
KILL_AFTER_ROWS = 1_500
"""Kill the first run once this many readings are committed to the lake (a checkpoint completed)."""
FLINK = {"parallelism": 1, "checkpointInterval": "2s"}


# --- restart after a crash ---------------------------------------------------------------------


@dataclass
class Outcome:
    """What ClickHouse and Iceberg hold after one pipeline's runs, read once."""

    windows: set[tuple[Any, ...]]
    alerts: set[tuple[Any, ...]]
    totals: list[tuple[Any, ...]]
    aggregates: list[tuple[Any, ...]]
    alert_count: int
    lake_keys: list[tuple[Any, ...]]
    late_keys: set[tuple[Any, ...]]


def _outcome(pipeline: MeterPipeline) -> Outcome:
    keys, late = checks.lake_keys(pipeline)
    return Outcome(
        windows=set(
            rows(
                pipeline,
                "SELECT meter_id, measurement_type, series, window_start, window_end, readings, round(sum, 6), "
                "round(min, 6), round(max, 6), round(consumption, 6) FROM readings_agg FINAL",
            )
        ),
        alerts=set(rows(pipeline, "SELECT meter_id, rule, series, event_time, value, suburb FROM alerts FINAL")),
        totals=rows(pipeline, "SELECT in_total, valid, dlq, on_time, late, duplicates FROM ingest_totals"),
        # the sum of sums exactly (as decimals): a float sum of ~5e9 depends on the order rows are read
        aggregates=rows(pipeline, "SELECT count(), sum(readings), sum(toDecimal128(sum, 6)) FROM readings_agg FINAL"),
        alert_count=rows(pipeline, "SELECT count() FROM alerts FINAL")[0][0],
        lake_keys=keys,
        late_keys=late,
    )


@dataclass
class Restart:
    crashed: MeterPipeline
    clean: MeterPipeline
    crashed_out: Path
    clean_out: Path
    lake_rows_at_kill: int
    simulator_running_at_kill: bool
    restart_output: str
    after_restart: Outcome
    after_clean: Outcome
    expected: Expected
    truth: dict[str, Any]


@pytest.fixture(scope="module")
def restart(broker: BrokerInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Restart]:
    """Pipeline 'crashed': a continuous run killed mid-stream, then a run to idle; pipeline 'clean':
    the same seed's records, one run to idle."""
    crashed_out = tmp_path_factory.mktemp("crashed")
    crashed = unique_pipeline("water-meters", source=ONE_PARTITION, flink=FLINK)
    manifest = write_manifest(crashed, crashed_out)
    job = Process("run", "-f", str(manifest))
    simulator: Process | None = None
    try:
        job.wait_for(r"streaming job \w+ running")
        simulator = Process(
            "simulate", "-f", str(manifest), "--inject", "--no-progress", "--rate", RATE,
            "--truth", str(crashed_out / "truth.json"), "--record", str(crashed_out / "records.jsonl"), *SIMULATION,
        )  # fmt: skip
        committed = await_event(
            "the first committed readings", lambda: lake(crashed).num_rows, lambda n: n >= KILL_AFTER_ROWS, [job]
        )
        simulator_running = simulator.running()
        assert job.running(), f"the continuous run ended by itself:\n{job.output}"
        job.kill_group(signal.SIGKILL)
        job.wait(timeout=60)
        assert group_gone(job.popen.pid, timeout=60), "the killed run's JVM is still alive"
        assert simulator.wait() == 0, simulator.output
    finally:
        job.stop()
        if simulator is not None:
            simulator.stop()
    truth = json.loads((crashed_out / "truth.json").read_text())
    restarted = meterflow("run", "-f", str(manifest), "--until-idle")
    after_restart = _outcome(crashed)

    clean_out = tmp_path_factory.mktemp("clean")
    clean = unique_pipeline("water-meters", source=ONE_PARTITION, flink=FLINK)
    clean_manifest = write_manifest(clean, clean_out)
    simulate(clean_manifest, clean_out, *SIMULATION)
    meterflow("run", "-f", str(clean_manifest), "--until-idle")
    yield Restart(
        crashed=crashed,
        clean=clean,
        crashed_out=crashed_out,
        clean_out=clean_out,
        lake_rows_at_kill=committed,
        simulator_running_at_kill=simulator_running,
        restart_output=restarted.stdout,
        after_restart=after_restart,
        after_clean=_outcome(clean),
        expected=compute(crashed, crashed_out / "records.jsonl", truth),
        truth=truth,
    )


def test_the_kill_landed_mid_stream(restart: Restart) -> None:
    assert restart.simulator_running_at_kill, "the simulator had finished before the kill: raise the duration"
    assert KILL_AFTER_ROWS <= restart.lake_rows_at_kill < restart.expected.unique
    # the run after the crash resumed from a checkpoint the killed run retained
    assert re.search(r"restored from ?\S*/checkpoints/", flatten(restart.restart_output)), restart.restart_output


def test_both_pipelines_got_the_same_records(restart: Restart) -> None:
    crashed = (restart.crashed_out / "records.jsonl").read_text()
    assert crashed == (restart.clean_out / "records.jsonl").read_text()
    assert len(crashed.splitlines()) == restart.truth["counts"]["total_records"]


def test_clickhouse_equals_a_clean_run(restart: Restart) -> None:
    crashed, clean = restart.after_restart, restart.after_clean
    assert crashed.totals == clean.totals
    assert crashed.aggregates == clean.aggregates
    assert crashed.alert_count == clean.alert_count
    assert crashed.windows == clean.windows
    assert crashed.alerts == clean.alerts


def test_clickhouse_equals_the_expectation(restart: Restart) -> None:
    """Not only equal to the clean run: both are right (no gap, nothing counted twice)."""
    expected, truth = restart.expected, restart.truth
    [(in_total, valid, dlq, on_time, late, duplicates)] = restart.after_restart.totals
    assert in_total == expected.records == truth["counts"]["total_records"]
    assert dlq == sum(expected.dlq_by_reason.values())
    assert (on_time + late, late, duplicates) == (expected.unique, len(expected.late), expected.duplicates)
    assert valid == on_time + late + duplicates
    [(count, readings, _)] = restart.after_restart.aggregates
    assert (count, readings) == (len(expected.windows), sum(w.readings for w in expected.windows.values()))
    assert {(m, rule, s, at) for m, rule, s, at, *_ in restart.after_restart.alerts} == expected.alerts


def test_lake_equals_a_clean_run_without_duplicates(restart: Restart) -> None:
    crashed, clean = restart.after_restart, restart.after_clean
    assert len(crashed.lake_keys) == len(set(crashed.lake_keys)) == restart.expected.unique
    assert len(clean.lake_keys) == len(set(clean.lake_keys)) == restart.expected.unique
    assert set(crashed.lake_keys) == set(clean.lake_keys)
    assert crashed.late_keys == clean.late_keys
    assert {(m, t, s, at.replace(tzinfo=None)) for m, t, s, at in crashed.late_keys} == {
        (r["meter_id"], r["measurement_type"], r["series"], r["at"]) for r in restart.expected.late
    }


# --- a continuous run after a run to idle --------------------------------------------------------


def test_a_continuous_run_after_a_run_to_idle_keeps_going(restart: Restart, broker: BrokerInfo, tmp_path: Path) -> None:
    """The clean pipeline was run ``--until-idle``; a continuous run resumes from the savepoint taken
    before the drain, stays up, lands new readings and stops with exit 0 on Ctrl-C."""
    pipeline = restart.clean
    before = len(restart.after_clean.lake_keys)
    end = instant(restart.truth["end"])
    meters = sorted({t["meter_id"] for t in restart.truth["triggers"]} - set(restart.truth["unknown_meter_ids"]))[:3]
    new = [
        {
            "meter_id": meter,
            "timestamp": (end + timedelta(minutes=15 * k)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "measurement_type": "Pulse1",
            "series": "P1",
            "unit": "L",
            "value": 12.5 + k,
        }
        for k in range(1, 3)  # in event-time order: on one partition a later reading moves the
        for meter in meters  # watermark past an earlier one sent after it, which is then late
    ]
    job = Process("run", "-f", str(write_manifest(pipeline, tmp_path)))
    try:
        job.wait_for(r"Flink log:")  # printed after the line saying what was restored
        assert re.search(r"restored from ?\S*/savepoints/", job.flat), job.output
        time.sleep(5)  # a job restored from a drained savepoint would have finished by now
        assert job.running(), f"the continuous run ended by itself:\n{job.output}"
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
        for reading in new:
            producer.send(
                names_for(pipeline).topics.readings,
                key=reading["meter_id"].encode(),
                value=json.dumps(reading).encode(),
            )
        producer.flush()
        producer.close()
        table = await_event(
            "the new readings in the lake", lambda: lake(pipeline), lambda t: t.num_rows >= before + len(new), [job]
        )
        assert table.num_rows == before + len(new), job.output
        landed = {
            (r["meter_id"], r["event_time"].replace(tzinfo=None), r["value"], r["late"])
            for r in table.to_pylist()
            if r["event_time"].replace(tzinfo=None) > end
        }
        assert landed == {(r["meter_id"], instant(r["timestamp"]), r["value"], False) for r in new}
        assert job.running(), f"the continuous run ended by itself:\n{job.output}"
        job.kill_group(signal.SIGINT)  # Ctrl-C in a terminal signals the whole foreground group
        try:
            code = job.wait(timeout=180)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the run did not stop within 180 s of Ctrl-C:\n{job.output}")
        assert code == 0, job.output
        assert "stopping (interrupted)" in job.output
    finally:
        job.stop()
