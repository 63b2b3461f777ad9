"""``python -m bench.bridge``: messages per second through the MQTT bridge on this machine (issue 16).

A private state folder, the embedded Kafka broker and Mosquitto. Two runs per payload:

* **live** — ``meterflow bridge`` running while ``meterflow simulate --via mqtt`` publishes as fast
  as it can (QoS 1, waiting for every PUBACK): the clock runs from the first publish until Kafka
  holds every record. On two cores the publisher, Mosquitto, the bridge and Kafka share the CPU,
  so this is the end-to-end rate, usually the publisher's.
* **backlog** — the bridge is stopped (its session kept), a whole run is published and queued by
  Mosquitto, then the bridge starts: the clock runs from its subscription until Kafka holds every
  record. This is the bridge's own rate (with Mosquitto and Kafka, no publisher); its CPU time
  over the drain (/proc) gives messages per CPU-second, which a busy machine distorts less.

Payloads: ``reading`` (one reading per message, the bridge forwards the bytes) and ``wide`` (seed
002's rooms: one message per room and instant, eight readings each). Not part of ``make bench``:
run it by hand, on a quiet machine (the load average is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from kafka import KafkaConsumer, TopicPartition

from meterflow.stack.broker import EmbeddedBroker
from meterflow.stack.mosquitto import EmbeddedMosquitto

REPO = Path(__file__).resolve().parent.parent
METERFLOW = [sys.executable, "-m", "meterflow_cli.app"]


def _size(bootstrap: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(parts).values())
    finally:
        consumer.close()


def _manifest(folder: Path, name: str, wide: bool) -> Path:
    document: dict[str, Any] = yaml.safe_load((REPO / "examples" / "smart-building-mqtt.yaml").read_text())
    document["metadata"]["name"] = name
    document["spec"]["source"]["partitions"] = 1
    if not wide:
        document["spec"]["source"]["mqtt"]["payload"] = {"format": "reading"}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _start_bridge(manifest: Path) -> tuple[subprocess.Popen[str], float]:
    """Start ``meterflow bridge``; return it and the moment it was subscribed."""
    bridge = subprocess.Popen(
        [*METERFLOW, "bridge", "-f", str(manifest)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=os.environ.copy(), start_new_session=True,
    )  # fmt: skip
    assert bridge.stdout is not None
    for line in bridge.stdout:
        if "subscribed to" in line:
            return bridge, time.monotonic()
    raise RuntimeError(f"the bridge exited with {bridge.wait()} before subscribing")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stop_bridge(bridge: subprocess.Popen[str]) -> str:
    os.killpg(bridge.pid, signal.SIGTERM)
    out, _ = bridge.communicate(timeout=60)
    return [line for line in out.splitlines() if "stopped:" in line][-1].split("stopped: ")[1]


def measure(folder: Path, bootstrap: str, wide: bool, duration: str) -> dict[str, Any]:
    """Two runs: live (publisher and bridge together) and backlog (the bridge drains a full queue)."""
    name = f"bench-{'wide' if wide else 'reading'}"
    manifest = _manifest(folder, name, wide)
    topic = f"{name}.readings"
    simulate = [*METERFLOW, "simulate", "-f", str(manifest), "--via", "mqtt", "--meters", "8", "--duration", duration,
                "--no-progress"]  # fmt: skip

    def publish(seed: str, start: str) -> tuple[int, float]:
        began = time.monotonic()
        sim = subprocess.run([*simulate, "--seed", seed, "--start", start], capture_output=True, text=True, check=True)
        return int(sim.stdout.split(": ", 1)[1].split(" messages")[0].replace(",", "")), time.monotonic() - began

    def wait_for(total: int) -> float:
        deadline = time.monotonic() + 900
        while _size(bootstrap, topic) < total and time.monotonic() < deadline:
            time.sleep(0.02)
        return time.monotonic()

    per_message = 8 if wide else 1  # no injections: every room reports its eight metrics
    # live: the simulator publishes while the bridge forwards
    bridge, _ = _start_bridge(manifest)
    began = time.monotonic()
    messages, publish_s = publish("1", "2024-05-06T16:00:00Z")
    live_s = wait_for(messages * per_message) - began
    _stop_bridge(bridge)
    # backlog: the session queues a whole run while no bridge runs, then one bridge drains it
    queued, _ = publish("2", "2024-05-07T16:00:00Z")
    bridge, subscribed = _start_bridge(manifest)
    cpu_before = _cpu_seconds(bridge.pid)
    drain_s = wait_for((messages + queued) * per_message) - subscribed
    cpu_s = _cpu_seconds(bridge.pid) - cpu_before
    closing = _stop_bridge(bridge)
    return {
        "payload": "wide (8 readings per message)" if wide else "reading (1 per message)",
        "live": {
            "messages": messages,
            "publisher_messages_per_s": round(messages / publish_s),
            "all_in_kafka_s": round(live_s, 2),
            "messages_per_s": round(messages / live_s),
        },
        "backlog": {
            "messages": queued,
            "drained_s": round(drain_s, 2),
            "messages_per_s": round(queued / drain_s),
            "readings_per_s": round(queued * per_message / drain_s),
            "bridge_cpu_s": round(cpu_s, 2),
            "messages_per_cpu_s": round(queued / cpu_s),
            "bridge": closing,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", default="10m", help="simulated span: 8 rooms x 8 metrics every 500 ms")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mf-bench-bridge-") as tmp:
        home = Path(tmp)
        os.environ["METERFLOW_HOME"] = str(home)
        broker, mosquitto = EmbeddedBroker(home), EmbeddedMosquitto(home)
        info = broker.up()
        mosquitto.up()
        try:
            results = [measure(home, info.bootstrap, wide, args.duration) for wide in (False, True)]
        finally:
            mosquitto.down()
            broker.down()
    load = os.getloadavg()
    print(json.dumps({"load_average": [round(x, 1) for x in load], "cpus": os.cpu_count(), "runs": results}, indent=1))


if __name__ == "__main__":
    main()
