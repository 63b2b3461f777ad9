"""``meterflow batch --schedule``: run the batch on ``spec.batch.schedule`` until stopped (local only).

On Kubernetes the operator owns the schedule (a CronJob or a batch FlinkDeployment per fire, from
the same cron expression); locally ``meterflow run`` does *not* fire batches — it runs the
streaming job only, so the two never compete for the two cores and the embedded ClickHouse —
and this loop is the laptop's cron. The cron expression is read in ``spec.timeZone``, like the
days it recomputes. Each fire is one :func:`~flink_jobs.batch.run.run_batch` with the default
range (the due closed days of the lookback); a failed run is reported and the loop goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from meterflow.errors import MeterflowError
from meterflow.spec.model import MeterPipeline


def next_fire(schedule: str, zone: str, after: datetime) -> datetime:
    """The first time strictly after ``after`` that the 5-field cron ``schedule`` fires, in ``zone`` (UTC out)."""
    from croniter import croniter

    local = after.astimezone(ZoneInfo(zone))
    fire: datetime = croniter(schedule, local).get_next(datetime)
    return fire.astimezone(UTC)


def run_on_schedule(
    pipeline: MeterPipeline,
    *,
    echo: Callable[[str], None] = print,
    stop: Callable[[], bool] = lambda: False,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], None] = time.sleep,
    max_runs: int | None = None,
) -> int:
    """Fire :func:`run_batch` at each cron time until ``stop()`` (or ``max_runs``); the runs fired."""
    from flink_jobs.batch.run import run_batch

    schedule, zone = pipeline.spec.batch.schedule, pipeline.spec.time_zone
    fired = 0
    while not stop() and (max_runs is None or fired < max_runs):
        due = next_fire(schedule, zone, clock())
        echo(f"next batch run at {due.astimezone(ZoneInfo(zone)).isoformat(timespec='minutes')} ({schedule!r}, {zone})")
        while not stop() and clock() < due:
            sleep(min(30.0, max(0.0, (due - clock()).total_seconds())))
        if stop():
            break
        try:
            echo(run_batch(pipeline, echo=echo).describe())
        except MeterflowError as exc:
            echo(f"batch run failed: {exc}")
        fired += 1
    return fired
