"""The Kafka topics a pipeline needs, with partitions and configs, for both runtimes.

The embedded stack creates them with the Kafka admin API; the operator renders them as Strimzi
``KafkaTopic`` resources. One plan, so both runtimes agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from meterflow.spec.durations import to_millis
from meterflow.spec.model import MeterPipeline
from meterflow.spec.names import names_for


@dataclass(frozen=True)
class TopicPlan:
    """One topic: its name, partitions, replicas and topic-level configs."""

    name: str
    role: str
    partitions: int
    replicas: int
    config: dict[str, str] = field(default_factory=dict)


def topic_plan(pipeline: MeterPipeline) -> list[TopicPlan]:
    """Readings, dead letters, aggregates, alerts, meters (compacted), counters (compacted) and
    alert commands.

    ``<name>.counters`` is internal: the streaming job's ingest counters on their way to
    ClickHouse (see docs/architecture.md).
    """
    source = pipeline.spec.source
    topics = names_for(pipeline).topics
    retention = {"retention.ms": str(to_millis(source.retention)), "cleanup.policy": "delete"}
    compacted = {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1", "segment.ms": "3600000"}
    p, r = source.partitions, source.replicas
    return [
        TopicPlan(topics.readings, "readings", p, r, dict(retention)),
        TopicPlan(topics.dlq, "dlq", p, r, dict(retention)),
        TopicPlan(topics.aggregates, "aggregates", p, r, dict(retention)),
        TopicPlan(topics.alerts, "alerts", p, r, dict(retention)),
        TopicPlan(topics.meters, "meters", 1, r, dict(compacted)),
        TopicPlan(topics.counters, "counters", 1, r, dict(compacted)),
        TopicPlan(topics.alert_commands, "alert-commands", 1, r, dict(retention)),
    ]
