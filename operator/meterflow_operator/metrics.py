"""The operator's Prometheus metrics: reconciles by outcome, their duration, time to Ready, and
every pipeline's conditions as it last wrote them.

kopf exports no metrics of its own (its liveness endpoint says up or down), so these are
prometheus-client's, in a registry of their own, served on ``METERFLOW_OPERATOR_METRICS_PORT``
(0: not served) from the start-up handler. The handlers (:mod:`meterflow_operator.handlers`) call
:func:`observe` after every reconcile and :func:`forget` when a pipeline's finalizer has run, so
a deleted pipeline leaves no series behind. Names: docs/metrics.md.

*Time to Ready* is measured per generation: from the pipeline's creation for generation 1, else
from the first reconcile this process saw of the generation, to the reconcile that found
``Ready=True`` for it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from meterflow.metrics import Endpoint, metric, serve

OK, RETRY, INVALID, ERROR = "ok", "retry", "invalid", "error"
"""Reconcile outcomes: applied; problems retried with backoff; a spec the model rejects or a cause only a person
can fix (blocked: an edited migration, a bad Secret, refused credentials); an API error."""
SPEC, RESYNC = "spec", "resync"
"""What started a reconcile: a create/update/resume of the spec, or the resync timer."""

REGISTRY = CollectorRegistry(auto_describe=True)


def _make(kind: type[Any], name: str, **extra: Any) -> Any:
    d = metric(name)
    return kind(name, d.help, list(d.labels), registry=REGISTRY, **extra)


RECONCILES = _make(Counter, "meterflow_operator_reconciles_total")
DURATION = _make(
    Histogram, "meterflow_operator_reconcile_duration_seconds", buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
)
TIME_TO_READY = _make(Gauge, "meterflow_operator_time_to_ready_seconds")
CONDITION = _make(Gauge, "meterflow_operator_condition")


class _Tracker:
    """What the metrics remember per pipeline: the generation waited on, and the condition series."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.waiting: dict[tuple[str, str], tuple[int, float]] = {}
        """(namespace, name) → (generation, since when) of a generation not Ready yet."""
        self.conditions: dict[tuple[str, str], dict[str, tuple[str, str]]] = {}
        """(namespace, name) → {condition type: (status, reason)} exported now."""
        self.outcomes: dict[tuple[str, str], set[tuple[str, str]]] = {}


_TRACKER = _Tracker()


def observe(
    namespace: str,
    name: str,
    trigger: str,
    outcome: str,
    seconds: float,
    status: Mapping[str, Any] | None,
    metadata: Mapping[str, Any],
    now: datetime,
) -> None:
    """Count one reconcile of ``namespace/name`` and export the ``status`` it wrote (if any)."""
    RECONCILES.labels(name, namespace, trigger, outcome).inc()
    DURATION.labels(name, namespace).observe(seconds)
    key = (namespace, name)
    with _TRACKER.lock:
        _TRACKER.outcomes.setdefault(key, set()).add((trigger, outcome))
        if not status:
            return
        conditions = {
            str(c["type"]): (str(c["status"]), str(c.get("reason", ""))) for c in status.get("conditions", [])
        }
        before = _TRACKER.conditions.get(key, {})
        for type_, labels in before.items():
            if conditions.get(type_) != labels:
                CONDITION.remove(name, namespace, type_, *labels)
        for type_, (state, reason) in conditions.items():
            CONDITION.labels(name, namespace, type_, state, reason).set(1)
        _TRACKER.conditions[key] = conditions
        _time_to_ready(key, conditions, status, metadata, now)


def _time_to_ready(
    key: tuple[str, str],
    conditions: dict[str, tuple[str, str]],
    status: Mapping[str, Any],
    metadata: Mapping[str, Any],
    now: datetime,
) -> None:
    generation = int(status.get("observedGeneration") or metadata.get("generation") or 0)
    ready = conditions.get("Ready", ("Unknown", ""))[0] == "True"
    waiting = _TRACKER.waiting.get(key)
    if not ready:
        if waiting is None or waiting[0] != generation:
            since = now.timestamp()
            created = metadata.get("creationTimestamp")
            if generation == 1 and created:
                since = datetime.fromisoformat(str(created).replace("Z", "+00:00")).timestamp()
            _TRACKER.waiting[key] = (generation, since)
        return
    if waiting is not None and waiting[0] == generation:
        TIME_TO_READY.labels(key[1], key[0]).set(max(0.0, now.timestamp() - waiting[1]))
        del _TRACKER.waiting[key]


def forget(namespace: str, name: str) -> None:
    """Remove every series of a deleted pipeline."""
    key = (namespace, name)
    with _TRACKER.lock:
        for type_, labels in _TRACKER.conditions.pop(key, {}).items():
            CONDITION.remove(name, namespace, type_, *labels)
        for trigger, outcome in _TRACKER.outcomes.pop(key, set()):
            RECONCILES.remove(name, namespace, trigger, outcome)
        _TRACKER.waiting.pop(key, None)
        for family in (DURATION, TIME_TO_READY):
            with contextlib.suppress(KeyError):  # never set for this pipeline
                family.remove(name, namespace)


def start(port: int) -> Endpoint | None:
    """Serve the registry on ``port`` of every address (None when ``port`` is 0)."""
    return serve(REGISTRY, port, "0.0.0.0") if port else None
