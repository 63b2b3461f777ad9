"""Create a pipeline's topics on a broker (the embedded one, or any reachable Kafka).

Idempotent: existing topics are kept, and grown when the plan asks for more partitions.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence

from kafka.admin import NewPartitions, NewTopic
from kafka.errors import TopicAlreadyExistsError

from meterflow import kafka_clients
from meterflow.errors import MeterflowError
from meterflow.spec.topics import TopicPlan


def ensure_topics(bootstrap: str, plans: list[TopicPlan]) -> list[str]:
    """Create missing topics and grow short ones; return the names created."""
    admin = kafka_clients.admin(bootstrap, "admin")
    try:
        existing = set(admin.list_topics())
        missing = [p for p in plans if p.name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # created concurrently by another process
                admin.create_topics(
                    [NewTopic(p.name, p.partitions, p.replicas, topic_configs=p.config) for p in missing]
                )
        present = {p.name for p in plans} - {p.name for p in missing}
        if present:
            described = {t["name"]: len(t["partitions"]) for t in admin.describe_topics(sorted(present))}
            grow = {
                p.name: NewPartitions(p.partitions) for p in plans if described.get(p.name, p.partitions) < p.partitions
            }
            if grow:
                admin.create_partitions(grow)
        return [p.name for p in missing]
    finally:
        admin.close()


def delete_topics(bootstrap: str, names: list[str], groups: Sequence[str] = (), timeout_s: float = 60.0) -> list[str]:
    """Delete the named topics that exist (and the named consumer groups); wait until they are gone.

    Deletion is asynchronous in Kafka: returning before the topics vanish would let a following
    ``ensure_topics`` see them and skip creating them. Returns the topics deleted.
    """
    admin = kafka_clients.admin(bootstrap, "admin")
    try:
        existing = set(admin.list_topics())
        present = [n for n in names if n in existing]
        if present:
            admin.delete_topics(present)
        known_groups = {g["group_id"] for g in admin.list_groups()}
        if doomed := [g for g in groups if g in known_groups]:
            admin.delete_groups(doomed)
        deadline = time.monotonic() + timeout_s
        while (left := set(present) & set(admin.list_topics())) and time.monotonic() < deadline:
            time.sleep(0.2)
        if left:
            raise MeterflowError(f"topics {sorted(left)} are still being deleted after {timeout_s:.0f}s; try again")
        return present
    finally:
        admin.close()
