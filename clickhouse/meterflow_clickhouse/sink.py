"""The serving sink: the streaming job's result topics into ClickHouse, idempotently.

No Flink connector writes to ClickHouse through SQL (FACTS.md), so the job writes its low-volume
results (window aggregates, alerts, ingest counters) to upsert-Kafka topics and this sink copies
them into ClickHouse in batches with clickhouse-connect. Each row's ``version`` is the Kafka
offset of its record (one key always lands in one partition), so ReplacingMergeTree keeps the
newest value of a key, and a replay, a restart or a re-sent record rewrites the same row instead
of adding one. A Kafka tombstone becomes ``is_deleted = 1``. Offsets are committed after the
insert: a crash in between re-inserts the same versions, which changes nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from meterflow_clickhouse.client import session

_ENRICHMENT = ("meter_type", "suburb", "postcode", "usage_type")


def _ts(text: str | None) -> datetime:
    if not text:
        return datetime.fromtimestamp(0, timezone.utc)
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


@dataclass(frozen=True)
class TableMapping:
    """How the records of one topic become rows of one table."""

    table: str
    columns: tuple[str, ...]
    row: Callable[[dict[str, Any]], list[Any]]
    """Row values (without version and is_deleted) from the merged key+value JSON."""


def _aggregate_row(r: dict[str, Any]) -> list[Any]:
    return [
        r["meter_id"], r["measurement_type"], r["series"], r.get("unit") or "",
        _ts(r["window_start"]), _ts(r["window_end"]),
        int(r.get("readings") or 0), float(r.get("sum") or 0.0), float(r.get("avg") or 0.0),
        float(r.get("min") or 0.0), float(r.get("max") or 0.0), float(r.get("stddev") or 0.0),
        r.get("consumption"),
        *[r.get(k) or "unknown" for k in _ENRICHMENT],
    ]  # fmt: skip


def _alert_row(r: dict[str, Any]) -> list[Any]:
    return [
        r["rule"], r.get("severity") or "", r["meter_id"], r.get("measurement_type") or "", r["series"],
        r.get("unit") or "", float(r.get("value") or 0.0), r.get("condition") or "",
        float(r.get("threshold") or 0.0), _ts(r["event_time"]),
        *[r.get(k) or "unknown" for k in _ENRICHMENT],
    ]  # fmt: skip


def _counter_row(r: dict[str, Any]) -> list[Any]:
    return [_ts(r["minute"]), r["counter"], int(r.get("value") or 0)]


AGGREGATES = TableMapping(
    "readings_agg",
    ("meter_id", "measurement_type", "series", "unit", "window_start", "window_end", "readings", "sum", "avg",
     "min", "max", "stddev", "consumption", *_ENRICHMENT),
    _aggregate_row,
)  # fmt: skip
ALERTS = TableMapping(
    "alerts",
    ("rule", "severity", "meter_id", "measurement_type", "series", "unit", "value", "condition", "threshold",
     "event_time", *_ENRICHMENT),
    _alert_row,
)  # fmt: skip
COUNTERS = TableMapping("ingest_counters", ("minute", "counter", "value"), _counter_row)


@dataclass
class SinkStats:
    """What the sink has written so far."""

    rows: dict[str, int] = field(default_factory=dict)
    batches: int = 0

    def add(self, table: str, n: int) -> None:
        self.rows[table] = self.rows.get(table, 0) + n


class ServingSink:
    """Copies result topics into one ClickHouse database (call :meth:`poll` in a loop)."""

    def __init__(
        self,
        bootstrap: str,
        dsn: str,
        database: str,
        topics: dict[str, TableMapping],
        group_id: str,
        max_records: int = 50_000,
    ) -> None:
        self.dsn = dsn
        self.database = database
        self.topics = topics
        self.stats = SinkStats()
        self._consumer = KafkaConsumer(
            *topics,
            bootstrap_servers=bootstrap,
            group_id=group_id,
            client_id=f"{group_id}-sink",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=max_records,
            fetch_max_bytes=64 << 20,
        )

    def poll(self, timeout_ms: int = 500) -> int:
        """Read what is available (up to ``timeout_ms``), write it, commit; rows written."""
        batch = self._consumer.poll(timeout_ms=timeout_ms)
        if not batch:
            return 0
        rows_by_table: dict[str, list[list[Any]]] = {}
        for tp, records in batch.items():
            mapping = self.topics[tp.topic]
            rows_by_table.setdefault(mapping.table, []).extend(self._rows(mapping, records))
        written = self._write(rows_by_table)
        self._consumer.commit()
        return written

    def caught_up(self) -> bool:
        """True when every assigned partition has been read to its end offset."""
        assignment = self._consumer.assignment()
        if not assignment:
            return False
        ends = self._consumer.end_offsets(list(assignment))
        return all(self._consumer.position(tp) >= ends[tp] for tp in assignment)

    def drain(self, settle_s: float = 1.0, timeout_s: float = 120.0) -> None:
        """Poll until every topic is read to its end and nothing new arrived for ``settle_s``."""
        deadline = time.monotonic() + timeout_s
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            if self.poll(timeout_ms=200) or not self.caught_up():
                quiet_since = None
                continue
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= settle_s:
                return

    def close(self) -> None:
        self._consumer.close()

    # --- machinery -----------------------------------------------------------------------------

    @staticmethod
    def _rows(mapping: TableMapping, records: Iterable[Any]) -> list[list[Any]]:
        rows = []
        for record in records:
            key = json.loads(record.key) if record.key else {}
            if record.value is None:  # tombstone: retract the key
                merged = dict(key)
                deleted = 1
            else:
                merged = key | json.loads(record.value)
                deleted = 0
            rows.append([*mapping.row(merged), record.offset, deleted])
        return rows

    def _write(self, rows_by_table: dict[str, list[list[Any]]]) -> int:
        written = 0
        with session(self.dsn) as client:
            for mapping in self.topics.values():
                rows = rows_by_table.get(mapping.table)
                if not rows:
                    continue
                client.insert(
                    f"{self.database}.{mapping.table}",
                    rows,
                    column_names=[*mapping.columns, "version", "is_deleted"],
                )
                self.stats.add(mapping.table, len(rows))
                written += len(rows)
        self.stats.batches += 1
        return written
