"""The embedded engine, served: while one process holds chDB, every other process's session is
answered by it — no lock hand-over, the same client calls, ClickHouse's own errors."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from meterflow_clickhouse.client import session
from meterflow_clickhouse.served import RemoteClient, RemoteError, announcement

pytestmark = [pytest.mark.integration]

HOLDER = textwrap.dedent(
    """
    import sys, time
    from meterflow_clickhouse.client import HeldSession
    held = HeldSession(sys.argv[1], database=None)
    with held.lock:
        held.client().command("CREATE DATABASE IF NOT EXISTS served_test")
    print("holding", flush=True)
    sys.stdin.readline()   # until the test says stop
    held.close()
    print("closed", flush=True)
    """
)


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """A process that holds the engine at a fresh folder, like ``meterflow run``'s sink."""
    dsn = f"chdb://{tmp_path / 'ch'}"
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, dsn], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "holding"
    yield dsn, process
    if process.poll() is None:
        process.kill()
        process.wait()


def test_a_reader_is_served_by_the_holder(holder: tuple[str, subprocess.Popen[str]]) -> None:
    dsn, _ = holder
    with session(dsn, database="served_test") as client:
        assert isinstance(client, RemoteClient)
        client.command("CREATE TABLE t (meter String, value Float64) ENGINE = MergeTree ORDER BY meter")
        assert client.insert("t", [["M1", 1.5], ["M2", 2.5]], column_names=["meter", "value"]).written_rows == 2
        result = client.query("SELECT meter, value FROM t ORDER BY meter")
        assert result.column_names == ("meter", "value")
        assert result.result_rows == [("M1", 1.5), ("M2", 2.5)]
        assert list(result.named_results()) == [{"meter": "M1", "value": 1.5}, {"meter": "M2", "value": 2.5}]
        assert client.command("SELECT count() FROM t") == 2
        assert client.query_df("SELECT sum(value) AS total FROM t")["total"].tolist() == [4.0]
        with pytest.raises(RemoteError, match=r"UNKNOWN_TABLE|Unknown table"):
            client.query("SELECT * FROM missing")


def test_the_announcement_goes_with_the_holder(holder: tuple[str, subprocess.Popen[str]]) -> None:
    dsn, process = holder
    path = dsn.removeprefix("chdb://")
    info = json.loads(announcement(path).read_text())
    assert info["pid"] == process.pid
    assert announcement(path).stat().st_mode & 0o777 == 0o600
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write("stop\n")
    process.stdin.flush()
    assert process.stdout.readline().strip() == "closed"
    process.wait()
    assert not announcement(path).exists()
    # with nobody serving, a session opens the engine itself
    with session(dsn, database="served_test") as client:
        assert not isinstance(client, RemoteClient)
        assert client.command("SELECT 1") == 1


def test_an_announcement_left_by_a_dead_process_is_ignored(tmp_path: Path) -> None:
    path = str(tmp_path / "ch")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], check=True, capture_output=True, text=True
    )
    announcement(path).write_text(json.dumps({"pid": int(dead.stdout), "address": "/nowhere", "key": "00"}))
    with session(f"chdb://{path}") as client:
        assert not isinstance(client, RemoteClient)
    assert not announcement(path).exists()


def test_a_read_only_session_is_its_own_and_leaves_the_others_writable(
    holder: tuple[str, subprocess.Popen[str]],
) -> None:
    """``meterflow sql`` without --write: ClickHouse refuses the write, and the setting stays with
    that session (chDB cannot take ``readonly`` back once set on a shared client)."""
    dsn, _ = holder
    with session(dsn, database="served_test") as client:
        client.command("CREATE TABLE r (x Int32) ENGINE = MergeTree ORDER BY x")
    with session(dsn, database="served_test", read_only=True) as reader:
        assert reader.query("SELECT count() FROM r").result_rows == [(0,)]
        for statement in ("INSERT INTO r VALUES (1)", "DROP TABLE r", "SELECT 1; DROP TABLE r"):
            with pytest.raises(RemoteError, match=r"\(READONLY\)"):
                reader.query(statement)
    with session(dsn, database="served_test") as writer:
        assert writer.insert("r", [[7]], column_names=["x"]).written_rows == 1
        assert writer.command("SELECT sum(x) FROM r") == 7
