"""The one Kafka client factory: every meterflow process builds its Kafka clients here.

Two libraries, each where it serves best (docs/dependencies.md):

* kafka-python, the package the design names — :func:`admin`, :func:`producer`, :func:`consumer`:
  topics, offsets and lag, probes, and producers and consumers of a few records (meters,
  alert commands, the simulator's load, which kafka-python sends at ~35k records/s here). Pure
  Python, imported only when a client is made.
* confluent-kafka (librdkafka) — :func:`native_producer`, :func:`native_consumer`: the two
  per-record paths that run in Python, the serving sink's consumer and the MQTT bridge's producer
  (~175k records/s against kafka-python's ~50k, measured on the aggregates topic).

What every client shares is decided here: the bootstrap servers (resolved by
:mod:`meterflow.stack.endpoints` / :mod:`meterflow.stack.local`) and a ``client.id`` naming the
process (``meterflow-<role>``), which is what a broker's logs, quotas and metrics show. Each caller
passes only what its use needs (acks, linger, group, timeouts) in its library's own option names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from confluent_kafka import Consumer, Producer
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer


def client_id(role: str) -> str:
    """``meterflow-<role>``: the client id a broker shows for this process's clients."""
    return role if role.startswith("meterflow-") else f"meterflow-{role}"


def admin(bootstrap: str, role: str, **options: Any) -> KafkaAdminClient:
    """A kafka-python admin client (``options``: KafkaAdminClient's, e.g. ``request_timeout_ms``)."""
    from kafka import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=bootstrap, client_id=client_id(role), **options)


def producer(bootstrap: str, role: str, **options: Any) -> KafkaProducer:
    """A kafka-python producer (``options``: KafkaProducer's, e.g. ``acks="all"``, ``linger_ms``)."""
    from kafka import KafkaProducer

    return KafkaProducer(bootstrap_servers=bootstrap, client_id=client_id(role), **options)


def consumer(bootstrap: str, role: str, *topics: str, **options: Any) -> KafkaConsumer:
    """A kafka-python consumer, subscribed to ``topics`` if any (``options``: KafkaConsumer's)."""
    from kafka import KafkaConsumer

    return KafkaConsumer(*topics, bootstrap_servers=bootstrap, client_id=client_id(role), **options)


def native_producer(bootstrap: str, role: str, config: Mapping[str, Any]) -> Producer:
    """A librdkafka producer (``config``: librdkafka's property names, callbacks included)."""
    from confluent_kafka import Producer

    return Producer({"bootstrap.servers": bootstrap, "client.id": client_id(role), **config})


def native_consumer(bootstrap: str, role: str, group_id: str, config: Mapping[str, Any]) -> Consumer:
    """A librdkafka consumer in ``group_id`` (``config``: librdkafka's property names, callbacks included)."""
    from confluent_kafka import Consumer

    return Consumer({"bootstrap.servers": bootstrap, "client.id": client_id(role), "group.id": group_id, **config})
