"""Create a pipeline's topics on a broker (the embedded one, or any reachable Kafka).

Idempotent: existing topics are kept, and grown when the plan asks for more partitions.
"""

from __future__ import annotations

from kafka import KafkaAdminClient
from kafka.admin import NewPartitions, NewTopic
from kafka.errors import TopicAlreadyExistsError

from meterflow.spec.topics import TopicPlan


def ensure_topics(bootstrap: str, plans: list[TopicPlan]) -> list[str]:
    """Create missing topics and grow short ones; return the names created."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="meterflow-admin")
    try:
        existing = set(admin.list_topics())
        missing = [p for p in plans if p.name not in existing]
        if missing:
            try:
                admin.create_topics(
                    [NewTopic(p.name, p.partitions, p.replicas, topic_configs=p.config) for p in missing]
                )
            except TopicAlreadyExistsError:
                pass  # created concurrently by another process: fine
        present = {p.name for p in plans} - {p.name for p in missing}
        if present:
            described = {t["name"]: len(t["partitions"]) for t in admin.describe_topics(sorted(present))}
            grow = {p.name: NewPartitions(p.partitions) for p in plans if described.get(p.name, p.partitions) < p.partitions}
            if grow:
                admin.create_partitions(grow)
        return [p.name for p in missing]
    finally:
        admin.close()


def delete_topics(bootstrap: str, names: list[str]) -> None:
    """Delete the named topics that exist."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="meterflow-admin")
    try:
        present = [n for n in names if n in set(admin.list_topics())]
        if present:
            admin.delete_topics(present)
    finally:
        admin.close()
