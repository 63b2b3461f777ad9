"""Status conditions of a MeterPipeline, computed from what its children report (pure).

Five conditions (six with an MQTT bridge), each with a CamelCase reason, a message and a lastTransitionTime that moves
only when the status flips: TopicsReady (the KafkaTopics' Ready conditions, as Strimzi's Topic
Operator sets them), StreamingJobReady (the FlinkDeployment's ``.status.jobStatus.state`` and
``lifecycleState``, as the Flink Kubernetes Operator sets them), SchemaReady (the ClickHouse
migrations and the Iceberg table), BatchScheduled (the batch timer), BridgeReady (the MQTT bridge
Deployment's available replica, when ``spec.source.mqtt`` is set) and Ready (all of them).
Called by :mod:`meterflow_operator.reconcile`; unit-tested without a cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

READY = "Ready"
TOPICS_READY = "TopicsReady"
STREAMING_JOB_READY = "StreamingJobReady"
BATCH_SCHEDULED = "BatchScheduled"
SCHEMA_READY = "SchemaReady"
BRIDGE_READY = "BridgeReady"
CONDITION_TYPES = (READY, TOPICS_READY, STREAMING_JOB_READY, BATCH_SCHEDULED, SCHEMA_READY, BRIDGE_READY)

RUNNING_LIFECYCLES = frozenset({"STABLE", "DEPLOYED"})
MAX_MESSAGE = 1000


@dataclass(frozen=True)
class Condition:
    """One condition as the operator decides it (without its transition time)."""

    type: str
    status: str  # "True", "False" or "Unknown"
    reason: str
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "True"

    @classmethod
    def true(cls, type_: str, reason: str, message: str = "") -> Condition:
        return cls(type_, "True", reason, message)

    @classmethod
    def false(cls, type_: str, reason: str, message: str = "") -> Condition:
        return cls(type_, "False", reason, message)

    @classmethod
    def unknown(cls, type_: str, reason: str, message: str = "") -> Condition:
        return cls(type_, "Unknown", reason, message)


def find(conditions: Iterable[Mapping[str, Any]] | None, type_: str) -> Mapping[str, Any] | None:
    """The condition of ``type_`` in a status's list, if any."""
    for cond in conditions or ():
        if cond.get("type") == type_:
            return cond
    return None


# --- the parts ---------------------------------------------------------------------------------


def topics_condition(expected: Sequence[str], topics: Mapping[str, Mapping[str, Any]], cluster: str) -> Condition:
    """TopicsReady: every expected KafkaTopic reports Ready=True for its current generation."""
    missing, waiting, failing = [], [], []
    for name in expected:
        topic = topics.get(name)
        if topic is None:
            missing.append(name)
            continue
        status = topic.get("status") or {}
        ready = find(status.get("conditions"), "Ready")
        observed, generation = status.get("observedGeneration"), topic.get("metadata", {}).get("generation")
        stale = observed is not None and generation is not None and observed < generation
        if ready is None or stale:
            waiting.append(name)
        elif ready.get("status") != "True":
            detail = ": ".join(p for p in (ready.get("reason"), ready.get("message")) if p)
            failing.append(f"{name} ({detail or 'not ready'})")
    if failing:
        return Condition.false(TOPICS_READY, "TopicNotReady", "Strimzi reports " + "; ".join(failing))
    if missing:
        return Condition.false(TOPICS_READY, "TopicMissing", "KafkaTopics not found: " + ", ".join(missing))
    if waiting:
        return Condition.false(
            TOPICS_READY,
            "WaitingForStrimzi",
            f"waiting for the Strimzi Topic Operator of Kafka cluster {cluster} to create: " + ", ".join(waiting),
        )
    return Condition.true(TOPICS_READY, "TopicsReady", f"{len(expected)} topics ready on Kafka cluster {cluster}")


def job_state(deployment: Mapping[str, Any] | None) -> str | None:
    """``.status.jobStatus.state`` of a FlinkDeployment, as the Flink operator reports it."""
    if not deployment:
        return None
    state = ((deployment.get("status") or {}).get("jobStatus") or {}).get("state")
    return str(state) if state else None


def streaming_condition(deployment: Mapping[str, Any] | None, *, suspended: bool, schema_ready: bool) -> Condition:
    """StreamingJobReady: the job RUNNING and its lifecycle STABLE or DEPLOYED."""
    if deployment is None:
        if not schema_ready:
            return Condition.false(
                STREAMING_JOB_READY, "WaitingForSchema", "the streaming job starts once SchemaReady is True"
            )
        return Condition.false(STREAMING_JOB_READY, "NotCreated", "the streaming FlinkDeployment does not exist yet")
    name = deployment.get("metadata", {}).get("name", "")
    status = deployment.get("status") or {}
    state, lifecycle = job_state(deployment), status.get("lifecycleState")
    if suspended:
        return Condition.false(
            STREAMING_JOB_READY, "Suspended", f"spec.suspend is true: {name} is suspended (job state {state or '-'})"
        )
    generation, observed = deployment.get("metadata", {}).get("generation"), status.get("observedGeneration")
    if state is None:
        return Condition.false(
            STREAMING_JOB_READY,
            "WaitingForFlinkOperator",
            f"the Flink Kubernetes Operator has not reported on {name} yet",
        )
    if observed is not None and generation is not None and observed < generation:
        return Condition.false(
            STREAMING_JOB_READY,
            "SpecChangePending",
            f"{name}: generation {generation} not yet reconciled by the Flink operator (job {state})",
        )
    if state == "RUNNING" and lifecycle in RUNNING_LIFECYCLES:
        return Condition.true(STREAMING_JOB_READY, "JobRunning", f"{name}: job RUNNING, lifecycle {lifecycle}")
    error = status.get("error")
    detail = f"{name}: job {state}, lifecycle {lifecycle or '-'}" + (f": {error}" if error else "")
    reason = "Job" + state.title().replace("_", "") if state != "RUNNING" else "Lifecycle" + str(lifecycle).title()
    return Condition.false(STREAMING_JOB_READY, reason, detail)


def bridge_condition(deployment: Mapping[str, Any] | None, *, url: str | None, topics_ready: bool) -> Condition:
    """BridgeReady: the MQTT bridge Deployment has its replica available for its current generation."""
    if not url:
        return Condition.false(
            BRIDGE_READY,
            "MqttUrlMissing",
            "spec.source.mqtt.url is unset and the operator has no default (METERFLOW_OPERATOR_MQTT_URL); set one",
        )
    if deployment is None:
        if not topics_ready:
            return Condition.false(BRIDGE_READY, "WaitingForTopics", "the MQTT bridge starts once TopicsReady is True")
        return Condition.false(BRIDGE_READY, "NotCreated", "the MQTT bridge Deployment does not exist yet")
    name = deployment.get("metadata", {}).get("name", "")
    status = deployment.get("status") or {}
    generation, observed = deployment.get("metadata", {}).get("generation"), status.get("observedGeneration")
    if observed is not None and generation is not None and observed < generation:
        return Condition.false(BRIDGE_READY, "RolloutPending", f"{name}: generation {generation} not rolled out yet")
    if (status.get("availableReplicas") or 0) >= 1:
        return Condition.true(BRIDGE_READY, "BridgeRunning", f"{name}: bridging {url}")
    available = find(status.get("conditions"), "Available") or {}
    detail = ": ".join(str(p) for p in (available.get("reason"), available.get("message")) if p)
    message = f"{name}: no replica available" + (f" ({detail})" if detail else "")
    return Condition.false(BRIDGE_READY, "WaitingForPods", message)


def ready_condition(parts: Sequence[Condition], *, suspended: bool) -> Condition:
    """Ready: every part True; Suspended when the job is suspended on purpose."""
    if suspended:
        return Condition.false(READY, "Suspended", "spec.suspend is true; the streaming job is suspended")
    failing = [p for p in parts if not p.ok]
    if not failing:
        bridge = ", MQTT bridge" if any(p.type == BRIDGE_READY for p in parts) else ""
        return Condition.true(
            READY, "PipelineReady", f"topics, schema, streaming job{bridge} and batch schedule are ready"
        )
    return Condition.false(READY, "ComponentsNotReady", "; ".join(f"{p.type}: {p.reason}" for p in failing))


# --- the status object -------------------------------------------------------------------------


def merge_conditions(
    previous: Iterable[Mapping[str, Any]] | None, current: Iterable[Condition], now: str, generation: int | None
) -> list[dict[str, Any]]:
    """Conditions as written to the status: lastTransitionTime kept unless the status flipped."""
    before = {c.get("type"): c for c in previous or ()}
    out = []
    by_type = {c.type: c for c in current}
    for type_ in sorted(by_type, key=lambda t: CONDITION_TYPES.index(t) if t in CONDITION_TYPES else 99):
        cond = by_type[type_]
        old = before.get(type_)
        since = old.get("lastTransitionTime") if old and old.get("status") == cond.status else None
        entry: dict[str, Any] = {
            "type": cond.type,
            "status": cond.status,
            "reason": cond.reason,
            "message": cond.message[:MAX_MESSAGE],
            "lastTransitionTime": since or now,
        }
        if generation is not None:
            entry["observedGeneration"] = generation
        out.append(entry)
    return out


def status_patch(current: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> dict[str, Any]:
    """The top-level status keys whose value changes (a merge patch; None removes a key)."""
    current = current or {}
    patch: dict[str, Any] = {}
    for key, value in desired.items():
        if value is None:
            if current.get(key) is not None:
                patch[key] = None
        elif current.get(key) != value:
            patch[key] = value
    return patch
