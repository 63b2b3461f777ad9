"""A restart in the middle of an alert episode keeps one alert, not two: the alerts' state is in the
streaming job's checkpoints (issue 14).

The every-kind pipeline's simulation (the one tests/streaming/test_alerts_e2e.py runs) goes to Kafka
in two parts, split two hours into the leak's alert. A continuous ``meterflow run`` reads the
first part; once the leak's alert is open in ClickHouse and a checkpoint has committed every
offset of that part (so the checkpoint holds the open alert), the run is killed hard (SIGKILL to
its process group: the CLI and its JVM, as a crash would). Then the second part goes out and a run
to idle resumes from the checkpoint. The leak is still one alert — one id on the alerts topic, one
OPENED, its escalation and updates after the restart, one RESOLVED — and every alert equals the
independent model's over the whole record file.
"""

from __future__ import annotations

import json
import re
import signal
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaProducer, TopicPartition

from meterflow.spec import MeterPipeline, names_for
from meterflow.spec.topics import topic_plan
from meterflow.stack.broker import BrokerInfo
from meterflow.stack.topics import ensure_topics
from simulator.engine import Settings, Simulation
from simulator.record import Record, recorded_value
from tests.conftest import every_kind_rules, unique_pipeline, write_manifest
from tests.streaming.expected import ONE_PARTITION, Expected, compute, instant
from tests.streaming.harness import Process, flatten, group_gone, meterflow, poll, rows, topic_records

pytestmark = [pytest.mark.integration, pytest.mark.flink]

SETTINGS = Settings(meters=6, duration_ms=5 * 86_400_000, start=datetime(2024, 5, 1, tzinfo=UTC), seed=3, inject=True)
"""test_alerts_e2e.py's simulation (6 meters x 5 days, seed 3)."""

H = timedelta(hours=1)


@dataclass
class Restart:
    pipeline: MeterPipeline
    leak: dict[str, Any]
    opened: datetime
    split: int
    records: int
    restart_output: str
    expected: Expected


def _send(bootstrap: str, topic: str, items: list[tuple[bytes, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    try:
        for key, value in items:
            producer.send(topic, key=key, value=value)
        producer.flush(timeout=60)
    finally:
        producer.close()


def _committed(bootstrap: str, group: str, topic: str) -> int:
    partition = TopicPartition(topic, 0)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets({group: [partition]}).get(group, {})
    finally:
        admin.close()
    found = offsets.get(partition)
    return -1 if found is None else int(found.offset)


@pytest.fixture(scope="module")
def restart(broker: BrokerInfo, tmp_path_factory: pytest.TempPathFactory) -> Restart:
    out = tmp_path_factory.mktemp("alerts-restart")
    pipeline = unique_pipeline(
        "water-meters",
        source=ONE_PARTITION,
        flink={"parallelism": 1, "checkpointInterval": "2s"},
        rules=every_kind_rules(),
    )
    manifest = write_manifest(pipeline, out)
    simulation = Simulation(pipeline, SETTINGS)
    records: list[Record] = list(simulation.records())
    truth = simulation.truth.to_dict()
    (out / "records.jsonl").write_text(
        "".join(json.dumps({"key": r.key.decode(), **recorded_value(r.value), "kind": r.kind}) + "\n" for r in records)
    )
    [leak] = [e for e in truth["episodes"] if e["kind"] == "leak"]
    opened = instant(leak["start"]) + 24 * H
    split_ms = int((opened + 2 * H).replace(tzinfo=UTC).timestamp() * 1000)
    split = next(i for i, r in enumerate(records) if r.event_ms is not None and r.event_ms >= split_ms)

    names = names_for(pipeline)
    ensure_topics(broker.bootstrap, topic_plan(pipeline))
    _send(broker.bootstrap, names.topics.meters, simulation.meter_records())
    _send(broker.bootstrap, names.topics.readings, [(r.key, r.value) for r in records[:split]])
    job = Process("run", "-f", str(manifest))
    try:
        job.wait_for(r"streaming job \w+ running", timeout=300)
        leak_open = (
            f"SELECT count() FROM alerts_active WHERE rule = 'CONTINUOUS_FLOW' AND meter_id = '{leak['meter_id']}'"
        )
        assert poll(lambda: rows(pipeline, leak_open)[0][0], lambda n: n == 1, timeout=300) == 1, job.output
        # a checkpoint after the whole first part: its state holds the open alert
        committed = poll(
            lambda: _committed(broker.bootstrap, names.consumer_group, names.topics.readings),
            lambda n: n >= split, timeout=300, every=1.0,
        )  # fmt: skip
        assert committed == split, job.output
        assert job.running(), f"the continuous run ended by itself:\n{job.output}"
        job.kill_group(signal.SIGKILL)
        job.wait(timeout=60)
        assert group_gone(job.popen.pid, timeout=60), "the killed run's JVM is still alive"
    finally:
        job.stop()
    _send(broker.bootstrap, names.topics.readings, [(r.key, r.value) for r in records[split:]])
    restarted = meterflow("run", "-f", str(manifest), "--until-idle")
    return Restart(
        pipeline=pipeline,
        leak=leak,
        opened=opened,
        split=split,
        records=len(records),
        restart_output=restarted.stdout,
        expected=compute(pipeline, out / "records.jsonl", truth),
    )


def test_the_kill_landed_inside_the_leak_and_the_rerun_restored_a_checkpoint(restart: Restart) -> None:
    assert 0 < restart.split < restart.records
    assert re.search(r"restored from ?\S*/checkpoints/", flatten(restart.restart_output)), restart.restart_output


def test_the_leak_is_one_alert_across_the_restart(restart: Restart, broker: BrokerInfo) -> None:
    meter = restart.leak["meter_id"]
    [(alert_id, opened, state, resolved, breaches)] = rows(
        restart.pipeline,
        "SELECT alert_id, event_time, state, resolved_at, breaches FROM alerts FINAL "
        f"WHERE rule = 'CONTINUOUS_FLOW' AND meter_id = '{meter}'",
    )
    assert (opened, state, resolved, breaches) == (restart.opened, "RESOLVED", instant(restart.leak["quiet_end"]), 7)
    events = Counter(
        t for (t,) in rows(restart.pipeline, f"SELECT transition FROM alert_events FINAL WHERE alert_id = '{alert_id}'")
    )
    assert events == {"OPENED": 1, "ESCALATED": 1, "UPDATED": 6, "RESOLVED": 1}
    # the alerts topic (at least once) may repeat a transition after the restart, never with another id
    leak_records = [
        json.loads(v)
        for _, v in topic_records(broker.bootstrap, names_for(restart.pipeline).topics.alerts)
        if json.loads(v)["rule"] == "CONTINUOUS_FLOW" and json.loads(v)["meter_id"] == meter
    ]
    assert {r["alert_id"] for r in leak_records} == {alert_id}
    assert {r["transition"] for r in leak_records} == set(events)


def test_every_alert_equals_the_model_over_the_whole_record_file(restart: Restart) -> None:
    actual = {
        (m, rule, s, at): (state, resolved)
        for m, rule, s, at, state, resolved in rows(
            restart.pipeline, "SELECT meter_id, rule, series, event_time, state, resolved_at FROM alerts FINAL"
        )
    }
    assert set(actual) == restart.expected.alerts
    for key, alert in restart.expected.episodes.items():
        resolved = None if alert.resolved is None else datetime(1970, 1, 1) + timedelta(milliseconds=alert.resolved)
        assert actual[key] == (alert.state, resolved), key


def test_no_transition_was_lost_or_doubled(restart: Restart) -> None:
    """alert_events (FINAL: a transition re-sent after the restart replaces itself) holds the
    model's transitions exactly."""
    expected = Counter(
        (a.meter, a.rule, t, datetime(1970, 1, 1) + timedelta(milliseconds=at))
        for a in restart.expected.episodes.values()
        for t, at, _ in a.transitions
    )
    actual = Counter(
        tuple(r) for r in rows(restart.pipeline, "SELECT meter_id, rule, transition, at FROM alert_events FINAL")
    )
    assert actual == expected
