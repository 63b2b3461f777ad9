"""Batch runs: when the next one is due, and the FlinkDeployment that runs it (pure; time is an argument).

The operator schedules batch runs itself (a timer, see docs/operator.md for why not a CronJob):
each run is one FlinkDeployment ``<pipeline>-batch-<YYYYMMDDHHMM>`` (the scheduled minute in
UTC) running ``-pym flink_jobs.batch --manifest /opt/meterflow/pipeline.yaml`` with upgrade
mode ``stateless``. The name derives from the scheduled time, so a run is created at most once
however often, or after however many restarts, the operator looks. A run asked for by hand
(annotation ``meterflow.io/run-batch``) is named after a hash of the annotation's value.
Called by :mod:`meterflow_operator.reconcile`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from meterflow.spec.model import MeterPipeline, UpgradeMode
from meterflow_operator.render.common import COMPONENT_BATCH, SCHEDULED_ANNOTATION, flink_name
from meterflow_operator.render.flink import flink_deployment
from meterflow_operator.settings import Settings

TRIGGER_ANNOTATION = "meterflow.io/trigger"
RUN_BATCH_ANNOTATION = "meterflow.io/run-batch"
"""Set it (to any new value) on a MeterPipeline to start a batch run now; the operator removes it."""


def rfc3339(moment: datetime) -> str:
    """``2026-11-23T01:30:00Z`` (UTC, seconds): what Kubernetes status fields hold."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> datetime:
    """The inverse of :func:`rfc3339` (any offset accepted)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def last_due(schedule: str, time_zone: str, now: datetime) -> datetime:
    """The latest scheduled time at or before ``now`` (the cron read in ``time_zone``), in UTC."""
    local = now.astimezone(ZoneInfo(time_zone)) + timedelta(seconds=1)
    previous: datetime = croniter(schedule, local).get_prev(datetime)
    return previous.astimezone(UTC)


def next_due(schedule: str, time_zone: str, now: datetime) -> datetime:
    """The first scheduled time after ``now``, in ``time_zone``."""
    following: datetime = croniter(schedule, now.astimezone(ZoneInfo(time_zone))).get_next(datetime)
    return following


def due_run(schedule: str, time_zone: str, now: datetime, since: datetime) -> datetime | None:
    """The scheduled time to run now, or None.

    ``since`` is the later of the pipeline's creation and the last run's scheduled time. Runs
    missed while the operator was down collapse into one (the latest): batch runs recompute
    whole days idempotently, so one late run catches up.
    """
    slot = last_due(schedule, time_zone, now)
    return slot if slot > since else None


def scheduled_run_name(pipeline: MeterPipeline, scheduled: datetime) -> str:
    """``<pipeline>-batch-<YYYYMMDDHHMM>`` of the scheduled minute in UTC."""
    return flink_name(pipeline, "batch-" + scheduled.astimezone(UTC).strftime("%Y%m%d%H%M"))


def manual_run_name(pipeline: MeterPipeline, token: str) -> str:
    """``<pipeline>-batch-manual-<hash>``: the same name for the same annotation value."""
    return flink_name(pipeline, "batch-manual-" + hashlib.sha256(token.encode()).hexdigest()[:6])


def render_batch(
    pipeline: MeterPipeline, settings: Settings, scheduled: datetime, *, manual_token: str | None = None
) -> dict[str, Any]:
    """One batch run: a stateless FlinkDeployment running ``flink_jobs.batch`` once."""
    name = manual_run_name(pipeline, manual_token) if manual_token else scheduled_run_name(pipeline, scheduled)
    return flink_deployment(
        pipeline,
        settings,
        name=name,
        component=COMPONENT_BATCH,
        module="flink_jobs.batch",
        upgrade_mode=UpgradeMode.stateless.value,
        state="running",
        annotations={
            SCHEDULED_ANNOTATION: rfc3339(scheduled),
            TRIGGER_ANNOTATION: "manual" if manual_token else "schedule",
        },
    )


def run_time(run: Mapping[str, Any]) -> str:
    """When a batch-run object was scheduled (its annotation, else its creation time)."""
    meta = run.get("metadata", {})
    return str(meta.get("annotations", {}).get(SCHEDULED_ANNOTATION) or meta.get("creationTimestamp") or "")


def latest_run(runs: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The most recently scheduled run."""
    ordered = sorted(runs, key=lambda r: (run_time(r), r["metadata"]["name"]))
    return ordered[-1] if ordered else None


def runs_to_prune(runs: Iterable[Mapping[str, Any]], keep: int) -> list[str]:
    """Names of the runs beyond the ``keep`` most recent, oldest first."""
    ordered = sorted(runs, key=lambda r: (run_time(r), r["metadata"]["name"]))
    return [r["metadata"]["name"] for r in ordered[: max(0, len(ordered) - keep)]]
