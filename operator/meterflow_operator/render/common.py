"""Names and labels every child of a MeterPipeline shares (pure).

Children are found again by label (``meterflow.io/pipeline``, ``meterflow.io/component``), so
the operator never needs to remember them; names are deterministic, so a crashed and restarted
reconcile re-applies the same objects instead of creating duplicates. Called by the other
render modules and by :mod:`meterflow_operator.reconcile`.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from meterflow.spec.model import MeterPipeline

PART_OF = "meterflow"
MANAGED_BY = "meterflow-operator"
PIPELINE_LABEL = "meterflow.io/pipeline"
COMPONENT_LABEL = "meterflow.io/component"
ROLE_LABEL = "meterflow.io/role"
SCHEDULED_ANNOTATION = "meterflow.io/scheduled-time"

COMPONENT_TOPIC = "topic"
COMPONENT_CONFIG = "config"
COMPONENT_STREAMING = "streaming"
COMPONENT_BATCH = "batch"
COMPONENT_BRIDGE = "bridge"

MANIFEST_DIR = "/opt/meterflow"
MANIFEST_FILE = "pipeline.yaml"
MANIFEST_PATH = f"{MANIFEST_DIR}/{MANIFEST_FILE}"

# The Flink Kubernetes Operator rejects FlinkDeployment names that are not DNS-1035 labels of at
# most 45 characters (its services append suffixes such as -rest).
FLINK_NAME_MAX = 45
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def namespace_of(pipeline: MeterPipeline) -> str:
    """The pipeline's namespace (every child lives next to it: ownerReferences cannot cross namespaces)."""
    if not pipeline.metadata.namespace:
        raise ValueError(f"MeterPipeline {pipeline.name} has no namespace; the operator renders namespaced children")
    return pipeline.metadata.namespace


def selector(pipeline: MeterPipeline, component: str | None = None) -> dict[str, str]:
    """The labels that find a pipeline's children (of one component, when given)."""
    labels = {PIPELINE_LABEL: pipeline.name, "app.kubernetes.io/managed-by": MANAGED_BY}
    if component:
        labels[COMPONENT_LABEL] = component
    return labels


def labels(pipeline: MeterPipeline, component: str) -> dict[str, str]:
    """Labels of one child: the recommended app.kubernetes.io set plus the selector labels."""
    return {
        "app.kubernetes.io/name": "meterflow",
        "app.kubernetes.io/instance": pipeline.name,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/component": component,
    } | selector(pipeline, component)


def metadata(pipeline: MeterPipeline, name: str, component: str, **extra_labels: str) -> dict[str, Any]:
    """``metadata`` of a child (ownerReferences are added when it is applied)."""
    return {"name": name, "namespace": namespace_of(pipeline), "labels": labels(pipeline, component) | extra_labels}


def config_map_name(pipeline: MeterPipeline) -> str:
    """``<pipeline>-pipeline``: the ConfigMap holding the manifest the jobs read."""
    return f"{pipeline.name}-pipeline"


def flink_name(pipeline: MeterPipeline, suffix: str) -> str:
    """``<pipeline>-<suffix>``, shortened with a hash (and prefixed when needed) to a valid Flink name."""
    base = pipeline.name if pipeline.name[0].isalpha() else f"mf-{pipeline.name}"
    name = f"{base}-{suffix}"
    if len(name) > FLINK_NAME_MAX:
        digest = hashlib.sha256(pipeline.name.encode()).hexdigest()[:5]
        keep = FLINK_NAME_MAX - len(suffix) - len(digest) - 2
        name = f"{base[:keep].rstrip('-')}-{digest}-{suffix}"
    if not _DNS_1035.match(name) or len(name) > FLINK_NAME_MAX:
        raise ValueError(f"cannot derive a FlinkDeployment name from {pipeline.name!r} and {suffix!r}")
    return name


def streaming_name(pipeline: MeterPipeline) -> str:
    """The streaming job's FlinkDeployment: ``<pipeline>-streaming``."""
    return flink_name(pipeline, "streaming")
