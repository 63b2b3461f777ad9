"""Faults a user makes with the CLI, without a streaming job (issue 11): each refused in one line.

* ``run`` before ``up`` says to run ``meterflow up`` and starts no broker; a Kafka that does not
  answer is one line too;
* a pipeline's lock names its holder, and dies with it (``kill -9``): ``reset`` of a running
  pipeline is refused, and allowed once the holder is gone;
* ``meterflow sql`` is read-only unless ``--write``; an empty query is a one-line error;
* a table dropped with ``sql --write`` is re-created by the next migration run (and fed again by
  its materialized view); a migration edited after it was applied is an error naming the file.

A second ``run`` of a running pipeline (with a real job) is in test_stream_faults.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from meterflow.spec import MeterPipeline, names_for
from meterflow.stack.endpoints import clickhouse_dsn
from meterflow.stack.lock import PipelineBusyError, hold_pipeline, lock_path
from meterflow_cli.app import main
from meterflow_clickhouse import migrate
from meterflow_clickhouse.client import ClickHouseError, session
from meterflow_clickhouse.migrate import apply_migrations
from tests.conftest import EXAMPLES, unique_pipeline, write_manifest

pytestmark = pytest.mark.integration

HOLDER = """
import sys, time
from meterflow.stack.lock import hold_pipeline
with hold_pipeline(sys.argv[1], "meterflow run -f pipeline.yaml"):
    print("held", flush=True)
    time.sleep(600)
"""


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"METERFLOW_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "meterflow_cli.app", *args], env=env, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip


@pytest.fixture
def holder(meterflow_home: Path) -> Iterator[tuple[MeterPipeline, subprocess.Popen[str]]]:
    """A process that holds a fresh pipeline's lock (as a running `meterflow run` does)."""
    pipeline = unique_pipeline("water-meters")
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, pipeline.name], stdout=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    assert process.stdout is not None and process.stdout.readline() == "held\n"
    yield pipeline, process
    process.kill()
    process.wait(timeout=30)


def test_run_without_up_says_to_start_the_broker(tmp_path: Path) -> None:
    result = _cli(tmp_path, "run", "-f", str(EXAMPLES / "water-meters.yaml"))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        f"meterflow: no Kafka broker is running for {tmp_path}; start it with `meterflow up` "
        "(or set spec.source.bootstrapServers)\n"
    )
    assert not (tmp_path / "kafka").exists()  # no broker was started behind the user's back


def test_run_against_a_kafka_that_does_not_answer_is_one_line(
    meterflow_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a broker killed while ``run`` starts looks like (found by ``make chaos``: a traceback)."""
    pipeline = unique_pipeline("water-meters", source={"bootstrapServers": "127.0.0.1:9"})  # nothing listens
    assert main(["run", "-f", str(write_manifest(pipeline, tmp_path))]) == 2
    err = capsys.readouterr().err
    assert err.startswith("meterflow: Kafka at 127.0.0.1:9 does not answer (")
    assert err.endswith("); is it up? see `meterflow status`\n") and err.count("\n") == 1


def test_the_lock_names_its_holder_and_dies_with_it(holder: tuple[MeterPipeline, subprocess.Popen[str]]) -> None:
    pipeline, process = holder
    with pytest.raises(PipelineBusyError) as refused, hold_pipeline(pipeline.name, "meterflow run"):
        pass
    message = str(refused.value)
    assert "\n" not in message
    assert re.fullmatch(
        rf"pipeline {pipeline.name} is busy: `meterflow run -f pipeline\.yaml` \(pid {process.pid}, since "
        rf"\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d\) holds it \({re.escape(str(lock_path(pipeline.name)))}\); "
        r"stop that one first \(Ctrl-C\) or wait for it",
        message,
    ), message

    process.send_signal(signal.SIGKILL)  # no clean-up at all: the kernel drops the flock
    process.wait(timeout=30)
    with hold_pipeline(pipeline.name, "meterflow run") as path:
        assert path == lock_path(pipeline.name)


def test_reset_of_a_running_pipeline_is_refused(
    holder: tuple[MeterPipeline, subprocess.Popen[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline, process = holder
    code = main(["reset", "-f", str(write_manifest(pipeline, tmp_path)), "--yes"])
    err = capsys.readouterr().err
    assert code == 2
    busy = f"meterflow: pipeline {pipeline.name} is busy: `meterflow run -f pipeline.yaml` (pid {process.pid}, since "
    assert err.startswith(busy)
    assert err.count("\n") == 1


# --- meterflow sql ------------------------------------------------------------------------------


@pytest.fixture
def served(meterflow_home: Path, tmp_path: Path) -> tuple[MeterPipeline, Path]:
    """A pipeline whose ClickHouse database exists (as after its first run), and its manifest."""
    pipeline = unique_pipeline("water-meters")
    apply_migrations(clickhouse_dsn(pipeline), names_for(pipeline).clickhouse_database)
    return pipeline, write_manifest(pipeline, tmp_path)


def _tables(pipeline: MeterPipeline) -> set[str]:
    with session(clickhouse_dsn(pipeline), database=names_for(pipeline).clickhouse_database) as client:
        found = client.query("SELECT name FROM system.tables WHERE database = currentDatabase()").result_rows
    return {r[0] for r in found}


def _sql(manifest: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["sql", "-f", str(manifest), *args])
    out, err = capsys.readouterr()
    return code, out, err


READ_ONLY = "meterflow: meterflow sql is read-only: the query would change data or schema; add --write to allow it\n"


@pytest.mark.parametrize(
    "query",
    [
        "DROP TABLE alerts",
        "INSERT INTO meters (meter_id) VALUES ('m1')",
        "ALTER TABLE alerts DELETE WHERE 1",
        "CREATE TABLE x (a Int8) ENGINE = Memory",
        "SELECT 1; DROP TABLE alerts",
    ],
)
def test_sql_is_read_only_by_default(
    served: tuple[MeterPipeline, Path], capsys: pytest.CaptureFixture[str], query: str
) -> None:
    pipeline, manifest = served
    before = _tables(pipeline)
    assert _sql(manifest, capsys, query) == (2, "", READ_ONLY)
    assert _tables(pipeline) == before
    code, out, _ = _sql(manifest, capsys, "SELECT count() AS n FROM meters", "--format", "csv")
    assert (code, out) == (0, "n\r\n0\r\n")  # the csv module ends lines with CRLF


def test_an_empty_query_is_one_line(served: tuple[MeterPipeline, Path], capsys: pytest.CaptureFixture[str]) -> None:
    _, manifest = served
    for query in ("", "   "):
        assert _sql(manifest, capsys, query) == (
            2,
            "",
            "meterflow: Invalid value for QUERY: the query is empty; give SQL, e.g. 'SELECT * FROM ingest_totals' "
            "(see `meterflow sql --help`)\n",
        )


def test_sql_help_says_read_only_and_write() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "meterflow_cli.app", "sql", "--help"], capture_output=True, text=True, timeout=120,
        env=os.environ | {"COLUMNS": "200"}, check=True,
    )  # fmt: skip
    assert "read-only unless --write" in result.stdout
    assert "--write" in result.stdout and "without it the query runs read-only" in result.stdout


def test_a_dropped_table_is_recreated_and_fed_again(
    served: tuple[MeterPipeline, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline, manifest = served
    database = names_for(pipeline).clickhouse_database
    assert _sql(manifest, capsys, "--write", "DROP TABLE alerts")[0] == 0
    assert _sql(manifest, capsys, "--write", "DROP TABLE readings_agg_queue")[0] == 0
    assert {"alerts", "readings_agg_queue"}.isdisjoint(_tables(pipeline))

    repaired = apply_migrations(clickhouse_dsn(pipeline), database)  # what the next `run` does first
    assert repaired == [
        "0001_speed_layer (recreated readings_agg_queue, alerts)",
        "0003_alert_lifecycle (altered alerts again)",  # the lifecycle's columns are back
    ]
    assert apply_migrations(clickhouse_dsn(pipeline), database) == []  # nothing left to repair
    with session(clickhouse_dsn(pipeline), database=database) as client:
        client.command(
            "INSERT INTO alert_transitions_queue (alert_id, transition, at, meter_id, rule, kind, series, "
            "measurement_type, unit, severity, state, event_time, last_seen, resolved_at, breaches, value, "
            "transition_value, last_value, peak_value, condition, threshold, escalated, acknowledged_by, "
            "acknowledged_at, by, detail, version) VALUES ('a1', 'OPENED', '2024-05-01 00:15:00', 'm1', "
            "'HIGH_FLOW', 'threshold', 'P1', 'Pulse1', 'L', 'WARNING', 'OPEN', '2024-05-01 00:15:00', "
            "'2024-05-01 00:15:00', NULL, 1, 600, 600, 600, 600, '>', 500, 0, '', NULL, '', '', 7)"
        )
        client.command(
            "INSERT INTO readings_agg_queue (meter_id, measurement_type, series, unit, window_start, window_end, "
            "readings, sum, avg, min, max, stddev, version) VALUES ('m1', 'Pulse1', 'P1', 'L', '2024-05-01 00:00:00', "
            "'2024-05-01 00:15:00', 1, 600, 600, 600, 600, 0, 7)"
        )
        alerts = client.query("SELECT meter_id, rule, suburb FROM alerts FINAL").result_rows
        windows = client.query("SELECT meter_id, readings, suburb FROM readings_agg FINAL").result_rows
        lifecycle = client.query("SELECT alert_id, kind, state, breaches FROM alerts FINAL").result_rows
    assert [tuple(r) for r in alerts] == [("m1", "HIGH_FLOW", "unknown")]  # through the materialized view
    assert [tuple(r) for r in lifecycle] == [("a1", "threshold", "OPEN", 1)]  # 0003's columns are back
    assert [tuple(r) for r in windows] == [("m1", 1, "unknown")]


def test_an_edited_migration_is_an_error_naming_its_file(
    served: tuple[MeterPipeline, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline, _ = served
    shipped = migrate.migrations()
    edited = [replace(m, sql=m.sql + "\n-- an edit\n") if m.version == 1 else m for m in shipped]
    monkeypatch.setattr(migrate, "migrations", lambda: edited)
    with pytest.raises(ClickHouseError) as refused:
        apply_migrations(clickhouse_dsn(pipeline), names_for(pipeline).clickhouse_database)
    assert str(refused.value) == (
        f"migration 0001_speed_layer.sql changed after it was applied to {names_for(pipeline).clickhouse_database}; "
        "add a new migration instead of editing an applied one"
    )
