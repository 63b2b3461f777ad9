"""The serving sink: the streaming job's result topics into ClickHouse, idempotently.

No Flink connector writes to ClickHouse through SQL (FACTS.md), so the job writes its results to
Kafka and this sink copies them — plus the meter metadata topic — into ClickHouse, never looking
at a row:

* **window results** come as blocks of ClickHouse ``RowBinary`` rows (many rows a Kafka record,
  each row carrying its version): the blocks of a poll are concatenated into one insert;
* **alerts**, **ingest counters**, **meters** and **dead letters** come as one JSON object a
  record: they are handed over as ``JSONEachRow`` with the record's Kafka offset appended as
  ``version`` (one key always lands in one partition, so a newer record of a key has a higher
  offset); a dead letter also gets its own place in the topic (``dlq_partition``, ``dlq_offset``:
  the key of the bridge's, which come from no readings record).

Every table is a ``ReplacingMergeTree(version, is_deleted)`` keyed by its natural key, so a
replay, a restart or a re-sent record rewrites the same row; offsets are committed after the
insert (a crash in between re-inserts the same versions), asynchronously, so a broker that is
away never holds up the sink.

**Few inserts, alerts first.** Every insert makes a part (about 10 ms of engine CPU in chDB, more
through a materialized view, whatever its size), so records wait to be written together: window
results and counters up to 1 s (or until ``max_insert_bytes`` are held); an alert after a quiet
spell is written at once, a stream of them at most every 0.1 s (measured against 0.25 s, with window
blocks flowing: produce to queryable p50 233 → 110 ms, p99 ~420 → ~190 ms; under CPU contention p50
~290 → ~190 ms); meter metadata is written before any result it labels. Offsets are committed per
partition up to what was written. The embedded engine stays open for the sink's life
(:class:`~meterflow_clickhouse.client.HeldSession`) and serves the readers (``meterflow sql``,
the batch job, the report) from this process; window results are written in chunks of at most
``max_insert_bytes``, so a reader's query waits for one chunk at most.

The consumer is librdkafka's (confluent-kafka): kafka-python consumed at most ~50k records/s
here even doing nothing with them (measured).

An ``observer`` (:class:`~meterflow_clickhouse.observe.SinkMetrics`) hears of every record read,
every insert and every retry: the run's Prometheus metrics. ``after_windows`` is called after every
write of window results: the anomaly scorer (:class:`~meterflow_clickhouse.anomalies.WindowScorer`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from meterflow import kafka_clients
from meterflow.spec.names import Topics
from meterflow_clickhouse.client import HeldSession
from meterflow_clickhouse.observe import SinkMetrics

log = logging.getLogger(__name__)

TRANSIENT_WARN_EVERY_S = 60.0
"""A recoverable Kafka error (the broker restarting) is logged at most this often per kind."""

JSON_SETTINGS: dict[str, Any] = {
    "input_format_skip_unknown_fields": 1,
    "input_format_null_as_default": 1,
    "date_time_input_format": "best_effort",
}

AGGREGATE_COLUMNS = (
    "meter_id",
    "measurement_type",
    "series",
    "unit",
    "window_start",
    "window_end",
    "readings",
    "sum",
    "avg",
    "min",
    "max",
    "stddev",
    "consumption",
    "version",
    "is_deleted",
)
"""The columns of a RowBinary window row, in order (the JVM's RowBinaryBlocks writes them so)."""


@dataclass(frozen=True)
class Route:
    """Where the records of one topic go, how they read, and how long they may wait."""

    table: str
    row_binary: bool = False
    """Records are blocks of RowBinary rows of :data:`AGGREGATE_COLUMNS` (else one JSON object each)."""
    linger_s: float = 1.0
    """Records wait up to this long to be written with others (every insert makes a part)."""
    min_gap_s: float = 0.0
    """Two inserts of this route are at least this far apart: the first record after a quiet spell
    is written at once, a stream of them in a few inserts a second."""
    metadata: bool = False
    """Written before every result it labels (the enrichment views read it): meters."""
    tombstone_key: str | None = None
    """A record without a value deletes the row whose column of this name is the record's key."""
    position: tuple[str, str] | None = None
    """The record's own partition and offset are appended under these two column names."""


AGGREGATES = Route("readings_agg_queue", row_binary=True)
ALERTS = Route("alert_transitions_queue", linger_s=0.0, min_gap_s=0.1)
COUNTERS = Route("ingest_counters")
METERS = Route("meters", linger_s=0.0, metadata=True, tombstone_key="meter_id")
DEAD_LETTERS = Route("dead_letters", position=("dlq_partition", "dlq_offset"))


def routes(topics: Topics) -> dict[str, Route]:
    """The route each of a pipeline's topics takes into ClickHouse (what its serving sink reads)."""
    return {
        topics.aggregates: AGGREGATES,
        topics.alerts: ALERTS,
        topics.counters: COUNTERS,
        topics.meters: METERS,
        topics.dlq: DEAD_LETTERS,
    }


@dataclass
class SinkStats:
    """What the sink has written so far, per table."""

    rows: dict[str, int] = field(default_factory=dict)
    inserts: int = 0

    def add(self, table: str, n: int) -> None:
        self.rows[table] = self.rows.get(table, 0) + n
        self.inserts += 1


@dataclass
class _Pending:
    """Records of one topic read but not yet written."""

    pieces: list[bytes] = field(default_factory=list)
    rows: int = 0
    size: int = 0
    since: float = 0.0
    offsets: dict[int, int] = field(default_factory=dict)
    """partition → the last offset held."""


class ServingSink:
    """Copies result topics into one ClickHouse database (call :meth:`poll` in a loop)."""

    def __init__(
        self,
        bootstrap: str,
        dsn: str,
        database: str,
        routes: dict[str, Route],
        group_id: str,
        max_records: int = 2000,
        max_insert_bytes: int = 8 << 20,
        observer: SinkMetrics | None = None,
        after_windows: Callable[[Any], Any] | None = None,
    ) -> None:
        self.dsn = dsn
        self.after_windows = after_windows
        """Called with the engine's client after every write of window results (the anomaly scorer)."""
        self.database = database
        self.routes = routes
        self.stats = SinkStats()
        self._max_records = max_records
        self._max_insert_bytes = max_insert_bytes
        self._engine = HeldSession(dsn, database=database)
        self._engine.client()  # open (and serve) the embedded engine for the life of the sink
        self._pending: dict[str, _Pending] = {topic: _Pending() for topic in routes}
        self._written: dict[tuple[str, int], int] = {}
        self._last_write: dict[str, float] = {}
        self._committed: dict[tuple[str, int], int] = {}
        self._warned: dict[str, float] = {}
        self._commit_in_flight = False
        self._consumer = kafka_clients.native_consumer(
            bootstrap,
            f"{group_id}-sink",
            group_id,
            {
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "fetch.max.bytes": 64 << 20,
                "max.partition.fetch.bytes": 16 << 20,
                "fetch.wait.max.ms": 100,
                # Errors reach error_cb (and :meth:`_kafka_error`), not librdkafka's own stderr log.
                "error_cb": self._kafka_error,
                "on_commit": self._on_commit,
                "log_level": 2,
            },
        )
        self._consumer.subscribe(list(routes))
        self.observer = observer
        if observer is not None:
            with self._engine.lock:
                observer.load(self._engine.client(), database)
            observer.attach(self._consumer)
        self._metadata = [t for t, r in routes.items() if r.metadata]
        # Urgent routes (the shortest linger) first, then the rest.
        self._order = sorted(routes, key=lambda t: (not routes[t].metadata, routes[t].linger_s))

    def poll(self, timeout_ms: int = 50, flush: bool = False) -> int:
        """Read what is available (waiting up to ``timeout_ms``) and write what is due (everything
        with ``flush``); rows written."""
        for message in self._consumer.consume(num_messages=self._max_records, timeout=timeout_ms / 1000):
            self._hold(message)
        written = self._write_due(flush)
        self._commit()
        return written

    def _hold(self, message: Any) -> None:
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                return
            self._kafka_error(error)
            return
        topic, offset, partition, value = message.topic(), message.offset(), message.partition(), message.value()
        if topic is None or offset is None or partition is None:  # only error events lack these
            return
        route, pending = self.routes[topic], self._pending[topic]
        if self.observer is not None:
            self.observer.read(topic, partition, message.timestamp()[1])
        if route.row_binary:
            piece = value or b""
            rows = 0
        else:
            row = _json_row(route, message.key(), value, partition, offset)
            if row is None:
                log.warning("skipped a record of %s at offset %s: not a JSON object", topic, offset)
            piece = row or b""
            rows = 1 if row else 0
        if not pending.offsets and not pending.pieces:
            pending.since = time.monotonic()
        if piece:
            pending.pieces.append(piece)
            pending.size += len(piece)
            pending.rows += rows
        pending.offsets[partition] = offset

    def _write_due(self, flush: bool) -> int:
        now = time.monotonic()
        due = [
            t
            for t in self._order
            if self._pending[t].offsets
            and (
                flush
                or self._pending[t].size >= self._max_insert_bytes
                or (
                    now - self._pending[t].since >= self.routes[t].linger_s
                    and now - self._last_write.get(t, 0.0) >= self.routes[t].min_gap_s
                )
            )
        ]
        if due and not set(due) <= set(self._metadata):
            due = [t for t in self._metadata if self._pending[t].offsets and t not in due] + due
        return sum(self._write(topic) for topic in due)

    def _write(self, topic: str) -> int:
        route, pending = self.routes[topic], self._pending[topic]
        self._pending[topic] = _Pending()
        self._last_write[topic] = time.monotonic()
        written = 0
        if route.row_binary:
            for chunk in _chunks(pending.pieces, self._max_insert_bytes):
                if chunk:
                    block, started = b"".join(chunk), time.perf_counter()
                    summary = self._engine.client().raw_insert(
                        route.table, column_names=list(AGGREGATE_COLUMNS), insert_block=block, fmt="RowBinary"
                    )
                    written += int(summary.written_rows)
                    self.stats.add(route.table, int(summary.written_rows))
                    if self.observer is not None:
                        self.observer.inserted(
                            topic, route.table, [], int(summary.written_rows), len(block), time.perf_counter() - started
                        )
            if written and self.after_windows is not None:
                with self._engine.lock:  # the serving threads' readers wait for it, as for a write
                    self.after_windows(self._engine.client())
        elif pending.pieces:
            block, started = b"\n".join(pending.pieces), time.perf_counter()
            self._engine.client().raw_insert(route.table, insert_block=block, fmt="JSONEachRow", settings=JSON_SETTINGS)
            written = pending.rows
            self.stats.add(route.table, written)
            if self.observer is not None:
                seconds = time.perf_counter() - started
                self.observer.inserted(topic, route.table, pending.pieces, written, len(block), seconds)
        for partition, offset in pending.offsets.items():
            self._written[(topic, partition)] = offset
        return written

    def caught_up(self) -> bool:
        """True when every assigned partition has been read to its end offset and nothing is held
        (False while the broker cannot say)."""
        if any(p.offsets for p in self._pending.values()):
            return False
        assignment = self._consumer.assignment()
        if not assignment:
            return False
        try:
            return self._read_to_end(assignment)
        except KafkaException as exc:
            self._kafka_error(exc.args[0])
            return False

    def _read_to_end(self, assignment: list[TopicPartition]) -> bool:
        positions = self._consumer.position(assignment)
        # librdkafka knows no position for a partition it has consumed nothing from since its
        # assignment (OFFSET_INVALID): it then resumes from the committed offset, or the earliest.
        unread = [tp for tp in positions if tp.offset < 0]
        committed = (
            {(tp.topic, tp.partition): tp.offset for tp in self._consumer.committed(unread, timeout=5)}
            if unread
            else {}
        )
        for tp in positions:
            low, high = self._consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=5)
            offset = tp.offset if tp.offset >= 0 else committed.get((tp.topic, tp.partition), -1)
            if max(offset, low) < high:
                return False
        return True

    def drain(self, settle_s: float = 1.0, timeout_s: float = 300.0) -> None:
        """Poll until every topic is read to its end, written, and nothing new arrived for ``settle_s``."""
        deadline = time.monotonic() + timeout_s
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            if self.poll(timeout_ms=200, flush=True) or not self.caught_up():
                quiet_since = None
                continue
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= settle_s:
                return

    def close(self, commit_wait_s: float = 5.0) -> None:
        """Write what is held, commit (waiting at most ``commit_wait_s`` for the broker), and let go
        of the engine and the consumer."""
        try:
            for topic in self._order:
                if self._pending[topic].offsets:
                    self._write(topic)
            self._commit()
            deadline = time.monotonic() + commit_wait_s
            while self._commit_in_flight and time.monotonic() < deadline:
                self._consumer.poll(0.1)  # serves the commit's callback (a record it returns is read again later)
        finally:
            self._engine.close()
            self._consumer.close()

    def _kafka_error(self, error: KafkaError) -> None:
        """A consumer error: fatal ones end the sink; the rest (the broker is away, restarting, a
        coordinator moves) librdkafka recovers from by itself, so they are only said."""
        if error.fatal():
            raise KafkaException(error)
        self._warn(error.name(), f"Kafka: {error.str()} ({error.name()}); the serving sink retries")

    def _warn(self, key: str, message: str) -> None:
        """Log ``message``, at most once every :data:`TRANSIENT_WARN_EVERY_S` per ``key``."""
        now = time.monotonic()
        if now - self._warned.get(key, -TRANSIENT_WARN_EVERY_S) >= TRANSIENT_WARN_EVERY_S:
            self._warned[key] = now
            log.warning("%s", message)

    def _commit(self) -> None:
        """Commit the offsets of what was written, asynchronously: a broker that is away never holds
        up the loop (a synchronous commit waits for its coordinator, for minutes); one commit at a
        time, and what it could not commit is committed by a later one."""
        if self._commit_in_flight:
            return
        changed = {k: v for k, v in self._written.items() if self._committed.get(k) != v}
        if not changed:
            return
        try:
            self._consumer.commit(
                offsets=[TopicPartition(t, p, o + 1) for (t, p), o in changed.items()], asynchronous=True
            )
            self._commit_in_flight = True
        except KafkaException as exc:
            self._commit_failed(exc)

    def _on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """librdkafka's answer to a commit (served by :meth:`poll`)."""
        self._commit_in_flight = False
        if error is not None:
            self._commit_failed(error)
            return
        for tp in partitions:
            if tp.error is None and tp.offset >= 0:
                self._committed[(tp.topic, tp.partition)] = tp.offset - 1

    def _commit_failed(self, cause: object) -> None:
        if self.observer is not None:
            self.observer.retried("commit")
        self._warn("commit", f"offsets not committed yet ({cause}); the rows are written (a re-write is idempotent)")


def _chunks(pieces: list[bytes], limit: int) -> list[list[bytes]]:
    """Consecutive runs of ``pieces`` of at most ``limit`` bytes (one piece may exceed it alone)."""
    out: list[list[bytes]] = [[]]
    size = 0
    for piece in pieces:
        if out[-1] and size + len(piece) > limit:
            out.append([])
            size = 0
        out[-1].append(piece)
        size += len(piece)
    return out


def _json_row(route: Route, key: bytes | None, value: bytes | None, partition: int, offset: int) -> bytes | None:
    """One JSONEachRow line: the record's JSON object with its version (the Kafka offset) appended,
    and its partition and offset when the route keeps them; a tombstone of a route that has them
    becomes its key with ``is_deleted = 1``."""
    if value is None:
        if route.tombstone_key is None or key is None:
            return None
        quoted = json.dumps(key.decode("utf-8", errors="replace")).encode()
        return b'{"%s":%s,"version":%d,"is_deleted":1}' % (route.tombstone_key.encode(), quoted, offset)
    base = value.strip()
    if not (base.startswith(b"{") and base.endswith(b"}")):
        return None
    extra = b',"version":%d}' % offset
    if route.position is not None:
        partition_column, offset_column = route.position
        extra = b',"%s":%d,"%s":%d' % (partition_column.encode(), partition, offset_column.encode(), offset) + extra
    return base[:-1] + extra if base != b"{}" else b"{" + extra[1:]
