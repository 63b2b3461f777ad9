"""What the serving sink sees, as Prometheus metrics: ingest counts, open alerts, its own work.

The streaming job's counters travel exactly once on ``<name>.counters`` (a running total per
minute of arrival and counter) and the sink writes them into ClickHouse; :class:`SinkMetrics`
keeps the latest total of every (minute, counter) it wrote and adds them up, so
``meterflow_readings_total`` and friends equal what ClickHouse's ``ingest_totals`` says — across
restarts too: :meth:`SinkMetrics.load` starts from ClickHouse's table. Minutes more than
:data:`FOLD_AFTER_S` older than the newest one are folded into one sum per counter (a job that
far behind its own input is not expected; a total of a folded minute that still changes is
ignored, and logged). Alert transitions pass through the sink too: the open alerts per rule
start from ClickHouse's ``alerts_active`` and follow every OPENED / RESOLVED state after it.

The sink calls :meth:`SinkMetrics.read` for each record it reads, :meth:`SinkMetrics.inserted`
for each insert and :meth:`SinkMetrics.retried`; consumer lag is computed when scraped, from
the consumer's cached high watermarks (no broker round trip). Everything is read by the
scrape thread as plain Python values (no locks on the sink's path). Called by
:class:`meterflow_clickhouse.sink.ServingSink` and registered by the run's metrics
(``flink_jobs.streaming.observe``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from meterflow.metrics import metric

log = logging.getLogger(__name__)

FOLD_AFTER_S = 48 * 3600
"""Minutes of arrival this much older than the newest are added into one sum per counter."""

INSERT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Histogram buckets of the insert duration, seconds."""

VALID, ON_TIME, LATE, DLQ_PREFIX = "valid", "on_time", "late", "dlq:"
OPEN = "OPEN"


class SinkMetrics:
    """The serving sink's metrics (a prometheus_client collector: register it in a registry)."""

    def __init__(self, pipeline: str, counters_topic: str, alerts_topic: str) -> None:
        self.pipeline = pipeline
        self.counters_topic = counters_topic
        self.alerts_topic = alerts_topic
        self._minutes: dict[str, dict[int, int]] = {}
        """counter → {minute (epoch seconds) → running total}: the minutes not folded yet."""
        self._folded: dict[str, int] = {}
        self._newest = 0
        self._open: dict[str, str] = {}
        """alert id → rule, of the open alerts."""
        self._transitions: dict[tuple[str, str], int] = {}
        self._rows: dict[str, int] = {}
        self._bytes: dict[str, int] = {}
        self._inserts: dict[str, list[float]] = {}
        """table → [count per bucket (cumulative at export), ..., +Inf count, sum]."""
        self._retries: dict[str, int] = {}
        self._last_read: dict[tuple[str, int], int] = {}
        """(topic, partition) → Kafka timestamp (ms) of the last record read."""
        self._consumer: Any = None

    # --- start ----------------------------------------------------------------------------------

    def load(self, client: Any, database: str) -> None:
        """Start from what ClickHouse holds: the counters' totals and the open alerts."""
        newest = client.query(f"SELECT toUnixTimestamp(max(minute)) FROM {database}.ingest_counters").result_rows
        self._newest = int(newest[0][0] or 0) if newest else 0
        fold_before = self._newest - FOLD_AFTER_S
        for counter, total in client.query(
            f"SELECT counter, sum(value) FROM {database}.ingest_counters FINAL "
            f"WHERE toUnixTimestamp(minute) < {fold_before} GROUP BY counter"
        ).result_rows:
            self._folded[str(counter)] = int(total)
        for counter, minute, value in client.query(
            f"SELECT counter, toUnixTimestamp(minute), value FROM {database}.ingest_counters FINAL "
            f"WHERE toUnixTimestamp(minute) >= {fold_before}"
        ).result_rows:
            self._minutes.setdefault(str(counter), {})[int(minute)] = int(value)
        for alert_id, rule in client.query(f"SELECT alert_id, rule FROM {database}.alerts_active").result_rows:
            self._open[str(alert_id)] = str(rule)

    def attach(self, consumer: Any) -> None:
        """The sink's Kafka consumer, whose positions and cached watermarks give the lag."""
        self._consumer = consumer

    # --- hooks of the sink ------------------------------------------------------------------------

    def read(self, topic: str, partition: int, timestamp_ms: int) -> None:
        """A record was read (its Kafka timestamp, for how far behind the sink is)."""
        self._last_read[(topic, partition)] = timestamp_ms

    def inserted(self, topic: str, table: str, pieces: list[bytes], rows: int, size: int, seconds: float) -> None:
        """One insert into ``table`` of the records of ``topic`` (JSON ``pieces`` when not RowBinary)."""
        self._rows[table] = self._rows.get(table, 0) + rows
        self._bytes[table] = self._bytes.get(table, 0) + size
        buckets = self._inserts.setdefault(table, [0.0] * (len(INSERT_BUCKETS) + 2))
        for i, bound in enumerate(INSERT_BUCKETS):
            if seconds <= bound:
                buckets[i] += 1
                break
        else:
            buckets[len(INSERT_BUCKETS)] += 1
        buckets[-1] += seconds
        if topic == self.counters_topic:
            for piece in pieces:
                self._count(piece)
        elif topic == self.alerts_topic:
            for piece in pieces:
                self._transition(piece)

    def retried(self, operation: str) -> None:
        self._retries[operation] = self._retries.get(operation, 0) + 1

    def _count(self, piece: bytes) -> None:
        row = json.loads(piece)
        counter, total = str(row["counter"]), int(row["value"])
        minute = int(datetime.fromisoformat(str(row["minute"])).replace(tzinfo=UTC).timestamp())
        if minute < self._newest - FOLD_AFTER_S:
            log.warning("counter %s of minute %s changed after it was folded: not counted", counter, minute)
            return
        self._minutes.setdefault(counter, {})[minute] = total
        if minute > self._newest:
            self._newest = minute
            self._fold()

    def _fold(self) -> None:
        before = self._newest - FOLD_AFTER_S
        for counter, minutes in self._minutes.items():
            old = [m for m in minutes if m < before]
            if old:
                self._folded[counter] = self._folded.get(counter, 0) + sum(minutes.pop(m) for m in old)

    def _transition(self, piece: bytes) -> None:
        row = json.loads(piece)
        alert_id, rule = str(row.get("alert_id", "")), str(row.get("rule", ""))
        key = (rule, str(row.get("transition", "")))
        self._transitions[key] = self._transitions.get(key, 0) + 1
        if row.get("state") == OPEN:
            self._open[alert_id] = rule
        else:
            self._open.pop(alert_id, None)

    # --- values -----------------------------------------------------------------------------------

    def totals(self) -> dict[str, int]:
        """counter → its total over every minute (``valid``, ``on_time``, ``late``, ``dlq:<reason>``)."""
        out = dict(self._folded)
        for counter, minutes in list(self._minutes.items()):
            out[counter] = out.get(counter, 0) + sum(list(minutes.values()))
        return out

    def open_alerts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for rule in list(self._open.values()):
            out[rule] = out.get(rule, 0) + 1
        return out

    def lag(self) -> dict[tuple[str, int], int]:
        """(topic, partition) → records not read yet, from the consumer's cached watermarks."""
        consumer = self._consumer
        if consumer is None:
            return {}
        try:
            positions = consumer.position(consumer.assignment())
            out = {}
            for tp in positions:
                low, high = consumer.get_watermark_offsets(tp, cached=True)
                if high < 0:
                    continue  # nothing fetched from it yet: unknown
                position = tp.offset if tp.offset >= 0 else high  # nothing new read since it was assigned
                out[(tp.topic, tp.partition)] = max(0, high - max(position, low))
            return out
        except (RuntimeError, ValueError, TypeError):  # the consumer is closed (the run is stopping)
            return {}
        except Exception as exc:  # confluent_kafka.KafkaException: the broker is away; lag unknown
            log.debug("consumer lag unknown: %s", exc)
            return {}

    # --- prometheus_client Collector --------------------------------------------------------------

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        p = self.pipeline

        def counter(name: str) -> CounterMetricFamily:
            d = metric(name)
            return CounterMetricFamily(name, d.help, labels=list(d.labels))

        def gauge(name: str) -> GaugeMetricFamily:
            d = metric(name)
            return GaugeMetricFamily(name, d.help, labels=list(d.labels))

        totals = self.totals()
        valid, on_time, late = totals.get(VALID, 0), totals.get(ON_TIME, 0), totals.get(LATE, 0)
        dlq = {c.removeprefix(DLQ_PREFIX): v for c, v in totals.items() if c.startswith(DLQ_PREFIX)}
        for name, value in (
            ("meterflow_readings_total", valid + sum(dlq.values())),
            ("meterflow_readings_valid_total", valid),
            ("meterflow_readings_on_time_total", on_time),
            ("meterflow_readings_late_total", late),
            ("meterflow_readings_duplicate_total", max(0, valid - on_time - late)),
        ):
            family = counter(name)
            family.add_metric([p], value)
            yield family
        family = counter("meterflow_dead_letters_total")
        for reason, value in sorted(dlq.items()):
            family.add_metric([p, reason], value)
        yield family

        family_g = gauge("meterflow_alerts_open")
        for rule, n in sorted(self.open_alerts().items()):
            family_g.add_metric([p, rule], n)
        yield family_g
        family = counter("meterflow_alert_transitions_total")
        for (rule, transition), n in sorted(self._transitions.items()):
            family.add_metric([p, rule, transition], n)
        yield family

        lag = self.lag()
        family_g = gauge("meterflow_sink_consumer_lag")
        for (topic, partition), n in sorted(lag.items()):
            family_g.add_metric([p, topic, str(partition)], n)
        yield family_g
        family_g = gauge("meterflow_sink_lag_seconds")
        now_ms = time.time() * 1000
        behind: dict[str, float] = {}
        for (topic, partition), n in lag.items():
            seen = self._last_read.get((topic, partition))
            seconds = max(0.0, (now_ms - seen) / 1000) if n > 0 and seen is not None else 0.0
            behind[topic] = max(behind.get(topic, 0.0), seconds)
        for topic, seconds in sorted(behind.items()):
            family_g.add_metric([p, topic], seconds)
        yield family_g

        for name, values in (("meterflow_sink_rows_total", self._rows), ("meterflow_sink_bytes_total", self._bytes)):
            family = counter(name)
            for table, n in sorted(values.items()):
                family.add_metric([p, table], n)
            yield family
        d = metric("meterflow_sink_insert_duration_seconds")
        family_h = HistogramMetricFamily(d.name, d.help, labels=list(d.labels))
        for table, counts in sorted(self._inserts.items()):
            cumulative: list[tuple[str, float]] = []
            running = 0.0
            for bound, count in zip((*INSERT_BUCKETS, float("inf")), counts[:-1], strict=True):
                running += count
                cumulative.append((_bound(bound), running))
            family_h.add_metric([p, table], cumulative, sum_value=counts[-1])
        yield family_h
        family = counter("meterflow_sink_retries_total")
        for operation, n in sorted(self._retries.items()):
            family.add_metric([p, operation], n)
        yield family


def _bound(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(value)
