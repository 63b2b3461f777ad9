"""One reconcile step of a MeterPipeline, and its clean-up on deletion.

:func:`reconcile` is level-triggered and idempotent: it renders every child, applies it
(server-side apply, owned by the pipeline), ensures the schema when asked, starts a batch run
when one is due, reads what the children report and returns the status to write and the Events
to post. The kopf handlers (:mod:`meterflow_operator.handlers`) call it on create, on a spec
change, on resume and from a timer every ``resync_seconds`` — the timer is what repairs drift:
a deleted child is recreated, an edited one set back. :func:`finalize` applies the retention
policy when the pipeline is deleted. Nothing here knows about kopf; errors come back as data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from meterflow.errors import SpecError
from meterflow.spec.loader import parse_manifest
from meterflow.spec.model import MeterPipeline, RetentionPolicy
from meterflow_operator import status as st
from meterflow_operator.apply import CREATED, UPDATED, apply_child, is_owned_by, release
from meterflow_operator.kube import (
    CONFIG_MAP,
    DEPLOYMENT,
    FLINK_DEPLOYMENT,
    KAFKA_TOPIC,
    METER_PIPELINE,
    SERVICE_ACCOUNT,
    Kind,
    Kube,
    KubeError,
)
from meterflow_operator.render import (
    render_batch,
    render_bridge_deployment,
    render_bridge_service_account,
    render_config_map,
    render_flink_deployment,
    render_topics,
)
from meterflow_operator.render.batch import (
    RUN_BATCH_ANNOTATION,
    due_run,
    latest_run,
    next_due,
    parse_rfc3339,
    rfc3339,
    run_time,
    runs_to_prune,
)
from meterflow_operator.render.common import (
    COMPONENT_BATCH,
    COMPONENT_TOPIC,
    MANAGED_BY,
    PIPELINE_LABEL,
    config_map_name,
    selector,
)
from meterflow_operator.render.configmap import cluster_manifest
from meterflow_operator.schema import SchemaError, drop_schema, ensure_schema
from meterflow_operator.settings import Settings

# Not-ready reasons that are the normal way up, not failures: no Warning Event for them.
_ON_THE_WAY = frozenset(
    {"WaitingForStrimzi", "WaitingForFlinkOperator", "WaitingForSchema", "ComponentsNotReady", "WaitingForTopics"}
)


class InvalidSpecError(Exception):
    """The resource does not parse as a MeterPipeline (the API server let through what the model rejects)."""


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post on the MeterPipeline."""

    type: str  # Normal or Warning
    reason: str
    message: str


@dataclass
class Outcome:
    """What one reconcile step decided: the status to write, Events to post, problems to retry."""

    status: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    annotations: dict[str, str | None] = field(default_factory=dict)
    invalid: str | None = None  # the spec does not parse: nothing was applied
    blocked: list[str] = field(default_factory=list)  # only a person can fix these: no hot retry

    def warn(self, reason: str, message: str) -> None:
        self.events.append(Event("Warning", reason, message))
        self.problems.append(message)


def plain(obj: Any) -> Any:
    """A deep copy made of dicts and lists only (kopf hands out read-only mapping views)."""
    return json.loads(json.dumps(obj, default=dict))


def parse(body: Mapping[str, Any]) -> MeterPipeline:
    """The MeterPipeline in ``body`` (status ignored), or :class:`InvalidSpecError` naming the field."""
    document = {k: plain(body.get(k)) for k in ("apiVersion", "kind", "metadata", "spec")}
    try:
        return parse_manifest(document, source=f"MeterPipeline {body.get('metadata', {}).get('name')}")
    except SpecError as exc:
        raise InvalidSpecError(str(exc)) from None


class _Step:
    """The state of one reconcile: the owner, the API, and what happened so far."""

    def __init__(self, kube: Kube, owner: dict[str, Any], out: Outcome) -> None:
        self.kube = kube
        self.owner = owner
        self.namespace: str = owner["metadata"]["namespace"]
        self.out = out

    def get(self, kind: Kind, name: str) -> dict[str, Any] | None:
        try:
            return self.kube.get(kind, self.namespace, name)
        except KubeError as exc:
            self.out.warn("ReadFailed", f"cannot read {kind.kind} {name}: {exc.message}")
            return None

    def apply(self, obj: dict[str, Any], live: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """Apply one child; post Created/Updated; None (and a Warning) when the API server refuses it."""
        name = obj["metadata"]["name"]
        try:
            applied = apply_child(self.kube, self.owner, obj, live)
        except KubeError as exc:
            self.out.warn("ApplyFailed", f"cannot apply {obj['kind']} {name}: {exc.message}")
            return None
        if applied.action in (CREATED, UPDATED):
            self.out.events.append(Event("Normal", applied.action, f"{applied.action} {obj['kind']} {name}"))
        return applied.object


def run(
    kube: Kube, namespace: str, name: str, settings: Settings, now: datetime, *, with_schema: bool
) -> Outcome | None:
    """Reconcile the pipeline as it is now and write its status; None when it is gone or going.

    The object is read fresh (not taken from the watch event, which may predate the status the
    previous step wrote), and the status is written here, so steps that follow one another
    (the spec handler, then the timer) always build on each other's result.
    """
    body = kube.get(METER_PIPELINE, namespace, name)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return None
    try:
        out = reconcile(kube, body, settings, now, with_schema=with_schema)
    except InvalidSpecError as error:
        out = _invalid(body, str(error), now)
    if _write_status(kube, body, out.status) and out.annotations:
        kube.merge_patch(METER_PIPELINE, namespace, name, {"metadata": {"annotations": out.annotations}})
    return out


def _write_status(kube: Kube, body: dict[str, Any], status: dict[str, Any], attempts: int = 3) -> bool:
    """Write what changed of ``status``, guarded by the resourceVersion read; False when not written.

    The guard keeps a step from writing over a newer spec or into a deletion in progress (kopf
    removes its finalizer with a resourceVersion-guarded patch too: a write of ours in between
    would make it wait). On a conflict the object is read again; a new generation or a deletion
    means this status is stale, and the next step writes its own.
    """
    meta = body["metadata"]
    for _ in range(attempts):
        patch = st.status_patch(body.get("status"), status)
        if not patch:
            return True
        guarded = {"metadata": {"resourceVersion": body["metadata"]["resourceVersion"]}, "status": patch}
        try:
            kube.merge_patch(METER_PIPELINE, meta["namespace"], meta["name"], guarded, subresource="status")
            return True
        except KubeError as exc:
            if not exc.conflict:
                raise
        fresh = kube.get(METER_PIPELINE, meta["namespace"], meta["name"])
        if fresh is None or fresh["metadata"].get("deletionTimestamp"):
            return False
        if fresh["metadata"].get("generation") != meta.get("generation"):
            return False
        body = fresh
    return False


def _invalid(body: Mapping[str, Any], message: str, now: datetime) -> Outcome:
    """Ready=False, reason InvalidSpec; one Warning Event per distinct message."""
    before = (body.get("status") or {}).get("conditions") or []
    cond = st.Condition.false(st.READY, "InvalidSpec", message)
    generation = body["metadata"].get("generation")
    out = Outcome(invalid=message)
    out.status = {
        "observedGeneration": generation,
        "conditions": st.merge_conditions(before, [cond], rfc3339(now), generation),
    }
    old = st.find(before, st.READY)
    if old is None or old.get("message") != cond.message[: st.MAX_MESSAGE]:
        out.events.append(Event("Warning", "InvalidSpec", message))
    return out


def reconcile(kube: Kube, body: Mapping[str, Any], settings: Settings, now: datetime, *, with_schema: bool) -> Outcome:
    """Bring every child in line with the spec and compute the status (see the module docstring)."""
    owner = plain(body)
    pipeline = parse(owner)
    previous = owner.get("status") or {}
    conditions_before = previous.get("conditions") or []
    out = Outcome()
    step = _Step(kube, owner, out)

    # 1. the manifest the jobs read
    config_map = render_config_map(pipeline, settings)
    config_ok = step.apply(config_map, step.get(CONFIG_MAP, config_map["metadata"]["name"])) is not None

    # 2. the topics; TopicsReady from what Strimzi reports on them
    topics_cond, topic_names = _topics(step, pipeline)

    # 3. the schema (on create, spec change and resume; the timer carries the last result over)
    if with_schema:
        schema_cond = _ensure_schema(kube, pipeline, settings, out)
    else:
        schema_cond = _carried_over(conditions_before, st.SCHEMA_READY)

    # 4. the streaming job: first created once the schema exists (the job writes into it)
    deployment = render_flink_deployment(pipeline, settings)
    streaming = step.get(FLINK_DEPLOYMENT, deployment["metadata"]["name"])
    if config_ok and (schema_cond.ok or streaming is not None):
        streaming = step.apply(deployment, streaming) or streaming
    streaming_cond = st.streaming_condition(streaming, suspended=pipeline.spec.suspend, schema_ready=schema_cond.ok)

    # 5. batch runs on the schedule (and on request)
    batch_cond, last_batch = _batch(step, pipeline, settings=settings, now=now, may_start=schema_cond.ok and config_ok)

    # 6. the MQTT bridge (spec.source.mqtt): created once the topics are ready, removed with mqtt
    parts = [topics_cond, streaming_cond, batch_cond, schema_cond]
    bridge: dict[str, Any] | None = None
    if pipeline.spec.source.mqtt is not None:
        bridge_cond, bridge = _bridge(step, pipeline, settings, may_create=config_ok and topics_cond.ok)
        parts.append(bridge_cond)
    elif (previous.get("children") or {}).get("bridge"):
        _remove_bridge(step, str(previous["children"]["bridge"]))

    conditions = [st.ready_condition(parts, suspended=pipeline.spec.suspend), *parts]
    generation = owner["metadata"].get("generation")
    merged = st.merge_conditions(conditions_before, conditions, rfc3339(now), generation)
    out.events.extend(_transitions(conditions_before, merged))
    children: dict[str, Any] = {"topics": topic_names, "configMap": config_map_name(pipeline)}
    if streaming is not None:
        children["flinkDeployment"] = streaming["metadata"]["name"]
    if bridge is not None:
        children["bridge"] = bridge["metadata"]["name"]
    out.status = {
        "observedGeneration": generation,
        "conditions": merged,
        "streamingJobState": st.job_state(streaming),
        "lastBatch": last_batch or previous.get("lastBatch"),
        "children": children,
    }
    return out


def _topics(step: _Step, pipeline: MeterPipeline) -> tuple[st.Condition, list[str]]:
    topics = render_topics(pipeline)
    names = [t["metadata"]["name"] for t in topics]
    try:
        live = {
            t["metadata"]["name"]: t
            for t in step.kube.select(KAFKA_TOPIC, step.namespace, selector(pipeline, COMPONENT_TOPIC))
        }
    except KubeError as exc:
        step.out.warn("ReadFailed", f"cannot list KafkaTopics (is Strimzi's KafkaTopic CRD installed?): {exc.message}")
        return st.Condition.false(st.TOPICS_READY, "ReadFailed", exc.message), names
    applied = {}
    failed = []
    for topic in topics:
        result = step.apply(topic, live.get(topic["metadata"]["name"]))
        if result is None:
            failed.append(topic["metadata"]["name"])
        else:
            applied[result["metadata"]["name"]] = result
    if failed:
        return st.Condition.false(st.TOPICS_READY, "ApplyFailed", "cannot apply " + ", ".join(failed)), names
    return st.topics_condition(names, applied, pipeline.spec.source.kafka_cluster), names


def _bridge(
    step: _Step, pipeline: MeterPipeline, settings: Settings, *, may_create: bool
) -> tuple[st.Condition, dict[str, Any] | None]:
    """Apply the bridge's ServiceAccount and Deployment; BridgeReady from the Deployment's status."""
    url = cluster_manifest(pipeline, settings)["spec"]["source"]["mqtt"].get("url")
    deployment = render_bridge_deployment(pipeline, settings)
    live = step.get(DEPLOYMENT, deployment["metadata"]["name"])
    if url and (may_create or live is not None):
        account = render_bridge_service_account(pipeline)
        if step.apply(account, step.get(SERVICE_ACCOUNT, account["metadata"]["name"])) is not None:
            live = step.apply(deployment, live) or live
    return st.bridge_condition(live, url=url, topics_ready=may_create), live


def _remove_bridge(step: _Step, name: str) -> None:
    """``spec.source.mqtt`` was removed: delete the bridge Deployment and its ServiceAccount."""
    for kind in (DEPLOYMENT, SERVICE_ACCOUNT):
        try:
            if step.kube.delete(kind, step.namespace, name):
                step.out.events.append(Event("Normal", "Deleted", f"deleted {kind.kind} {name} (no spec.source.mqtt)"))
        except KubeError as exc:
            step.out.warn("DeleteFailed", f"cannot delete {kind.kind} {name}: {exc.message}")


def _ensure_schema(kube: Kube, pipeline: MeterPipeline, settings: Settings, out: Outcome) -> st.Condition:
    try:
        summary = ensure_schema(kube, pipeline, settings)
    except SchemaError as problem:
        (out.problems if problem.transient else out.blocked).append(f"SchemaReady: {problem.reason}: {problem.message}")
        return st.Condition.false(st.SCHEMA_READY, problem.reason, problem.message)
    return st.Condition.true(st.SCHEMA_READY, "SchemaApplied", summary)


def _carried_over(before: list[dict[str, Any]], type_: str) -> st.Condition:
    old = st.find(before, type_)
    if old is None:
        return st.Condition.unknown(type_, "Pending", "not checked yet")
    return st.Condition(type_, str(old["status"]), str(old.get("reason", "")), str(old.get("message", "")))


def _transitions(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[Event]:
    """An Event for each condition that became True, or became False for a new reason."""
    events = []
    for cond in after:
        old = st.find(before, cond["type"])
        changed = old is None or old.get("status") != cond["status"] or old.get("reason") != cond["reason"]
        if not changed:
            continue
        if cond["status"] == "True":
            events.append(Event("Normal", cond["reason"], f"{cond['type']}: {cond['message']}"))
        elif cond["reason"] not in _ON_THE_WAY and cond["reason"] != "Pending":
            events.append(Event("Warning", cond["reason"], f"{cond['type']}: {cond['message']}"))
    return events


def _batch(
    step: _Step, pipeline: MeterPipeline, *, settings: Settings, now: datetime, may_start: bool
) -> tuple[st.Condition, dict[str, Any] | None]:
    """Start the due (or requested) batch run, prune old runs; BatchScheduled and lastBatch."""
    spec, owner, out = pipeline.spec, step.owner, step.out
    try:
        runs = step.kube.select(FLINK_DEPLOYMENT, step.namespace, selector(pipeline, COMPONENT_BATCH))
    except KubeError as exc:
        out.warn("ReadFailed", f"cannot list batch runs: {exc.message}")
        return st.Condition.false(st.BATCH_SCHEDULED, "ReadFailed", exc.message), None
    previous = (owner.get("status") or {}).get("lastBatch") or {}
    stamps = [owner["metadata"]["creationTimestamp"], previous.get("time"), *(run_time(r) for r in runs)]
    since = max(parse_rfc3339(s) for s in stamps if s)
    todo: list[dict[str, Any]] = []
    token = (owner["metadata"].get("annotations") or {}).get(RUN_BATCH_ANNOTATION)
    if token:
        todo.append(render_batch(pipeline, settings, now, manual_token=token))
    due = due_run(spec.batch.schedule, spec.time_zone, now, since)
    if due is not None:
        todo.append(render_batch(pipeline, settings, due))
    live = {r["metadata"]["name"]: r for r in runs}
    if todo and may_start:
        for run in todo:
            name = run["metadata"]["name"]
            if name in live:
                continue  # a run is started once and never re-applied (it may have finished)
            started = step.apply(run, None)
            if started is not None:
                live[name] = started
                out.events.append(Event("Normal", "BatchStarted", f"started batch run {name}"))
        if token:
            out.annotations[RUN_BATCH_ANNOTATION] = None
    for name in runs_to_prune(live.values(), settings.batch_history):
        try:
            if step.kube.delete(FLINK_DEPLOYMENT, step.namespace, name):
                out.events.append(Event("Normal", "Pruned", f"deleted old batch run {name}"))
        except KubeError as exc:
            out.warn("DeleteFailed", f"cannot delete old batch run {name}: {exc.message}")
        live.pop(name, None)
    latest = latest_run(live.values())
    last_batch = None
    if latest is not None:
        state = st.job_state(latest) or "SUBMITTED"
        last_batch = {"name": latest["metadata"]["name"], "time": run_time(latest), "state": state}
    following = next_due(spec.batch.schedule, spec.time_zone, now)
    message = f"next run {following.isoformat()} ({spec.batch.schedule!r} in {spec.time_zone})"
    if todo and not may_start:
        message += "; the due run waits for SchemaReady"
    if last_batch:
        message += f"; last run {last_batch['name']} {last_batch['state']}"
    return st.Condition.true(st.BATCH_SCHEDULED, "Scheduled", message), last_batch


# --- deletion ----------------------------------------------------------------------------------


@dataclass
class Finalized:
    """What the clean-up did, and what it could not do."""

    events: list[Event] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def finalize(kube: Kube, body: Mapping[str, Any], settings: Settings) -> Finalized:
    """Apply ``spec.retention``: Retain releases the topics; Delete deletes children and drops the data.

    Retain: the KafkaTopics (the data) lose their ownerReference, so garbage collection keeps
    them; the ClickHouse database and the Iceberg table are left alone. The FlinkDeployments and
    the ConfigMap (compute, not data) keep theirs and go with the pipeline.
    Delete: every child is deleted now, the database and the Iceberg namespace are dropped.
    """
    owner = plain(body)
    meta = owner["metadata"]
    namespace, uid = meta["namespace"], meta["uid"]
    retention = (owner.get("spec") or {}).get("retention", RetentionPolicy.Retain.value)
    labels = {PIPELINE_LABEL: meta["name"], "app.kubernetes.io/managed-by": MANAGED_BY}
    done = Finalized()
    if retention == RetentionPolicy.Retain.value:
        _release_topics(kube, namespace, labels, uid, done)
        return done
    for kind in (FLINK_DEPLOYMENT, DEPLOYMENT, KAFKA_TOPIC, CONFIG_MAP, SERVICE_ACCOUNT):
        try:
            children = [c for c in kube.select(kind, namespace, labels) if is_owned_by(c, uid)]
        except KubeError as exc:
            done.problems.append(f"cannot list {kind.kind}s: {exc.message}")
            continue
        for child in children:
            name = child["metadata"]["name"]
            try:
                if kube.delete(kind, namespace, name):
                    done.events.append(Event("Normal", "Deleted", f"deleted {kind.kind} {name}"))
            except KubeError as exc:
                done.problems.append(f"cannot delete {kind.kind} {name}: {exc.message}")
    try:
        done.events.append(Event("Normal", "Dropped", drop_schema(kube, parse(owner), settings)))
    except InvalidSpecError as exc:
        done.problems.append(f"cannot drop the schema of an invalid spec: {exc}")
    except SchemaError as problem:
        done.problems.append(f"{problem.reason}: {problem.message}")
    return done


def _release_topics(kube: Kube, namespace: str, labels: dict[str, str], uid: str, done: Finalized) -> None:
    try:
        topics = kube.select(KAFKA_TOPIC, namespace, labels)
    except KubeError as exc:
        done.problems.append(f"cannot list KafkaTopics: {exc.message}")
        return
    released = []
    for topic in topics:
        if not is_owned_by(topic, uid):
            continue
        try:
            release(kube, topic, uid)
        except KubeError as exc:
            done.problems.append(f"cannot release KafkaTopic {topic['metadata']['name']}: {exc.message}")
        else:
            released.append(topic["metadata"]["name"])
    if released:
        done.events.append(Event("Normal", "Retained", "kept KafkaTopics " + ", ".join(sorted(released))))
