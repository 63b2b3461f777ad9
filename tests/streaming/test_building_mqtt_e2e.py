"""The smart-building example end to end over MQTT (issue 16): the simulator publishes seed 002's wide
JSON to a real Mosquitto, `meterflow bridge` explodes it into readings on Kafka, the streaming job runs
to idle — and every figure is exact: the bridge's own counts, its dead letters by reason and topic, the
job's counts and dead letters, every unique reading in the lake once, every hopping window, exactly
the injected alerts.

What the bridge should produce is restated here from the manifest's mapping (never the bridge's code):
each wide message becomes one reading per mapped field present, in the mapping's order."""

from __future__ import annotations

import json
import signal
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from meterflow.spec import MeterPipeline, names_for
from meterflow.stack.broker import BrokerInfo
from meterflow.stack.mosquitto import MosquittoInfo
from tests.conftest import example_manifest, unique_pipeline, write_manifest
from tests.streaming import checks
from tests.streaming.expected import Expected, compute
from tests.streaming.harness import Process, dead_letters, meterflow, poll, simulate, topic_size

pytestmark = [pytest.mark.integration, pytest.mark.flink]

START = "2024-05-06T16:00:00+00:00"  # a Monday, 09:00 in Los Angeles: rooms fill up


@dataclass
class Run:
    pipeline: MeterPipeline
    expected: Expected
    truth: dict[str, Any]
    job_truth: dict[str, Any]
    messages: list[dict[str, Any]]
    bridge_letters: list[dict[str, Any]]
    bridge_output: str


def explode(pipeline: MeterPipeline, messages: list[dict[str, Any]], out: Path) -> tuple[Path, list[dict[str, Any]]]:
    """The readings records the bridge should write (a record file for ``compute``) and the job-stage
    malformed readings with their reasons."""
    source = pipeline.spec.source.mqtt
    assert source is not None
    units = {(m.name, m.series): m.unit for m in pipeline.spec.measurements}
    by_name = {m.name: m.series for m in pipeline.spec.measurements}
    fields = [(f.field, f.measurement, f.series or by_name[f.measurement]) for f in source.payload.fields]
    lines, job_malformed = [], []
    for m in messages:
        if m.get("stage") == "bridge":
            continue
        doc = json.loads(m["value"])
        meter = m["topic"].split("/")[1]
        for field, name, series in fields:
            value = doc.get(field)
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
            payload = json.dumps(reading, separators=(",", ":"))
            lines.append(json.dumps({"key": meter, "value": payload, "kind": m["kind"]}))
            if m["kind"] == "malformed":
                job_malformed.append({"payload": payload, "reason": m["reason"]})
    path = out / "exploded.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path, job_malformed


@pytest.fixture(scope="module")
def run(broker: BrokerInfo, mosquitto: MosquittoInfo, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """8 rooms x 3 minutes of wide messages every 500 ms (every injection) through the bridge, run to idle."""
    out = tmp_path_factory.mktemp("building-mqtt")
    spec = example_manifest("smart-building-mqtt")["spec"]
    pipeline = unique_pipeline(
        "smart-building-mqtt",
        source=spec["source"] | {"partitions": 1},
        flink={"parallelism": 1, "checkpointInterval": "2s"},
    )
    manifest = write_manifest(pipeline, out)
    topics = names_for(pipeline).topics
    bridge = Process("bridge", "-f", str(manifest))
    try:
        bridge.wait_for("subscribed to buildings/", timeout=120)
        truth = simulate(manifest, out, "--via", "mqtt", "--meters", "8", "--duration", "3m", "--seed", "23",
                         "--start", START)  # fmt: skip
        messages = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
        stage = {m["payload"]: (m.get("stage", "job"), m["reason"]) for m in truth["malformed"]}
        for m in messages:
            if m["kind"] == "malformed":
                m["stage"], m["reason"] = stage[m["value"]]
        exploded, job_malformed = explode(pipeline, messages, out)
        readings = len(exploded.read_text().splitlines())
        bridged = sum(m.get("stage") == "bridge" for m in messages)
        landed = poll(lambda: (topic_size(broker.bootstrap, topics.readings), topic_size(broker.bootstrap, topics.dlq)),
                      lambda n: n == (readings, bridged), timeout=120, every=0.5)  # fmt: skip
        assert landed == (readings, bridged)
        bridge.kill_group(signal.SIGTERM)
        assert bridge.wait(timeout=60) == 0, bridge.output
    finally:
        bridge.stop()
    bridge_letters = [d for d in dead_letters(pipeline, broker.bootstrap) if d.get("source") == "mqtt"]
    meterflow("run", "-f", str(manifest), "--until-idle")
    job_truth = dict(truth)
    job_truth["malformed"] = job_malformed
    job_truth["counts"] = truth["counts"] | {"malformed": len(job_malformed), "total_records": readings}
    return Run(pipeline, compute(pipeline, exploded, job_truth), truth, job_truth, messages, bridge_letters,
               bridge.output)  # fmt: skip


def test_the_bridge_counts_every_message(run: Run) -> None:
    """Its closing line: messages in, forwarded, readings made, dead letters by reason, all acknowledged."""
    messages = len(run.messages)
    bridged = Counter(m["reason"] for m in run.messages if m.get("stage") == "bridge")
    reasons = ", ".join(f"{r}: {n:,}" for r, n in sorted(bridged.items()))
    assert f"stopped: {messages:,} messages in (0 redelivered), {messages - bridged.total():,} forwarded as " \
           f"{run.expected.records:,} readings, {bridged.total():,} dead-lettered ({reasons}), {messages:,} " \
           f"acknowledged, 0 in flight" in run.bridge_output  # fmt: skip
    assert set(bridged) == {"bad_json", "missing_field", "no_measurements", "meter_mismatch", "no_meter_id"}


def test_bridge_dead_letters_carry_reason_topic_and_payload(run: Run) -> None:
    expected = sorted((m["reason"], m["topic"], m["value"]) for m in run.messages if m.get("stage") == "bridge")
    actual = sorted((d["reason"], d["mqtt_topic"], d["payload"]) for d in run.bridge_letters)
    assert actual == expected
    assert {(d["source"], d["pipeline"], d["payload_encoding"], d["payload_truncated"]) for d in run.bridge_letters} \
        == {("mqtt", run.pipeline.name, "utf-8", False)}  # fmt: skip


def test_every_reading_is_counted_by_the_job(run: Run) -> None:
    checks.every_record_is_counted(run.pipeline, run.expected, run.job_truth)


def test_the_job_dead_letters_the_bad_readings_the_bridge_made(run: Run, broker: BrokerInfo) -> None:
    letters = [d for d in dead_letters(run.pipeline, broker.bootstrap) if d.get("source") != "mqtt"]
    assert Counter(d["reason"] for d in letters) == Counter(run.expected.dlq_by_reason)
    assert set(run.expected.dlq_by_reason) == {"wrong_type", "not_finite", "out_of_range", "bad_timestamp"}
    assert {d["payload"] for d in letters} == {m["payload"] for m in run.job_truth["malformed"]}


def test_lake_holds_every_unique_reading_once(run: Run) -> None:
    checks.lake_holds_every_unique_reading_once(run.pipeline, run.expected)


def test_every_hopping_window_matches(run: Run) -> None:
    checks.every_window_matches(run.pipeline, run.expected, size_s=10)


def test_exactly_the_injected_alerts(run: Run) -> None:
    checks.exactly_the_injected_alerts(run.pipeline, run.expected, run.truth)
