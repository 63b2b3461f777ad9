"""``meterflow simulate --via mqtt``: publish a simulation to the pipeline's MQTT broker, as devices would.

Each reading record becomes a message on the meter's topic (``spec.source.mqtt.topic`` with the
meter id in its ``+`` level): as it is for ``payload.format: reading``, merged per reporting slot
into seed 002's wide JSON for ``wide`` (:mod:`simulator.wide`). Messages go out with the
subscription's QoS; with QoS 1 the run ends only once the broker has acknowledged every message
(PUBACK), and paho resends what is unacknowledged after a reconnect — so a broker restart
mid-run loses nothing on the way in. At most ``WINDOW`` messages are unacknowledged at a time.
The ``--record`` file lists the messages: ``{"topic", "key", "value", "kind"}``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from meterflow.spec.model import MeterPipeline, MqttPayloadFormat
from meterflow.stack.mqtturl import parse_mqtt_url
from simulator.errors import SimulatorError
from simulator.pacing import Pacer
from simulator.producer import SendStats
from simulator.record import Record, recorded_value
from simulator.wide import Message, WideEncoder, source_of

WINDOW = 2_000
"""Messages published and not yet acknowledged by the broker, at most."""

ACK_TIMEOUT_S = 300.0
"""How long the end of a run waits for the last acknowledgements (a broker restart fits in it)."""

PROGRESS_EVERY = 2_000


class MqttSender:
    """A paho client publishing one run (use as a context manager)."""

    def __init__(
        self,
        pipeline: MeterPipeline,
        url: str,
        *,
        rate: float | None = None,
        speedup: float | None = None,
        record_file: Path | None = None,
        progress: bool = True,
        console: Console | None = None,
    ) -> None:
        if rate is not None and rate <= 0:
            raise SimulatorError(f"--rate {rate:g}: give a positive number of messages per second")
        if speedup is not None and speedup <= 0:
            raise SimulatorError(f"--speedup {speedup:g}: give a positive factor, e.g. 60 (a minute per second)")
        self.pipeline = pipeline
        self.source = source_of(pipeline)
        self.url = url
        self.qos = self.source.qos
        self.wide = WideEncoder(pipeline) if self.source.payload.format == MqttPayloadFormat.wide.value else None
        self.pacer = Pacer(rate, speedup)
        self.console = console or Console(stderr=True)
        self.progress = progress and self.console.is_terminal
        self._record_path = record_file
        self._record: IO[str] | None = None
        self._acked = 0
        self._lock = threading.Condition()
        self._refused: str | None = None
        address = parse_mqtt_url(url)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="", protocol=mqtt.MQTTv5)
        self.client.max_inflight_messages_set(WINDOW)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        if address.tls:
            self.client.tls_set()
        self.client.on_publish = self._on_publish
        self.client.on_connect = self._on_connect
        try:
            self.client.connect(address.host, address.port, keepalive=30)
        except OSError as exc:
            raise SimulatorError(
                f"cannot reach the MQTT broker at {url} ({exc}); start it with `meterflow up --mqtt`"
            ) from None

    def __enter__(self) -> MqttSender:
        if self._record_path is not None:
            self._record = self._record_path.open("w")
        self.client.loop_start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        try:
            self.client.disconnect()
            self.client.loop_stop()
        finally:
            if self._record is not None:
                self._record.close()

    def _on_connect(self, _c: mqtt.Client, _u: Any, _flags: Any, reason: ReasonCode, _p: Any) -> None:
        if reason.is_failure:
            self._refused = f"the MQTT broker at {self.url} refused the simulator: {reason}"

    def _on_publish(self, _c: mqtt.Client, _u: Any, _mid: int, _reason: ReasonCode, _p: Any) -> None:
        with self._lock:
            self._acked += 1
            self._lock.notify_all()

    def messages(self, records: Iterable[Record]) -> Iterator[Message]:
        """The MQTT messages of ``records`` in sending order."""
        if self.wide is not None:
            yield from self.wide.messages(iter(records))
            return
        topic_for = self.source.topic_for
        for r in records:
            key = r.key.decode()
            yield Message(topic_for(key), key, r.value, r.kind, r.event_ms)

    def run(self, records: Iterable[Record], total: int | None, label: str) -> SendStats:
        """Publish every message of ``records`` (paced, recorded); wait for the broker's acknowledgements."""
        wait = self.pacer.wait if self.pacer.active else None
        publish, record, qos = self.client.publish, self._record, self.qos
        bar = self._bar()
        task = bar.add_task(label, total=total, rate="") if bar is not None else None
        sent = 0
        began = time.monotonic()
        with bar if bar is not None else nullcontext():
            for m in self.messages(records):
                if wait is not None:
                    wait(m.event_ms)
                if qos > 0 and sent - self._acked >= WINDOW:
                    self._await(sent - WINDOW + 1)
                info = publish(m.topic, m.payload, qos=qos)
                if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
                    raise SimulatorError(f"paho refused message {sent + 1}: its queue is full")
                if record is not None:
                    record.write(_record_line(m))
                sent += 1
                if sent % PROGRESS_EVERY == 0 and bar is not None and task is not None:
                    rate = sent / max(time.monotonic() - began, 1e-9)
                    bar.update(task, completed=sent, rate=f"{rate:,.0f} messages/s")
            if qos > 0:
                self._await(sent, ACK_TIMEOUT_S)
        if qos == 0:
            time.sleep(0.2)  # let the network thread write the last QoS-0 messages
        return SendStats(sent, time.monotonic() - began)

    def _await(self, count: int, timeout_s: float = ACK_TIMEOUT_S) -> None:
        """Wait until the broker has acknowledged ``count`` messages in all."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while self._acked < count:
                if self._refused:
                    raise SimulatorError(self._refused)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SimulatorError(
                        f"the MQTT broker at {self.url} acknowledged {self._acked:,} of {count:,} messages "
                        f"within {timeout_s:.0f}s; is it running? (`meterflow status`)"
                    )
                self._lock.wait(min(left, 1.0))

    def _bar(self) -> Progress | None:
        if not self.progress:
            return None
        return Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )


def _record_line(m: Message) -> str:
    return json.dumps({"topic": m.topic, "key": m.key, **recorded_value(m.payload), "kind": m.kind}) + "\n"
