"""The one Kafka client factory against the real broker: both libraries' clients reach it, and the
broker sees each process by its ``meterflow-<role>`` client id."""

from __future__ import annotations

import uuid

import pytest
from kafka.admin import NewTopic

from meterflow import kafka_clients
from meterflow.stack.broker import BrokerInfo

pytestmark = pytest.mark.integration


def test_client_ids_name_the_process() -> None:
    assert kafka_clients.client_id("status") == "meterflow-status"
    assert kafka_clients.client_id("meterflow-wm-serving-sink") == "meterflow-wm-serving-sink"  # already named


def test_kafka_python_and_librdkafka_clients_round_trip(broker: BrokerInfo) -> None:
    topic = f"factory-{uuid.uuid4().hex[:8]}"
    admin = kafka_clients.admin(broker.bootstrap, "test-admin")
    try:
        admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        admin.close()

    producer = kafka_clients.producer(broker.bootstrap, "test", acks="all")
    producer.send(topic, key=b"m1", value=b"from kafka-python")
    producer.flush(timeout=30)
    producer.close()
    native = kafka_clients.native_producer(broker.bootstrap, "test-native", {"acks": "all"})
    native.produce(topic, key=b"m2", value=b"from librdkafka")
    assert native.flush(30) == 0

    consumer = kafka_clients.consumer(broker.bootstrap, "test", topic, auto_offset_reset="earliest",
                                      consumer_timeout_ms=5000)  # fmt: skip
    try:
        assert [(r.key, r.value) for r in consumer] == [(b"m1", b"from kafka-python"), (b"m2", b"from librdkafka")]
    finally:
        consumer.close()
    group = f"factory-{uuid.uuid4().hex[:8]}"
    reader = kafka_clients.native_consumer(broker.bootstrap, "test-native", group, {"auto.offset.reset": "earliest"})
    try:
        reader.subscribe([topic])
        seen: list[bytes | None] = []
        for _ in range(60):
            message = reader.poll(0.5)
            if message is not None and message.error() is None:
                seen.append(message.value())
            if len(seen) == 2:
                break
        assert seen == [b"from kafka-python", b"from librdkafka"]
        assert reader.memberid()  # joined the group it was given
    finally:
        reader.close()
