"""The embedded Mosquitto and the CLI around the bridge: one broker per state folder, a restart that
keeps its port and a persistent session's queued QoS-1 messages, and one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from meterflow.stack.broker import BrokerInfo
from meterflow.stack.mosquitto import EmbeddedMosquitto, MosquittoInfo, probe
from meterflow.stack.process import alive
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.integration


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "meterflow_cli.app", *args], env=env, capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip


def _session(port: int, received: list[bytes]) -> mqtt.Client:
    """A persistent-session subscriber (clean start off, session expiry 1 h) on sensors/+."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="keeper", protocol=mqtt.MQTTv5)
    client.on_message = lambda _c, _u, m: received.append(m.payload)
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600
    client.connect("127.0.0.1", port, clean_start=False, properties=props)
    client.loop_start()
    client.subscribe("sensors/+", qos=1)
    return client


def test_a_restart_keeps_the_port_and_a_persistent_sessions_queue(tmp_path: Path) -> None:
    broker = EmbeddedMosquitto(tmp_path)
    first = broker.up()
    try:
        assert broker.up() == first  # a second up finds the running one
        assert probe(first.url)
        received: list[bytes] = []
        keeper = _session(first.port, received)
        time.sleep(0.5)
        keeper.disconnect()  # away, session kept: QoS-1 messages queue for it
        keeper.loop_stop()
        publisher = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        publisher.connect("127.0.0.1", first.port)
        publisher.loop_start()
        infos = [publisher.publish(f"sensors/m{i}", f"reading {i}".encode(), qos=1) for i in range(2_500)]
        for info in infos:
            info.wait_for_publish(timeout=30)
        publisher.disconnect()
        publisher.loop_stop()

        assert broker.down()
        assert not alive(first.pid) and broker.running() is None and not probe(first.url, timeout_s=0.5)
        second = broker.up()
        assert second.port == first.port and second.pid != first.pid
        keeper = _session(second.port, received)
        deadline = time.monotonic() + 30
        while len(received) < 2_500 and time.monotonic() < deadline:
            time.sleep(0.1)
        keeper.disconnect()
        keeper.loop_stop()
        # all 2,500 (more than Mosquitto's default max_queued_messages of 1000), across the restart
        assert sorted(received) == sorted(f"reading {i}".encode() for i in range(2_500))
    finally:
        broker.down()


def test_the_probe_works_in_a_process_holding_a_thousand_files(mosquitto: MosquittoInfo) -> None:
    # select() cannot watch a socket numbered past 1023, and a long test session holds that many
    # files: the probe must not depend on it (the MQTT end-to-end tests failed in CI on this)
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1_100)]
    try:
        assert probe(mosquitto.url)
    finally:
        for fd in held:
            os.close(fd)


def test_up_starts_mosquitto_for_a_manifest_that_needs_it(
    broker: BrokerInfo, mosquitto: MosquittoInfo, meterflow_home: Path
) -> None:
    running = EmbeddedMosquitto(meterflow_home).running()  # a test may have restarted the session's
    assert running is not None and running.port == mosquitto.port
    mosquitto = running
    up = _cli("up", "-f", str(EXAMPLES / "smart-building-mqtt.yaml"))
    assert up.returncode == 0, up.stderr
    assert f"Mosquitto already running at {mosquitto.url} (pid {mosquitto.pid})" in up.stdout
    kafka_only = _cli("up", "-f", str(EXAMPLES / "water-meters.yaml"))
    assert "Mosquitto" not in kafka_only.stdout
    status = _cli("status")
    assert f"Mosquitto: running at {mosquitto.url} (pid {mosquitto.pid})" in status.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bridge", "-f", str(EXAMPLES / "water-meters.yaml")],
         "meterflow: MeterPipeline water-meters has no spec.source.mqtt; add it (docs/mqtt.md) to ingest over MQTT\n"),
        (["simulate", "-f", str(EXAMPLES / "water-meters.yaml"), "--via", "mqtt"],
         f"meterflow: --via mqtt: {EXAMPLES / 'water-meters.yaml'} has no spec.source.mqtt; add it (docs/mqtt.md) "
         "or use --via kafka\n"),
    ],
)  # fmt: skip
def test_mqtt_commands_on_a_kafka_pipeline_say_what_to_add(args: list[str], message: str) -> None:
    result = _cli(*args)
    assert (result.returncode, result.stderr) == (2, message)
