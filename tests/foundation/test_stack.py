"""`meterflow up`, `status` and `down` on a private state folder: a second `up` reuses the running
broker, readiness is a real metadata request, and `down` stops the process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from meterflow.stack.broker import probe

pytestmark = pytest.mark.integration


def _meterflow(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"METERFLOW_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "meterflow_cli.app", *args],
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


def _sockets_on(port: int) -> list[str]:
    """The TCP states (/proc/net/tcp{,6} codes: 01 established, 06 TIME_WAIT, 0A listen) of the
    sockets whose local port is ``port``."""
    states = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if int(local.rsplit(":", 1)[1], 16) == port:
                states.append(state)
    return states


def test_a_killed_broker_comes_back_on_its_port(home: Path) -> None:
    """kill -9 leaves the broker's side of its connections in TIME_WAIT; `up` listens on the same
    port anyway (SO_REUSEADDR, as Kafka binds), and so does `up` after `down`."""
    from kafka import KafkaAdminClient

    assert _meterflow(home, "up").returncode == 0
    first = json.loads((home / "kafka" / "broker.json").read_text())
    clients = [KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{first['port']}") for _ in range(3)]
    for client in clients:
        client.list_topics()  # connected
    os.kill(first["pid"], signal.SIGKILL)
    while {"01", "0A"} & set(_sockets_on(first["port"])):
        time.sleep(0.1)  # the kernel closes the broker's sockets as the process goes: it sent FIN first
    for client in clients:
        client.close()  # so its side of each connection now waits in TIME_WAIT
    assert "06" in _sockets_on(first["port"])  # what made the old check move the broker to a new port

    again = _meterflow(home, "up")
    assert again.returncode == 0, again.stderr
    second = json.loads((home / "kafka" / "broker.json").read_text())
    assert (second["port"], second["controller_port"]) == (first["port"], first["controller_port"])
    assert second["pid"] != first["pid"]
    assert f"Kafka broker started at 127.0.0.1:{first['port']}" in again.stdout

    assert _meterflow(home, "down").returncode == 0
    assert _meterflow(home, "up").returncode == 0
    third = json.loads((home / "kafka" / "broker.json").read_text())
    assert third["port"] == first["port"]
    assert probe(f"127.0.0.1:{third['port']}") is not None
