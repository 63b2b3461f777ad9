"""Strimzi ``KafkaTopic`` resources of a pipeline, from the shared topic plan (pure).

One plan (:func:`meterflow.spec.topics.topic_plan`) for both runtimes: the embedded stack
creates these topics with the Kafka admin API, the operator renders them here. Called by
:mod:`meterflow_operator.reconcile`.
"""

from __future__ import annotations

from typing import Any

from meterflow.spec.model import MeterPipeline
from meterflow.spec.topics import TopicPlan, topic_plan
from meterflow_operator.render.common import COMPONENT_TOPIC, ROLE_LABEL, metadata

KAFKA_TOPIC_API_VERSION = "kafka.strimzi.io/v1"
STRIMZI_CLUSTER_LABEL = "strimzi.io/cluster"


def render_topics(pipeline: MeterPipeline) -> list[dict[str, Any]]:
    """One KafkaTopic per planned topic: readings, dlq, aggregates, alerts, meters, counters, alert-commands."""
    return [render_topic(pipeline, plan) for plan in topic_plan(pipeline)]


def render_topic(pipeline: MeterPipeline, plan: TopicPlan) -> dict[str, Any]:
    """A KafkaTopic named like the Kafka topic (dots are valid in a DNS subdomain)."""
    meta = metadata(pipeline, plan.name, COMPONENT_TOPIC, **{ROLE_LABEL: plan.role})
    meta["labels"][STRIMZI_CLUSTER_LABEL] = pipeline.spec.source.kafka_cluster
    return {
        "apiVersion": KAFKA_TOPIC_API_VERSION,
        "kind": "KafkaTopic",
        "metadata": meta,
        "spec": {
            "topicName": plan.name,
            "partitions": plan.partitions,
            "replicas": plan.replicas,
            "config": dict(plan.config),
        },
    }
