"""The kopf handlers: thin wrappers that call :mod:`meterflow_operator.reconcile` and speak kopf.

* create / spec update / resume → a full reconcile, schema included; a failure writes the
  conditions first, then raises ``kopf.TemporaryError`` with an exponential backoff (an invalid
  spec is a ``kopf.PermanentError``: only a spec change can fix it; so is a cause only a person
  can fix outside the spec — an edited migration, a bad Secret, refused credentials — which the
  timer tries again every ``blocked_retry_seconds``, never hot);
* a timer every ``resync_seconds`` → the same reconcile without the schema (with it, for a blocked
  pipeline whose ``blocked_retry_seconds`` have passed): drift repair, the children's status, the
  batch schedule;
* delete (through the finalizer ``meterflow.io/finalizer``) → the retention policy.

Every reconcile is counted by outcome, and the status it wrote exported, by
:mod:`meterflow_operator.metrics`.

One reconcile at a time per pipeline (a lock in kopf's per-object memo). Events are posted
with kopf.info/kopf.warn. Registered by importing this module (:mod:`meterflow_operator.main`).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import kopf

from meterflow.spec.model import API_GROUP, API_VERSION
from meterflow_operator import metrics
from meterflow_operator import reconcile as rc
from meterflow_operator.kube import Kube, KubeError, connect
from meterflow_operator.settings import Settings

PLURAL = "meterpipelines"
SETTINGS = Settings.from_env()
DELETE_RETRIES = 3  # data that cannot be dropped after this many tries is left, with a Warning Event
_KUBE: Kube | None = None
_KUBE_LOCK = threading.Lock()


def kube() -> Kube:
    """The process's API client (created on first use)."""
    global _KUBE  # noqa: PLW0603
    with _KUBE_LOCK:
        if _KUBE is None:
            _KUBE = Kube(connect())
        return _KUBE


def _lock(memo: kopf.Memo) -> threading.Lock:
    lock: threading.Lock = memo.setdefault("reconcile_lock", threading.Lock())
    return lock


def _post(body: kopf.Body, events: list[rc.Event]) -> None:
    for event in events:
        if event.type == "Warning":
            kopf.warn(body, reason=event.reason, message=event.message)
        else:
            kopf.info(body, reason=event.reason, message=event.message)


def _observe(body: kopf.Body, trigger: str, outcome: rc.Outcome | None, started: float, failed: bool = False) -> None:
    """Count a reconcile and export the status it wrote (``failed``: the API refused a request;
    no ``outcome`` otherwise: the pipeline is gone or going, nothing to count)."""
    if outcome is None and not failed:
        return
    meta = body["metadata"]
    result = (
        metrics.ERROR if outcome is None else
        metrics.RETRY if outcome.problems else
        metrics.INVALID if outcome.invalid or outcome.blocked else
        metrics.OK
    )  # fmt: skip
    metrics.observe(
        meta.get("namespace") or "", meta["name"], trigger, result, time.monotonic() - started,
        outcome.status if outcome is not None else None, meta, datetime.now(UTC),
    )  # fmt: skip


@kopf.on.create(API_GROUP, API_VERSION, PLURAL, id="reconcile-on-create")
@kopf.on.update(API_GROUP, API_VERSION, PLURAL, field="spec", id="reconcile-on-update")
@kopf.on.resume(API_GROUP, API_VERSION, PLURAL, id="reconcile-on-resume")
def reconcile_spec(body: kopf.Body, name: str, namespace: str | None, retry: int, memo: kopf.Memo, **_: Any) -> None:
    """Apply the spec: children, schema, status. Retries with backoff until everything is applied;
    a cause only a person can fix stops it, and the timer tries again later."""
    with _lock(memo):
        started = time.monotonic()
        try:
            outcome = rc.run(kube(), namespace or "", name, SETTINGS, datetime.now(UTC), with_schema=True)
        except KubeError as error:
            _observe(body, metrics.SPEC, None, started, failed=True)
            raise kopf.TemporaryError(f"Kubernetes API: {error.message}", delay=SETTINGS.retry_delay(retry)) from None
        _remember_blocked(memo, outcome)
    _observe(body, metrics.SPEC, outcome, started)
    if outcome is None:
        return
    _post(body, outcome.events)
    if outcome.invalid:
        raise kopf.PermanentError(outcome.invalid)
    if outcome.problems:
        raise kopf.TemporaryError("; ".join(outcome.problems), delay=SETTINGS.retry_delay(retry))
    if outcome.blocked:
        raise kopf.PermanentError("; ".join(outcome.blocked))


@kopf.timer(
    API_GROUP, API_VERSION, PLURAL, id="resync", interval=SETTINGS.resync_seconds, initial_delay=SETTINGS.resync_seconds
)
def resync(body: kopf.Body, name: str, namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    """Every resync_seconds: repair drift, read the children's status, start due batch runs."""
    lock = _lock(memo)
    if not lock.acquire(timeout=1.0):
        return  # a spec reconcile is running; it does all of this too
    started = time.monotonic()
    retry_schema = _blocked_retry_due(memo, started)
    try:
        outcome = rc.run(kube(), namespace or "", name, SETTINGS, datetime.now(UTC), with_schema=retry_schema)
        if retry_schema:
            _remember_blocked(memo, outcome, keep_trying=True)
    except KubeError as error:
        _observe(body, metrics.RESYNC, None, started, failed=True)
        raise kopf.TemporaryError(f"Kubernetes API: {error.message}", delay=SETTINGS.resync_seconds) from None
    finally:
        lock.release()
    _observe(body, metrics.RESYNC, outcome, started)
    if outcome is not None:
        _post(body, outcome.events)


def _remember_blocked(memo: kopf.Memo, outcome: rc.Outcome | None, *, keep_trying: bool = False) -> None:
    """Note when a reconcile found a cause only a person can fix (the timer tries again later), or forget it.

    ``keep_trying``: the timer's own retry, after which a transient problem is also left to the
    timer (the spec handler has stopped for good)."""
    if outcome is not None and (
        (outcome.blocked and not outcome.problems) or (keep_trying and (outcome.blocked or outcome.problems))
    ):
        memo["blocked_at"] = time.monotonic()
    else:
        memo.pop("blocked_at", None)


def _blocked_retry_due(memo: kopf.Memo, now: float) -> bool:
    """True when the pipeline is blocked and ``blocked_retry_seconds`` have passed since the last try."""
    blocked_at: float | None = memo.get("blocked_at")
    return blocked_at is not None and now - blocked_at >= SETTINGS.blocked_retry_seconds


@kopf.on.delete(API_GROUP, API_VERSION, PLURAL, id="finalize")
def finalize(body: kopf.Body, retry: int, memo: kopf.Memo, **_: Any) -> None:
    """Apply spec.retention before the finalizer is removed."""
    with _lock(memo):
        done = rc.finalize(kube(), body, SETTINGS)
    _post(body, done.events)
    if not done.problems or retry >= DELETE_RETRIES:
        metrics.forget(body["metadata"].get("namespace") or "", body["metadata"]["name"])
    if done.problems:
        message = "; ".join(done.problems)
        if retry < DELETE_RETRIES:
            raise kopf.TemporaryError(message, delay=SETTINGS.retry_delay(retry))
        kopf.warn(body, reason="CleanupIncomplete", message=f"gave up after {retry + 1} tries: {message}")
