"""`meterflow up`, `status` and `down` on a private state folder: a second `up` reuses the running
broker, readiness is a real metadata request, and `down` stops the process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from meterflow.stack.broker import probe

pytestmark = pytest.mark.integration


def _meterflow(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"METERFLOW_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "meterflow.cli.app", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _brokers_of(home: Path) -> list[int]:
    """PIDs of Kafka processes whose command line names this home's server.properties."""
    marker = str(home / "kafka" / "server.properties")
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "kafka.Kafka" in command and marker in command:
            pids.append(int(entry.name))
    return pids


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    _meterflow(tmp_path, "down")


def test_up_twice_leaves_one_ready_broker_and_down_stops_it(home: Path) -> None:
    first = _meterflow(home, "up")
    assert first.returncode == 0, first.stderr
    state = json.loads((home / "kafka" / "broker.json").read_text())
    assert probe(f"127.0.0.1:{state['port']}") is not None  # answers a metadata request

    second = _meterflow(home, "up")
    assert second.returncode == 0, second.stderr
    assert json.loads((home / "kafka" / "broker.json").read_text()) == state
    assert _brokers_of(home) == [state["pid"]]

    status = _meterflow(home, "status")
    assert f"running at 127.0.0.1:{state['port']} (pid {state['pid']})" in status.stdout

    down = _meterflow(home, "down")
    assert down.returncode == 0 and "Kafka broker stopped" in down.stdout
    assert _brokers_of(home) == []
    assert probe(f"127.0.0.1:{state['port']}", timeout_s=1.0) is None
    assert "not running" in _meterflow(home, "status").stdout
