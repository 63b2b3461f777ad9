"""Send records to Kafka with kafka-python: batched, paced, recorded, with a progress bar.

Shared by ``meterflow simulate`` and ``meterflow replay`` (through :mod:`meterflow_cli.simulate`).
Keys and values are bytes already (pre-encoded JSON), so the producer runs without serializers;
batches are large (``linger_ms``, ``batch_size``), ``acks=1``, and the partition of each key
(murmur2, as the default partitioner and Java's) is computed once per meter, not per record.
kafka-python spends most of a run's time in ``send``; docs/simulator.md has the rates measured.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

from kafka.errors import KafkaError
from kafka.partitioner.default import murmur2
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from meterflow import kafka_clients
from simulator.errors import SimulatorError
from simulator.pacing import Pacer
from simulator.record import Record, recorded_value

LINGER_MS = 50
BATCH_BYTES = 1_048_576
PROGRESS_EVERY = 2_000


@dataclass(frozen=True)
class SendStats:
    """How many records went to the readings topic and how fast."""

    records: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


class Sender:
    """A kafka-python producer for one run (use as a context manager)."""

    def __init__(
        self,
        bootstrap: str,
        *,
        rate: float | None = None,
        speedup: float | None = None,
        record_file: Path | None = None,
        progress: bool = True,
        console: Console | None = None,
    ) -> None:
        if rate is not None and rate <= 0:
            raise SimulatorError(f"--rate {rate:g}: give a positive number of readings per second")
        if speedup is not None and speedup <= 0:
            raise SimulatorError(f"--speedup {speedup:g}: give a positive factor, e.g. 60 (a minute per second)")
        self.bootstrap = bootstrap
        self.pacer = Pacer(rate, speedup)
        self.console = console or Console(stderr=True)
        self.progress = progress and self.console.is_terminal
        self._record_path = record_file
        self._record: IO[str] | None = None
        self._failure: BaseException | None = None
        try:
            self.producer = kafka_clients.producer(
                bootstrap,
                "simulator",
                acks=1,
                enable_idempotence=False,
                linger_ms=LINGER_MS,
                batch_size=BATCH_BYTES,
                max_request_size=4 * BATCH_BYTES,
                metrics_enabled=False,
            )
        except (KafkaError, OSError, ValueError) as exc:
            raise SimulatorError(
                f"cannot reach Kafka at {bootstrap} ({exc}); start the broker with `meterflow up`"
            ) from None

    def __enter__(self) -> Sender:
        if self._record_path is not None:
            self._record = self._record_path.open("w")
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        try:
            self.producer.close(timeout=30)
        finally:
            if self._record is not None:
                self._record.close()

    def _failed(self, exc: BaseException) -> None:
        if self._failure is None:
            self._failure = exc

    def _check(self) -> None:
        if self._failure is not None:
            raise SimulatorError(f"Kafka at {self.bootstrap} refused a record: {self._failure}")

    def send_all(self, topic: str, items: Iterable[tuple[bytes, bytes]]) -> int:
        """Send ``(key, value)`` pairs unpaced and unrecorded (meter metadata); flush; return the count."""
        n = 0
        for key, value in items:
            self.producer.send(topic, value=value, key=key).add_errback(self._failed)
            n += 1
        self.producer.flush()
        self._check()
        return n

    def run(self, topic: str, records: Iterable[Record], total: int | None, label: str) -> SendStats:
        """Send ``records`` in order (paced, recorded); flush; return how many and how fast."""
        send, failed, record = self.producer.send, self._failed, self._record
        wait = self.pacer.wait if self.pacer.active else None
        partition = self._partitioner(topic)
        bar = self._bar()
        task = bar.add_task(label, total=total, rate="") if bar is not None else None
        sent = 0
        began = time.monotonic()
        with bar if bar is not None else nullcontext():
            for r in records:
                if wait is not None:
                    wait(r.event_ms)
                send(topic, value=r.value, key=r.key, partition=partition(r.key)).add_errback(failed)
                if record is not None:
                    record.write(_record_line(r))
                sent += 1
                if sent % PROGRESS_EVERY == 0:
                    self._check()
                    if bar is not None and task is not None:
                        rate = sent / max(time.monotonic() - began, 1e-9)
                        bar.update(task, completed=sent, rate=f"{rate:,.0f} readings/s")
            self.producer.flush()
            if bar is not None and task is not None:
                bar.update(task, completed=sent, total=max(sent, total or 0))
        self._check()
        return SendStats(sent, time.monotonic() - began)

    def _partitioner(self, topic: str) -> Callable[[bytes], int]:
        """The default partitioner's choice (murmur2 of the key, as Java's), cached per key."""
        partitions = sorted(self.producer.partitions_for(topic) or ())
        if not partitions:
            raise SimulatorError(f"topic {topic} has no partitions on {self.bootstrap}; run `meterflow up` again")
        cache: dict[bytes, int] = {}

        def partition(key: bytes) -> int:
            chosen = cache.get(key)
            if chosen is None:
                chosen = cache[key] = partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]
            return chosen

        return partition

    def _bar(self) -> Progress | None:
        """A transient rich progress bar on stderr, or None when off (or not a terminal)."""
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


def _record_line(r: Record) -> str:
    return json.dumps({"key": r.key.decode(), **recorded_value(r.value), "kind": r.kind}) + "\n"
