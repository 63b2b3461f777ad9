"""Backpressure (issue 16): with Kafka frozen (SIGSTOP of the broker's JVM) the bridge takes exactly
``maxInflight`` messages from Mosquitto (MQTT 5 Receive Maximum) and the broker holds the rest in the
bridge's persistent session; when Kafka comes back every message lands, once, and is acknowledged."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from meterflow.spec import names_for
from meterflow.stack.broker import BrokerInfo
from meterflow.stack.mosquitto import MosquittoInfo
from tests.conftest import unique_pipeline, write_manifest
from tests.streaming.harness import Process, poll, topic_records

pytestmark = pytest.mark.integration

WINDOW = 50
MESSAGES = 1_000


def publish(mosquitto: MosquittoInfo, count: int) -> list[bytes]:
    """``count`` readings of room_1..room_8, QoS 1; returns once Mosquitto has acknowledged every one."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    payloads, infos = [], []
    for i in range(count):
        room = f"room_{i % 8 + 1}"
        payload = (f'{{"meter_id":"{room}","timestamp":"2024-05-06T16:00:{i // 8 % 60:02d}.{i // 480:03d}Z",'
                   f'"measurement_type":"co2","series":"room","unit":"ppm","value":{400 + i}}}').encode()  # fmt: skip
        payloads.append(payload)
        infos.append(client.publish(f"buildings/{room}/telemetry", payload, qos=1))
    for info in infos:
        info.wait_for_publish(timeout=60)
    client.disconnect()
    client.loop_stop()
    return payloads


def _last_report(output: str) -> tuple[int, int]:
    """(messages in, in flight) of the bridge's latest progress line."""
    found = re.findall(r"([\d,]+) messages in .* ([\d,]+) in flight", output)
    assert found, output
    received, inflight = found[-1]
    return int(received.replace(",", "")), int(inflight.replace(",", ""))


def test_a_frozen_kafka_holds_the_bridge_to_its_window(
    broker: BrokerInfo, mosquitto: MosquittoInfo, tmp_path: Path
) -> None:
    pipeline = unique_pipeline(
        "smart-building-mqtt",
        source={"partitions": 1, "mqtt": {"topic": "buildings/+/telemetry", "maxInflight": WINDOW}},
    )
    manifest = write_manifest(pipeline, tmp_path)
    bridge = Process("bridge", "-f", str(manifest), "--report-every", "0.5")
    try:
        bridge.wait_for("subscribed to buildings/", timeout=120)
        os.kill(broker.pid, signal.SIGSTOP)
        try:
            sent = publish(mosquitto, MESSAGES)  # the broker acknowledges them all: it holds them
            time.sleep(3)  # the broker would send more now if the window let it
            assert _last_report(bridge.output) == (WINDOW, WINDOW)
        finally:
            os.kill(broker.pid, signal.SIGCONT)
        readings = names_for(pipeline).topics.readings
        landed = poll(lambda: len(topic_records(broker.bootstrap, readings)), lambda n: n >= MESSAGES, timeout=120)
        assert landed == MESSAGES
        bridge.kill_group(signal.SIGTERM)
        assert bridge.wait(timeout=60) == 0, bridge.output
    finally:
        bridge.stop()
    assert sorted(v for _, v in topic_records(broker.bootstrap, readings)) == sorted(sent)
    assert f"stopped: {MESSAGES:,} messages in (0 redelivered), {MESSAGES:,} forwarded as {MESSAGES:,} readings, " \
           f"0 dead-lettered, {MESSAGES:,} acknowledged, 0 in flight" in bridge.output  # fmt: skip
