"""The serving sink against the real broker and chDB: every route lands exactly (window blocks as
RowBinary, alerts through their views, labelled by the meters written first, dead letters of both
sources keyed by where they came from), the offsets it commits are those of what it wrote, and an
insert the engine refuses stops it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from meterflow import kafka_clients
from meterflow.deadletter import DeadLetterSource, dead_letter
from meterflow.spec.names import Topics, names_for
from meterflow.spec.topics import topic_plan
from meterflow.stack.broker import BrokerInfo
from meterflow.stack.topics import ensure_topics
from meterflow_clickhouse.client import session
from meterflow_clickhouse.schema import ensure_schema
from meterflow_clickhouse.sink import ServingSink, routes
from tests.conftest import unique_pipeline

pytestmark = pytest.mark.integration

WINDOW_ROWS = 3


def _alert(alert_id: str, meter: str, first: float, value: float, breaches: int, transition: str) -> bytes:
    """A transition as the job writes it: ``value`` is the alert's first breach, ``transition_value``
    the one that made this transition."""
    return json.dumps({
        "alert_id": alert_id, "transition": transition, "at": "2024-06-01T00:15:00.000Z", "meter_id": meter,
        "rule": "HIGH_FLOW", "kind": "threshold", "series": "P1", "measurement_type": "Pulse1", "unit": "L",
        "severity": "WARNING", "state": "OPEN", "event_time": "2024-06-01T00:15:00.000Z",
        "last_seen": "2024-06-01T00:15:00.000Z", "breaches": breaches, "value": first, "transition_value": value,
        "last_value": value, "peak_value": value, "condition": "value > 500", "threshold": 500.0, "escalated": False,
    }).encode()  # fmt: skip


def _job_dead_letter(reason: str, meter: str, event_time: str | None, source_offset: int) -> bytes:
    """A dead letter as the streaming job writes it (io.meterflow.stream.KafkaRecords.DeadLetters)."""
    return json.dumps({
        "reason": reason, "detail": "why", "meter_id": meter, "event_time": event_time, "payload": "{}",
        "payload_encoding": "utf-8", "payload_bytes": 2, "payload_sha256": "44136fa3", "payload_truncated": False,
        "source": "kafka", "source_partition": 3, "source_offset": source_offset,
        "ingest_time": "2024-06-01T00:16:00.250Z", "pipeline": "p",
    }).encode()  # fmt: skip


@pytest.fixture
def sink_setup(broker: BrokerInfo, tmp_path: Path) -> Iterator[tuple[str, str, Topics]]:
    """A fresh pipeline's topics and a chDB folder with its schema: (dsn, database, topics)."""
    pipeline = unique_pipeline("water-meters")
    names = names_for(pipeline)
    ensure_topics(broker.bootstrap, topic_plan(pipeline))
    dsn = f"chdb://{tmp_path / 'clickhouse'}"
    with session(dsn) as client:
        ensure_schema(client, pipeline)
        # one RowBinary block of window rows, encoded by the engine itself
        block = client.raw_query(
            f"SELECT 'm1' AS meter_id, 'Pulse1' AS measurement_type, 'P1' AS series, 'L' AS unit, "
            "toDateTime64('2024-06-01 00:00:00', 3, 'UTC') + number * 300 AS window_start, "
            "window_start + 300 AS window_end, toUInt64(1) AS readings, toFloat64(number) AS sum, sum AS avg, "
            "sum AS min, sum AS max, toFloat64(0) AS stddev, toNullable(sum) AS consumption, "
            f"toUInt64(number + 1) AS version, toUInt8(0) AS is_deleted FROM numbers({WINDOW_ROWS})",
            fmt="RowBinary",
        )
    topics = names.topics
    producer = kafka_clients.native_producer(broker.bootstrap, "test-sink", {"acks": "all"})
    producer.produce(topics.meters, key=b"m1", value=json.dumps({
        "meter_id": "m1", "meter_type": "residential", "suburb": "GRIFFIN", "postcode": "4503", "usage_type": "home",
    }).encode())  # fmt: skip
    producer.produce(topics.aggregates, key=b"m1", value=block)
    producer.produce(topics.alerts, key=b"m1", value=_alert("a1", "m1", 900.0, 900.0, 1, "OPENED"))
    producer.produce(topics.alerts, key=b"m1", value=_alert("a1", "m1", 900.0, 950.0, 2, "UPDATED"))
    producer.produce(topics.alerts, key=b"m2", value=_alert("a2", "m2", 700.0, 700.0, 1, "OPENED"))
    # dead letters, all in partition 0: the job's, the bridge's, one of no meter, the first again (a replay)
    refused = _job_dead_letter("out_of_range", "m1", "2024-06-01T00:15:00Z", 41)
    producer.produce(topics.dlq, key=b"m1", value=refused, partition=0)
    producer.produce(topics.dlq, key=b"room_1", partition=0, value=dead_letter(
        "meter_mismatch", "room_id 'room_9' in a message on 'buildings/room_1/telemetry'", b'{"room_id":"room_9"}',
        pipeline="p", source=DeadLetterSource.mqtt, mqtt_topic="buildings/room_1/telemetry",
        ingest_time=datetime(2024, 6, 1, 0, 17, tzinfo=UTC), meter_id="room_1",
    ))  # fmt: skip
    producer.produce(topics.dlq, value=_job_dead_letter("bad_json", "", None, 42), partition=0)
    producer.produce(topics.dlq, key=b"m1", value=refused, partition=0)
    assert producer.flush(30) == 0
    yield dsn, names.clickhouse_database, topics


def _sink(broker: BrokerInfo, dsn: str, database: str, topics: Topics, group: str) -> ServingSink:
    return ServingSink(broker.bootstrap, dsn, database, routes(topics), group_id=group)


def test_every_route_lands_once_and_is_committed(broker: BrokerInfo, sink_setup: tuple[str, str, Topics]) -> None:
    dsn, database, topics = sink_setup
    sink = _sink(broker, dsn, database, topics, f"{database}-sink")
    try:
        sink.drain(settle_s=0.5, timeout_s=120)
        assert sink.caught_up()
        assert sink.stats.rows == {
            "meters": 1, "readings_agg_queue": WINDOW_ROWS, "alert_transitions_queue": 3, "dead_letters": 4,
        }  # fmt: skip
    finally:
        sink.close()
    with session(dsn, database=database) as client:
        assert client.query(
            "SELECT alert_id, breaches, value, suburb FROM alerts FINAL ORDER BY alert_id"
        ).result_rows == [("a1", 2, 900.0, "GRIFFIN"), ("a2", 1, 700.0, "unknown")]
        assert client.query(
            "SELECT alert_id, transition, value FROM alert_events FINAL ORDER BY alert_id, value"
        ).result_rows == [("a1", "OPENED", 900.0), ("a1", "UPDATED", 950.0), ("a2", "OPENED", 700.0)]
        assert client.query("SELECT count(), sum(sum) FROM readings_agg FINAL").result_rows == [(WINDOW_ROWS, 3.0)]
        # a kafka dead letter is keyed by the readings record it refused (its replay replaced it: version 3),
        # the bridge's by its own place in the dead-letter topic
        taken_in, bridged = datetime(2024, 6, 1, 0, 16, 0, 250000), datetime(2024, 6, 1, 0, 17)
        assert client.query(
            "SELECT source, source_partition, source_offset, dlq_partition, dlq_offset, version, reason, meter_id, "
            "event_time, ingest_time, mqtt_topic FROM dead_letters FINAL ORDER BY source, source_offset"
        ).result_rows == [
            ("kafka", 3, 41, 0, 3, 3, "out_of_range", "m1", datetime(2024, 6, 1, 0, 15), taken_in, ""),
            ("kafka", 3, 42, 0, 2, 2, "bad_json", "", None, taken_in, ""),
            ("mqtt", 0, 1, 0, 1, 1, "meter_mismatch", "room_1", None, bridged, "buildings/room_1/telemetry"),
        ]

    # What was written was committed: the group's next sink has nothing to read.
    again = _sink(broker, dsn, database, topics, f"{database}-sink")
    try:
        again.drain(settle_s=0.5, timeout_s=120)
        assert again.stats.rows == {}
    finally:
        again.close()


def test_an_insert_the_engine_refuses_stops_the_sink(broker: BrokerInfo, sink_setup: tuple[str, str, Topics]) -> None:
    dsn, database, topics = sink_setup
    producer = kafka_clients.native_producer(broker.bootstrap, "test-sink", {"acks": "all"})
    producer.produce(topics.alerts, key=b"m3", value=b'{"alert_id": "a3", "at": "not a time at all"}')
    assert producer.flush(30) == 0
    sink = _sink(broker, dsn, database, topics, f"{database}-failing")
    try:
        with pytest.raises(Exception, match=r"DateTime|not a time at all"):
            sink.drain(settle_s=0.5, timeout_s=120)
    finally:
        sink.close()
