"""The streaming job's plan: what the JVM job needs from a MeterPipeline spec, as data (pure).

The job itself is JVM code (``flink_jobs/jvm``: ``io.meterflow.stream.StreamingJob``) built from
this plan: Python derives every name, limit and rule here, hands the plan over as JSON through
PyFlink's gateway, and never touches a reading. The semantics the operators implement are stated
in docs/architecture.md ("The speed layer") and in the Java classes' docstrings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from meterflow.consumption import REGISTER_RESET_RATIO, consumption_factor
from meterflow.reading import MAX_METER_ID_CHARS
from meterflow.spec.durations import to_millis
from meterflow.spec.model import MeasurementSpec, MeterPipeline, RuleKind, RuleSpec, Severity
from meterflow.spec.names import names_for
from meterflow.stack.endpoints import IcebergLocation
from meterflow_clickhouse.sink import AGGREGATE_COLUMNS
from meterflow_iceberg.catalog import flink_catalog_options
from meterflow_iceberg.tables import READINGS

DEDUP_TTL_MS = 26 * 3_600_000
"""How long a reading's identity is remembered after its arrival (a day of retries, and then some)."""

DEAD_LETTER_PAYLOAD_BYTES = 16 * 1024
"""A dead letter keeps at most this much of its payload (plus the original size and SHA-256)."""

SOURCE_PROPERTIES = {
    "isolation.level": "read_committed",
    "commit.offsets.on.checkpoint": "true",
    # Small per-partition fetches interleave the partitions finely: the watermark is the minimum over
    # partitions, and a partition read whole before the others start (as large fetches do with a
    # backlog) would leave the other partitions' readings late against it (measured).
    "fetch.max.bytes": str(16 << 20),
    "max.partition.fetch.bytes": str(64 << 10),
    "partition.discovery.interval.ms": "60000",
}


@dataclass(frozen=True)
class KafkaEndpoint:
    """Where the job reads and writes Kafka."""

    bootstrap: str
    group_id: str


def job_name(pipeline: MeterPipeline) -> str:
    return f"meterflow-streaming-{pipeline.name}"


def range_text(m: MeasurementSpec) -> str:
    """``[0.0, 100000.0]``: a measurement's valid range as dead-letter details print it."""
    low = m.min if m.min is not None else "-inf"
    high = m.max if m.max is not None else "inf"
    return f"[{low}, {high}]"


def rule_plan(rule: RuleSpec) -> dict[str, Any]:
    """One alert rule as the JVM reads it: times in milliseconds, clock times in minutes."""
    return {
        "name": rule.name,
        "kind": RuleKind(rule.kind).value,
        "measurement": rule.measurement,
        "condition": rule.condition,
        "threshold": rule.threshold,
        "clear_threshold": rule.clear_threshold,
        "for_ms": to_millis(rule.for_) if rule.for_ else 0,
        "every_ms": to_millis(rule.every) if rule.every else 0,
        "count": rule.count or 0,
        "from_minute": rule.clock_minutes(rule.from_) if rule.from_ else 0,
        "to_minute": rule.clock_minutes(rule.to) if rule.to else 0,
        "nights": rule.nights or 0,
        "escalate_after_ms": to_millis(rule.escalate_after) if rule.escalate_after else 0,
        "severity": Severity(rule.severity).value,
    }


def job_plan(
    pipeline: MeterPipeline, kafka: KafkaEndpoint, lake: IcebergLocation, idle_timeout_ms: int
) -> dict[str, Any]:
    """The plan of ``pipeline``'s streaming job (``idle_timeout_ms`` 0: a silent partition holds
    the watermark back, as runs that end with a drain need)."""
    spec = pipeline.spec
    names = names_for(pipeline)
    topics = names.topics
    return {
        "pipeline": pipeline.name,
        "job_name": job_name(pipeline),
        "parallelism": spec.flink.parallelism,
        "measurements": [
            {
                "name": m.name,
                "series": m.series,
                "unit": m.unit,
                "kind": m.kind,
                "interval_ms": to_millis(m.interval),
                "consumption_factor": consumption_factor(m),
                "min": m.min,
                "max": m.max,
                "range_text": range_text(m),
            }
            for m in spec.measurements
        ],
        "rules": [rule_plan(r) for r in spec.rules],
        "time_zone": spec.time_zone,
        "windows": {
            "size_ms": spec.windows.size_ms,
            "slide_ms": spec.windows.slide_ms,
            "grace_ms": spec.windows.grace_ms,
        },
        "register_reset_ratio": REGISTER_RESET_RATIO,
        "aggregate_columns": list(AGGREGATE_COLUMNS),
        "dedup_ttl_ms": DEDUP_TTL_MS,
        "idle_timeout_ms": idle_timeout_ms,
        "dead_letter_payload_bytes": DEAD_LETTER_PAYLOAD_BYTES,
        "max_meter_id_chars": MAX_METER_ID_CHARS,
        "max_clock_skew_ms": to_millis(spec.source.max_clock_skew),
        "max_reading_age_ms": to_millis(spec.source.max_reading_age),
        "kafka": {
            "bootstrap": kafka.bootstrap,
            "group_id": kafka.group_id,
            "topics": {
                "readings": topics.readings,
                "dlq": topics.dlq,
                "aggregates": topics.aggregates,
                "alerts": topics.alerts,
                "counters": topics.counters,
                "alert_commands": topics.alert_commands,
            },
            "transactional_id_prefix": f"meterflow-{pipeline.name}",
            "source_properties": dict(SOURCE_PROPERTIES),
        },
        "lake": {
            "catalog_name": lake.catalog_name,
            "catalog_properties": flink_catalog_options(lake),
            "namespace": names.iceberg_namespace,
            "table": READINGS,
        },
    }


def plan_json(plan: dict[str, Any]) -> str:
    return json.dumps(plan, separators=(",", ":"))
