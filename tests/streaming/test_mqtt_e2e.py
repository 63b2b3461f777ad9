"""The smart-building example over MQTT, end to end and through faults (issue 16): one pipeline, one
streaming run.

1. **Clean** — the simulator publishes seed 002's wide JSON (3 minutes of 8 rooms, every injection)
   to a real Mosquitto; `meterflow bridge` explodes it into readings on Kafka and is stopped
   gracefully: its counts and its dead letters (reason, topic, payload) are exact.
2. **Bridge killed** — another minute, published while the bridge is killed with ``kill -9``
   mid-stream and started again.
3. **Broker restarted** — another minute, while Mosquitto is stopped and started mid-stream under
   the bridge and the publishing simulator.

After each fault every QoS-1 message published (the simulator ends only once the broker has
acknowledged each one) must have all its readings on ``<name>.readings`` at least once; the
duplicates the faults make are counted and printed. Then one ``meterflow run --until-idle``: the
job's counts add up, its dead letters are the bad readings the bridge made, every unique reading is
in the lake once, every hopping window is exact, the alerts are exactly the injected ones.

What the bridge should produce is restated here from the manifest's mapping (never the bridge's
code): each wide message becomes one reading per mapped field present, in the mapping's order."""

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
from tests.conftest import example_manifest, unique_pipeline, write_manifest
from tests.streaming import checks
from tests.streaming.expected import Expected, compute
from tests.streaming.harness import (
    Process,
    await_event,
    dead_letters,
    group_gone,
    meterflow,
    poll,
    rows,
    simulate,
    topic_records,
    topic_size,
)

pytestmark = [pytest.mark.integration, pytest.mark.flink]

START = "2024-05-06T16:00:00+00:00"  # a Monday, 09:00 in Los Angeles: rooms fill up
START_A, START_B = "2024-05-06T16:03:00+00:00", "2024-05-06T16:04:00+00:00"
FAULT_PHASE = ("--meters", "8", "--duration", "1m", "--rate", "200", "--no-progress")
"""A minute of 8 rooms every 500 ms: 960 wide messages (7,680 readings), about 5 s at 200 messages/s."""
FAULT_AT = 2_500
"""The fault strikes once this many readings of the phase are on Kafka (about a third)."""


def explode(pipeline: MeterPipeline, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The readings records the bridge should write for ``messages``, as record-file lines for ``compute``
    (``kind`` of the message; ``reason`` for the job-stage malformed)."""
    source = pipeline.spec.source.mqtt
    assert source is not None
    units = {(m.name, m.series): m.unit for m in pipeline.spec.measurements}
    by_name = {m.name: m.series for m in pipeline.spec.measurements}
    fields = [(f.field, f.measurement, f.series or by_name[f.measurement]) for f in source.payload.fields]
    out = []
    for m in messages:
        if m.get("stage") == "bridge":
            continue
        doc = json.loads(m["value"])
        meter = m["topic"].split("/")[1]
        for key, name, series in fields:
            value = doc.get(key)
            if value is None:
                continue
            reading = {
                "meter_id": meter,
                "timestamp": doc["timestamp"],
                "measurement_type": name,
                "series": series,
                "unit": units[(name, series)],
                "value": int(value) if isinstance(value, bool) else value,
            }
            line = {"key": meter, "value": json.dumps(reading, separators=(",", ":")), "kind": m["kind"]}
            if m["kind"] == "malformed":
                line["reason"] = m["reason"]
            out.append(line)
    return out


@dataclass
class Fault:
    """What one fault phase published, what should be on Kafka, and what is."""

    name: str
    messages: list[dict[str, Any]]
    per_message: list[list[dict[str, Any]]]  # the readings each message should become
    kafka: list[bytes]
    notes: list[str] = field(default_factory=list)

    @property
    def readings(self) -> list[dict[str, Any]]:
        return [r for mine in self.per_message for r in mine]

    @property
    def lost(self) -> int:
        """Messages with a reading missing from Kafka."""
        on_kafka = set(self.kafka)
        return sum(any(r["value"].encode() not in on_kafka for r in mine) for mine in self.per_message)

    @property
    def duplicates(self) -> int:
        return len(self.kafka) - len(self.readings)

    def line(self) -> str:
        return (f"MQTT {self.name}: {len(self.messages):,} messages published ({len(self.readings):,} readings), "
                f"{len(self.kafka):,} readings on Kafka, {self.lost} messages lost, {self.duplicates} duplicates; "
                + "; ".join(self.notes))  # fmt: skip


@dataclass
class Run:
    pipeline: MeterPipeline
    truth: dict[str, Any]
    messages: list[dict[str, Any]]
    bridge_output: str
    bridge_letters: list[dict[str, Any]]
    clean_readings: int
    faults: list[Fault]
    kafka_total: int
    expected: Expected
    job_malformed: list[dict[str, Any]]


def _records(out: Path, name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / f"{name}.jsonl").read_text().splitlines()]


def _bridge(manifest: Path) -> Process:
    bridge = Process("bridge", "-f", str(manifest), "--report-every", "1")
    bridge.wait_for("subscribed to buildings/")
    return bridge


def _fault_phase(name: str, pipeline: MeterPipeline, out: Path, kafka_before: list[bytes], broker: BrokerInfo,
                 notes: list[str], bridge: Process) -> Fault:  # fmt: skip
    readings_topic = names_for(pipeline).topics.readings
    messages = _records(out, name)
    per_message = [explode(pipeline, [m]) for m in messages]
    target = len(kafka_before) + sum(len(mine) for mine in per_message)
    await_event("the phase's readings on Kafka", lambda: topic_size(broker.bootstrap, readings_topic),
                lambda n: n >= target, [bridge])  # fmt: skip
    poll(lambda: None, lambda _: False, timeout=2, every=1)  # settle: late duplicates
    kafka = [v for _, v in topic_records(broker.bootstrap, readings_topic)][len(kafka_before) :]
    return Fault(name, messages, per_message, kafka, notes)


@pytest.fixture(scope="module")
def run(
    broker: BrokerInfo, mosquitto: MosquittoInfo, meterflow_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Run:
    out = tmp_path_factory.mktemp("mqtt-e2e")
    spec = example_manifest("smart-building-mqtt")["spec"]
    pipeline = unique_pipeline(
        "smart-building-mqtt",
        source=spec["source"] | {"partitions": 1},
        flink={"parallelism": 1, "checkpointInterval": "2s"},
    )
    manifest = write_manifest(pipeline, out)
    topics = names_for(pipeline).topics
    size = lambda: topic_size(broker.bootstrap, topics.readings)  # noqa: E731
    processes: list[Process] = []
    try:
        # 1. clean: every injection, the bridge stopped gracefully
        bridge = _bridge(manifest)
        processes.append(bridge)
        truth = simulate(manifest, out, "--via", "mqtt", "--meters", "8", "--duration", "3m", "--seed", "23",
                         "--start", START)  # fmt: skip
        messages = _records(out, "records")
        stage = {m["payload"]: (m.get("stage", "job"), m["reason"]) for m in truth["malformed"]}
        for m in messages:
            if m["kind"] == "malformed":
                m["stage"], m["reason"] = stage[m["value"]]
        clean = explode(pipeline, messages)
        bridged = sum(m.get("stage") == "bridge" for m in messages)
        landed = await_event("every reading and bridge dead letter on Kafka",
                             lambda: (size(), topic_size(broker.bootstrap, topics.dlq)),
                             lambda n: n == (len(clean), bridged), [bridge])  # fmt: skip
        assert landed == (len(clean), bridged)
        bridge.kill_group(signal.SIGTERM)
        assert bridge.wait(timeout=60) == 0, bridge.output
        bridge_output = bridge.output
        kafka = [v for _, v in topic_records(broker.bootstrap, topics.readings)]

        # 2. kill -9 the bridge mid-stream, start it again
        bridge = _bridge(manifest)
        processes.append(bridge)
        sim = Process("simulate", "-f", str(manifest), "--via", "mqtt", *FAULT_PHASE, "--seed", "41", "--start",
                      START_A, "--record", str(out / "a.jsonl"))  # fmt: skip
        processes.append(sim)
        await_event("readings on Kafka mid-phase", size, lambda n: n >= len(kafka) + FAULT_AT, [bridge], every=0.1)
        bridge.kill_group(signal.SIGKILL)
        bridge.wait(timeout=60)
        assert group_gone(bridge.popen.pid, timeout=30)
        killed_at = size() - len(kafka)
        bridge = _bridge(manifest)
        processes.append(bridge)
        assert sim.wait() == 0, sim.output
        a = _fault_phase(
            "a", pipeline, out, kafka, broker, [f"killed at {killed_at:,} readings of the phase on Kafka"], bridge
        )
        kafka += a.kafka

        # 3. restart Mosquitto mid-stream
        sim = Process("simulate", "-f", str(manifest), "--via", "mqtt", *FAULT_PHASE, "--seed", "42", "--start",
                      START_B, "--record", str(out / "b.jsonl"))  # fmt: skip
        processes.append(sim)
        await_event("readings on Kafka mid-phase", size, lambda n: n >= len(kafka) + FAULT_AT, [bridge], every=0.1)
        embedded = EmbeddedMosquitto(meterflow_home)
        assert embedded.down()
        stopped_at = size() - len(kafka)
        assert embedded.up().port == mosquitto.port  # clients reconnect to the same address
        assert sim.wait() == 0, sim.output
        b = _fault_phase(
            "b", pipeline, out, kafka, broker, [f"stopped at {stopped_at:,} readings of the phase on Kafka"], bridge
        )
        kafka += b.kafka
        bridge.kill_group(signal.SIGTERM)
        assert bridge.wait(timeout=60) == 0, bridge.output
        b.notes.append(bridge.output.strip().splitlines()[-1].split("bridge: ")[-1])
    finally:
        for process in processes:
            process.stop()
    print(f"\n{a.line()}\n{b.line()}")
    bridge_letters = [d for d in dead_letters(pipeline, broker.bootstrap) if d.get("source") == "mqtt"]

    meterflow("run", "-f", str(manifest), "--until-idle")
    everything = out / "readings.jsonl"
    lines = clean + a.readings + b.readings
    everything.write_text("".join(json.dumps(line) + "\n" for line in lines))
    job_malformed = [{"payload": r["value"], "reason": r["reason"]} for r in clean if r["kind"] == "malformed"]
    expected = compute(pipeline, everything, {"malformed": job_malformed})
    return Run(pipeline, truth, messages, bridge_output, bridge_letters, len(clean), [a, b], len(kafka), expected,
               job_malformed)  # fmt: skip


# --- 1. clean ------------------------------------------------------------------------------------


def test_the_bridge_counts_every_message(run: Run) -> None:
    """Its closing line: messages in, forwarded, readings made, dead letters by reason, all acknowledged."""
    messages = len(run.messages)
    bridged = Counter(m["reason"] for m in run.messages if m.get("stage") == "bridge")
    reasons = ", ".join(f"{r}: {n:,}" for r, n in sorted(bridged.items()))
    assert f"stopped: {messages:,} messages in (0 redelivered), {messages - bridged.total():,} forwarded as " \
           f"{run.clean_readings:,} readings, {bridged.total():,} dead-lettered ({reasons}), {messages:,} " \
           f"acknowledged, 0 in flight" in run.bridge_output  # fmt: skip
    assert set(bridged) == {"bad_json", "missing_field", "no_measurements", "meter_mismatch", "no_meter_id"}


def test_bridge_dead_letters_carry_reason_topic_and_payload(run: Run) -> None:
    expected = sorted((m["reason"], m["topic"], m["value"]) for m in run.messages if m.get("stage") == "bridge")
    actual = sorted((d["reason"], d["mqtt_topic"], d["payload"]) for d in run.bridge_letters)
    assert actual == expected
    assert {(d["source"], d["pipeline"], d["payload_encoding"], d["payload_truncated"]) for d in run.bridge_letters} \
        == {("mqtt", run.pipeline.name, "utf-8", False)}  # fmt: skip
    # each names the room of its topic (buildings/<room>/telemetry; none for an empty level) and no
    # instant, and is one row of ClickHouse's dead_letters
    named = sorted((reason, topic, topic.split("/")[1], None) for reason, topic, _ in expected)
    assert sorted((d["reason"], d["mqtt_topic"], d["meter_id"], d["event_time"]) for d in run.bridge_letters) == named
    assert "" in {meter for _, _, meter, _ in named}  # no_meter_id
    stored = rows(
        run.pipeline, "SELECT reason, mqtt_topic, meter_id, event_time FROM dead_letters FINAL WHERE source = 'mqtt'"
    )
    assert sorted(stored) == named


# --- 2 and 3. faults -----------------------------------------------------------------------------


def test_a_bridge_killed_mid_stream_loses_no_message(run: Run) -> None:
    a = run.faults[0]
    assert a.lost == 0
    assert set(a.kafka) == {r["value"].encode() for r in a.readings}  # every reading, nothing else
    assert a.duplicates >= 0


def test_a_broker_restarted_mid_stream_loses_no_message(run: Run) -> None:
    b = run.faults[1]
    assert b.lost == 0
    assert set(b.kafka) == {r["value"].encode() for r in b.readings}
    assert b.duplicates >= 0


# --- the streaming job over all three --------------------------------------------------------------


def test_every_reading_is_counted_by_the_job(run: Run) -> None:
    """in = valid + dlq over every Kafka record, the duplicates the faults made included."""
    [(in_total, valid, dlq, on_time, late, duplicates)] = rows(
        run.pipeline, "SELECT in_total, valid, dlq, on_time, late, duplicates FROM ingest_totals"
    )
    fault_duplicates = sum(f.duplicates for f in run.faults)
    assert in_total == run.kafka_total == run.expected.records + fault_duplicates
    assert dlq == sum(run.expected.dlq_by_reason.values()) == len(run.job_malformed)
    assert late == len(run.expected.late) == run.truth["counts"]["late"] > 0
    assert on_time + late == run.expected.unique
    assert duplicates == run.expected.duplicates + fault_duplicates
    assert run.expected.duplicates == run.truth["counts"]["duplicate"] > 0
    assert valid == on_time + late + duplicates


def test_the_job_dead_letters_the_bad_readings_the_bridge_made(run: Run, broker: BrokerInfo) -> None:
    letters = [d for d in dead_letters(run.pipeline, broker.bootstrap) if d.get("source") != "mqtt"]
    assert Counter(d["reason"] for d in letters) == Counter(run.expected.dlq_by_reason)
    assert set(run.expected.dlq_by_reason) == {"wrong_type", "not_finite", "out_of_range", "bad_timestamp"}
    assert {d["payload"] for d in letters} == {m["payload"] for m in run.job_malformed}


def test_lake_holds_every_unique_reading_once(run: Run) -> None:
    checks.lake_holds_every_unique_reading_once(run.pipeline, run.expected)


def test_every_hopping_window_matches(run: Run) -> None:
    checks.every_window_matches(run.pipeline, run.expected, size_s=10)


def test_exactly_the_injected_alerts(run: Run) -> None:
    checks.exactly_the_injected_alerts(run.pipeline, run.expected, run.truth)
