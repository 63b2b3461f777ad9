"""The bridge process: MQTT messages in, Kafka records out, an MQTT acknowledgement only after Kafka's.

Guarantees (docs/mqtt.md has the reasoning):

* **At least once, end to end.** The bridge subscribes with QoS 1 on a persistent session (MQTT 5,
  clean start off, a session expiry), acknowledges by hand (paho's ``manual_ack``) and sends the
  PUBACK of a message only once Kafka has acknowledged every record made from it (an idempotent
  producer, ``acks=all``). PUBACKs go out in the order the messages came in (MQTT's rule). A
  message whose acknowledgement never went out — the bridge was killed, the connection dropped —
  is redelivered by the broker when the session resumes, and forwarded again: a duplicate on
  Kafka, which the streaming job removes (same meter, measurement, series and event time).
  Acknowledgements are tied to the connection a message came on: after a reconnect, the
  messages of the old connection are not acknowledged (their packet ids may be reused); the broker
  redelivers them.
* **Keyed by meter.** Every record's key is the meter id from the topic; the partition is the
  Java client's (murmur2), so the simulator, the bridge and any Kafka producer agree.
* **Backpressure.** At most ``maxInflight`` messages are unacknowledged (MQTT 5 Receive Maximum):
  when Kafka is slow, acknowledgements slow down, the window fills and the broker holds the rest
  (queued in the persistent session) until the bridge catches up. Nothing waits in the bridge's
  memory beyond that window.
* **Dead letters.** A message that cannot be mapped (:mod:`meterflow_bridge.mapping`) goes to
  ``<name>.readings.dlq`` as a :mod:`meterflow.deadletter` record with ``source: mqtt``, the
  MQTT topic and the topic's meter id, and is acknowledged once Kafka has the dead letter.

One thread: paho's network loop is driven here (``client.loop``), interleaved with the Kafka
producer's ``poll`` that runs the delivery callbacks, so no state is shared between threads.
Started by ``meterflow bridge`` (:mod:`meterflow_cli.bridge`).
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from confluent_kafka import KafkaError, KafkaException, Message
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from meterflow import kafka_clients
from meterflow.deadletter import DeadLetterSource, MqttReason, dead_letter
from meterflow.errors import MeterflowError
from meterflow.spec.durations import to_millis
from meterflow.spec.model import MeterPipeline
from meterflow.spec.names import names_for
from meterflow.stack.mqtturl import parse_mqtt_url
from meterflow_bridge.mapping import Mapped, Mapper, Refused

KEEPALIVE_S = 30
RECONNECT_MIN_S = 0.5
RECONNECT_MAX_S = 10.0
REPORT_EVERY_S = 10.0
LINGER_MS = 5
DRAIN_TIMEOUT_S = 30.0
MAX_RECORD_BYTES = 1_000_000
"""The producer's ``message.max.bytes`` (below the broker's default 1,048,588): larger messages are dead-lettered."""
SESSION_EXPIRY_MAX_S = 0xFFFFFFFE  # 0xFFFFFFFF means "never expires" in MQTT 5


class BridgeError(MeterflowError):
    """The bridge cannot go on (Kafka refused a record, the broker refused the bridge)."""


@dataclass
class Stats:
    """What the bridge did since it started."""

    received: int = 0
    redelivered: int = 0
    forwarded: int = 0
    readings: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)
    acknowledged: int = 0
    unacknowledged_on_reconnect: int = 0
    connections: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def dead_lettered(self) -> int:
        return sum(self.dead_letters.values())

    def line(self, inflight: int) -> str:
        seconds = max(time.monotonic() - self.started, 1e-9)
        reasons = ", ".join(f"{r}: {n:,}" for r, n in sorted(self.dead_letters.items()))
        return (
            f"{self.received:,} messages in ({self.redelivered:,} redelivered), {self.forwarded:,} forwarded as "
            f"{self.readings:,} readings, {self.dead_lettered:,} dead-lettered{f' ({reasons})' if reasons else ''}, "
            f"{self.acknowledged:,} acknowledged, {inflight:,} in flight; {self.received / seconds:,.0f} messages/s"
        )


class _Pending:
    """One MQTT message on its way to Kafka: acknowledged once ``waiting`` reaches 0."""

    __slots__ = ("connection", "error", "mid", "qos", "waiting")

    def __init__(self, mid: int, qos: int, connection: int, waiting: int) -> None:
        self.mid = mid
        self.qos = qos
        self.connection = connection
        self.waiting = waiting
        self.error: KafkaError | None = None

    def delivered(self, error: KafkaError | None, _message: Message) -> None:
        self.waiting -= 1
        if error is not None and self.error is None:
            self.error = error


class Bridge:
    """Bridges one pipeline's MQTT topic filter to its Kafka readings topic (see the module docstring)."""

    def __init__(
        self,
        pipeline: MeterPipeline,
        *,
        mqtt_url: str,
        bootstrap: str,
        password: str | None = None,
        log: Callable[[str], None] = print,
        report_every: float = REPORT_EVERY_S,
    ) -> None:
        source = pipeline.spec.source.mqtt
        if source is None:
            raise BridgeError(f"MeterPipeline {pipeline.name} has no spec.source.mqtt; nothing to bridge")
        self.pipeline = pipeline
        self.source = source
        self.url = mqtt_url
        self.address = parse_mqtt_url(mqtt_url)
        self.topics = names_for(pipeline).topics
        self.mapper = Mapper(pipeline)
        self.log = log
        self.report_every = report_every
        self.stats = Stats()
        self._pending: deque[_Pending] = deque()
        self._backlog: deque[tuple[str, bytes, bytes, _Pending]] = deque()
        self._connection = 0
        self._connected = False
        self._subscribed = False
        self._draining = False
        self._refused: str | None = None
        fields = max(1, len(source.payload.fields))
        self.producer = kafka_clients.native_producer(
            bootstrap,
            f"bridge-{pipeline.name}",
            {
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": LINGER_MS,
                "partitioner": "murmur2_random",
                "queue.buffering.max.messages": max(100_000, 2 * source.max_inflight * fields),
                "message.max.bytes": MAX_RECORD_BYTES + 10_000,
                "error_cb": self._kafka_error,
            },
        )
        self.client = self._client(password)

    # --- MQTT ----------------------------------------------------------------------------------

    def _client(self, password: str | None) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.source.client_id_for(self.pipeline.name),
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if self.source.username:
            client.username_pw_set(self.source.username, password)
        if self.address.tls:
            client.tls_set()
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    def _connect_properties(self) -> Properties:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = min(to_millis(self.source.session_expiry) // 1000, SESSION_EXPIRY_MAX_S)
        properties.ReceiveMaximum = self.source.max_inflight
        return properties

    def _connect(self) -> None:
        self.client.connect(
            self.address.host,
            self.address.port,
            keepalive=KEEPALIVE_S,
            clean_start=False,
            properties=self._connect_properties(),
        )

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, flags: mqtt.ConnectFlags, reason: ReasonCode, _props: Any
    ) -> None:
        if reason.is_failure:
            self._refused = f"the broker at {self.url} refused the bridge: {reason}"
            return
        self._connection += 1
        self._connected = True
        self.stats.connections += 1
        session = "resumed" if flags.session_present else "new"
        self.log(f"connected to {self.url} as {self.source.client_id_for(self.pipeline.name)} ({session} session)")
        # Always (re)subscribe: harmless on a resumed session, and it heals a broker that lost it.
        client.subscribe(self.source.topic, qos=self.source.qos)

    def _on_subscribe(
        self, _client: mqtt.Client, _userdata: Any, _mid: int, reasons: list[ReasonCode], _props: Any
    ) -> None:
        if any(r.is_failure for r in reasons):
            self._refused = f"the broker at {self.url} refused the subscription to {self.source.topic!r}: {reasons[0]}"
            return
        if not self._subscribed:
            self.log(
                f"subscribed to {self.source.topic} (QoS {self.source.qos}) on {self.url}; "
                f"forwarding to {self.topics.readings}"
            )
        self._subscribed = True

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: ReasonCode, _props: Any
    ) -> None:
        if self._connected:
            unacked = len(self._pending)
            self.stats.unacknowledged_on_reconnect += unacked
            self.log(
                f"disconnected from {self.url} ({reason}); {unacked:,} unacknowledged messages will be redelivered"
            )
        self._connected = False

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        if self._draining:
            return  # not acknowledged: the broker redelivers it to the next session
        self.stats.received += 1
        if message.dup:
            self.stats.redelivered += 1
        payload = bytes(message.payload)
        mapped = self.mapper.map(message.topic, payload)
        if isinstance(mapped, Mapped) and max(len(v) for v in mapped.values) + len(mapped.key) > MAX_RECORD_BYTES:
            biggest = max(len(v) for v in mapped.values)
            mapped = Refused(
                mapped.key, MqttReason.too_large, f"a record of {biggest:,} bytes; Kafka takes {MAX_RECORD_BYTES:,}"
            )
        if isinstance(mapped, Mapped):
            pending = _Pending(message.mid, message.qos, self._connection, len(mapped.values))
            self._pending.append(pending)
            self.stats.forwarded += 1
            self.stats.readings += len(mapped.values)
            for value in mapped.values:
                self._produce(self.topics.readings, mapped.key, value, pending)
        else:
            pending = _Pending(message.mid, message.qos, self._connection, 1)
            self._pending.append(pending)
            self._dead_letter(mapped, message.topic, payload, pending)

    # --- Kafka ---------------------------------------------------------------------------------

    def _produce(self, topic: str, key: bytes, value: bytes, pending: _Pending) -> None:
        if self._backlog:
            self._backlog.append((topic, key, value, pending))
            return
        try:
            self.producer.produce(topic, value=value, key=key, on_delivery=pending.delivered)
        except BufferError:
            self._backlog.append((topic, key, value, pending))
        except KafkaException as exc:
            raise BridgeError(f"Kafka refused a record for {topic}: {exc}") from None

    def _dead_letter(self, refused: Refused, topic: str, payload: bytes, pending: _Pending) -> None:
        self.stats.dead_letters[refused.reason.value] += 1
        letter = dead_letter(
            refused.reason.value,
            refused.detail,
            payload,
            pipeline=self.pipeline.name,
            source=DeadLetterSource.mqtt,
            mqtt_topic=topic,
            ingest_time=datetime.now(UTC),
            meter_id=self.mapper.meter_id(topic),
        )
        self._produce(self.topics.dlq, refused.key, letter, pending)

    def _flush_backlog(self) -> None:
        while self._backlog:
            topic, key, value, pending = self._backlog[0]
            try:
                self.producer.produce(topic, value=value, key=key, on_delivery=pending.delivered)
            except BufferError:
                return
            self._backlog.popleft()

    def _kafka_error(self, error: KafkaError) -> None:
        if error.fatal():
            self._refused = f"the Kafka producer failed: {error}"

    def _acknowledge(self) -> None:
        """PUBACK every message at the head of the queue whose records Kafka has, in arrival order."""
        pending = self._pending
        while pending and pending[0].waiting <= 0:
            done = pending.popleft()
            if done.error is not None:
                raise BridgeError(
                    f"Kafka did not take a record of message {done.mid}: {done.error}; the messages not acknowledged "
                    "stay with the MQTT broker and come again when the bridge restarts"
                )
            if done.qos > 0 and done.connection == self._connection and self._connected:
                self.client.ack(done.mid, done.qos)
            self.stats.acknowledged += 1

    # --- the loop ------------------------------------------------------------------------------

    def run(self, should_stop: Callable[[], bool]) -> Stats:
        """Bridge until ``should_stop()`` is true; then drain (Kafka acknowledges, PUBACKs go out) and disconnect."""
        next_report = time.monotonic() + self.report_every
        delay, retry_at = RECONNECT_MIN_S, 0.0
        has_socket, first = False, True
        try:
            while not should_stop():
                if self._refused:
                    raise BridgeError(self._refused)
                now = time.monotonic()
                if not has_socket:
                    if now >= retry_at:
                        try:
                            if first:
                                self._connect()
                            else:
                                self.client.reconnect()
                            has_socket, first = True, False
                        except OSError as exc:
                            self.log(f"cannot reach the MQTT broker at {self.url} ({exc}); retrying in {delay:.1f}s")
                            retry_at, delay = now + delay, min(delay * 2, RECONNECT_MAX_S)
                    if not has_socket:
                        self._poll_kafka(0.1)
                        continue
                if self.client.loop(timeout=0.01) != mqtt.MQTT_ERR_SUCCESS:
                    self._connected = False
                    has_socket = False
                    retry_at, delay = now + delay, min(delay * 2, RECONNECT_MAX_S)
                elif self._connected:
                    delay = RECONNECT_MIN_S
                self._poll_kafka(0)
                if now >= next_report:
                    self.log(self.stats.line(len(self._pending)))
                    next_report = now + self.report_every
            self._drain()
        finally:
            self.producer.flush(DRAIN_TIMEOUT_S)
        return self.stats

    def _poll_kafka(self, timeout: float) -> None:
        self._flush_backlog()
        self.producer.poll(timeout)
        self._acknowledge()

    def _drain(self) -> None:
        """Stop taking messages, let Kafka acknowledge what is in flight, send those PUBACKs, disconnect."""
        self._draining = True
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while (self._pending or self._backlog) and time.monotonic() < deadline:
            self._poll_kafka(0.05)
            if self.client.is_connected():
                self.client.loop(timeout=0.01)
        if self.client.is_connected():
            for _ in range(5):  # write the last PUBACKs
                self.client.loop(timeout=0.01)
            self.client.disconnect()
            self.client.loop(timeout=0.1)
        self.log(f"stopped: {self.stats.line(len(self._pending))}")
