"""Faults on the MQTT path (issue 16), one pipeline, one streaming run:

* phase A — the bridge is killed with ``kill -9`` mid-stream and started again;
* phase B — Mosquitto is restarted (stopped and started, as a rollout or a service restart does)
  mid-stream, under the bridge and the publishing simulator.

Every QoS-1 message published (the simulator's record file: it ends only once the broker has
acknowledged each one) must be on ``<name>.readings`` at least once, whatever the fault; the
duplicates the faults make (messages forwarded to Kafka whose acknowledgement never reached the
broker) are counted and printed. After ``meterflow run --until-idle`` every reading is in Iceberg
exactly once and every window in ClickHouse is exact. One reading per message (``payload.format:
reading``), so a message and its Kafka record are the same bytes."""

from __future__ import annotations

import json
import signal
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from meterflow.spec import MeterPipeline, names_for
from meterflow.stack.broker import BrokerInfo
from meterflow.stack.mosquitto import EmbeddedMosquitto, MosquittoInfo
from tests.conftest import unique_pipeline, write_manifest
from tests.streaming import checks
from tests.streaming.expected import Expected, compute
from tests.streaming.harness import Process, group_gone, meterflow, poll, rows, topic_records, topic_size

pytestmark = [pytest.mark.integration, pytest.mark.flink]

SIMULATION = ("--meters", "8", "--duration", "1m", "--rate", "2000", "--no-progress")
"""8 rooms x 8 metrics every 500 ms for a minute: 7,680 messages per phase, about 4 s at 2,000/s."""
START_A, START_B = "2024-05-06T16:00:00+00:00", "2024-05-06T16:01:00+00:00"
FAULT_AT = 2_500
"""The fault strikes once this many records of the phase are on Kafka (about a third of it)."""


@dataclass
class Phase:
    """What one phase published and what reached Kafka."""

    published: list[dict[str, Any]]
    kafka: list[bytes]
    notes: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        on_kafka = set(self.kafka)
        return sum(1 for m in self.published if m["value"].encode() not in on_kafka)

    @property
    def duplicates(self) -> int:
        return len(self.kafka) - len(self.published)


@dataclass
class Faults:
    pipeline: MeterPipeline
    a: Phase
    b: Phase
    expected: Expected
    kafka_total: int


def _simulate(manifest: Path, out: Path, name: str, start: str, seed: str) -> Process:
    return Process("simulate", "-f", str(manifest), "--via", "mqtt", *SIMULATION, "--seed", seed, "--start", start,
                   "--record", str(out / f"{name}.jsonl"))  # fmt: skip


def _bridge(manifest: Path) -> Process:
    bridge = Process("bridge", "-f", str(manifest), "--report-every", "1")
    bridge.wait_for("subscribed to buildings/", timeout=120)
    return bridge


def _phase(out: Path, name: str, kafka: list[bytes]) -> Phase:
    published = [json.loads(line) for line in (out / f"{name}.jsonl").read_text().splitlines()]
    return Phase(published, kafka)


@pytest.fixture(scope="module")
def faults(
    broker: BrokerInfo, mosquitto: MosquittoInfo, meterflow_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Faults:
    out = tmp_path_factory.mktemp("mqtt-faults")
    pipeline = unique_pipeline(
        "smart-building-mqtt",
        source={"partitions": 1, "mqtt": {"topic": "buildings/+/telemetry", "payload": {"format": "reading"}}},
        flink={"parallelism": 1, "checkpointInterval": "2s"},
    )
    manifest = write_manifest(pipeline, out)
    readings = names_for(pipeline).topics.readings
    size = lambda: topic_size(broker.bootstrap, readings)  # noqa: E731
    bridge = _bridge(manifest)
    processes = [bridge]
    try:
        # phase A: kill -9 the bridge mid-stream, start it again
        sim = _simulate(manifest, out, "a", START_A, "41")
        processes.append(sim)
        assert poll(size, lambda n: n >= FAULT_AT, timeout=120, every=0.1) >= FAULT_AT, sim.output
        bridge.kill_group(signal.SIGKILL)
        bridge.wait(timeout=60)
        assert group_gone(bridge.popen.pid, timeout=30)
        at_kill = size()
        bridge = _bridge(manifest)
        processes.append(bridge)
        assert sim.wait(timeout=300) == 0, sim.output
        published_a = len((out / "a.jsonl").read_text().splitlines())
        poll(size, lambda n: n >= published_a, timeout=120, every=0.5)
        after_a = poll(size, lambda n: False, timeout=2, every=1)  # settle: late duplicates
        kafka = [v for _, v in topic_records(broker.bootstrap, readings)]
        a = _phase(out, "a", kafka)
        a.notes.append(f"killed at {at_kill:,} records on Kafka; {after_a:,} after the phase")

        # phase B: restart Mosquitto mid-stream
        sim = _simulate(manifest, out, "b", START_B, "42")
        processes.append(sim)
        assert poll(size, lambda n: n >= after_a + FAULT_AT, timeout=120, every=0.1) >= after_a + FAULT_AT
        embedded = EmbeddedMosquitto(meterflow_home)
        assert embedded.down()
        at_stop = size()
        restarted = embedded.up()
        assert restarted.port == mosquitto.port  # clients reconnect to the same address
        assert sim.wait(timeout=300) == 0, sim.output
        published_b = len((out / "b.jsonl").read_text().splitlines())
        poll(size, lambda n: n >= after_a + published_b, timeout=120, every=0.5)
        total = poll(size, lambda n: False, timeout=2, every=1)
        kafka = [v for _, v in topic_records(broker.bootstrap, readings)]
        b = _phase(out, "b", kafka[len(a.kafka) :])
        b.notes.append(f"Mosquitto stopped at {at_stop - after_a:,} records of the phase on Kafka")
        bridge.kill_group(signal.SIGTERM)
        assert bridge.wait(timeout=60) == 0, bridge.output
        b.notes.append(bridge.output.strip().splitlines()[-1])
    finally:
        for process in processes:
            process.stop()
    records = out / "records.jsonl"
    records.write_text((out / "a.jsonl").read_text() + (out / "b.jsonl").read_text())
    meterflow("run", "-f", str(manifest), "--until-idle")
    expected = compute(pipeline, records, {"malformed": []})
    print(f"\nMQTT faults, phase A (bridge kill -9): {len(a.published):,} published, {len(a.kafka):,} on Kafka, "
          f"{a.lost} lost, {a.duplicates} duplicates; {'; '.join(a.notes)}")  # fmt: skip
    print(f"MQTT faults, phase B (Mosquitto restart): {len(b.published):,} published, {len(b.kafka):,} on Kafka, "
          f"{b.lost} lost, {b.duplicates} duplicates; {'; '.join(b.notes)}")  # fmt: skip
    return Faults(pipeline, a, b, expected, total)


def test_a_bridge_killed_mid_stream_loses_no_message(faults: Faults) -> None:
    assert faults.a.lost == 0
    assert faults.a.duplicates >= 0
    assert set(faults.a.kafka) == {m["value"].encode() for m in faults.a.published}  # nothing else either


def test_a_broker_restarted_mid_stream_loses_no_message(faults: Faults) -> None:
    assert faults.b.lost == 0
    assert faults.b.duplicates >= 0
    assert set(faults.b.kafka) == {m["value"].encode() for m in faults.b.published}


def test_every_reading_is_in_the_lake_exactly_once(faults: Faults) -> None:
    keys, late = checks.lake_keys(faults.pipeline)
    assert len(keys) == faults.expected.unique == len(faults.a.published) + len(faults.b.published)
    assert Counter(keys).most_common(1)[0][1] == 1
    assert late == set()


def test_the_job_counts_the_duplicates_the_faults_made(faults: Faults) -> None:
    [(in_total, valid, dlq, on_time, late, duplicates)] = rows(
        faults.pipeline, "SELECT in_total, valid, dlq, on_time, late, duplicates FROM ingest_totals"
    )
    assert (in_total, valid, dlq, late) == (faults.kafka_total, faults.kafka_total, 0, 0)
    assert on_time == faults.expected.unique
    assert duplicates == faults.a.duplicates + faults.b.duplicates


def test_every_window_is_exact_in_clickhouse(faults: Faults) -> None:
    checks.every_window_matches(faults.pipeline, faults.expected, size_s=10)
