"""One batch run: closed days recomputed from the Iceberg lake into ClickHouse, then lake upkeep.

:func:`run_batch` is what ``meterflow batch``, ``python -m flink_jobs.batch`` (the FlinkDeployment
entry) and the demo call. In order:

1. the schema (migrations, serving views with the pipeline's time zone) is brought up to date;
2. the snapshot is pinned — the current one, or ``--as-of`` an id or a time (time travel) — and
   the days chosen: ``--from``/``--to``, or the due days of the lookback (:mod:`.days`);
3. meter metadata is refreshed from the ``<name>.meters`` topic (:mod:`.meters`);
4. **a Flink job in batch mode** reads the lake for the days plus a one-day margin and returns one
   row per meter x measurement x series x local day (:mod:`.daily`: JVM operators, the raw
   readings stay in the JVM);
5. Python finishes the small daily rows: register steps anchored on daily_stats, meter silences
   (:mod:`.steps`), enrichment, each meter-day's data-quality score (:mod:`.health`, with the
   meter's dead letters from ClickHouse), problem rules (:mod:`.problems`);
6. with ``spec.anomalies`` and a trained model, the days' windows are recomputed from the lake
   with Arrow and re-scored (:mod:`.anomalies`);
7. one ClickHouse session replaces the days, months, health scores and anomaly verdicts
   (:mod:`.store`) and records the run;
8. snapshots older than ``spec.sinks.iceberg.snapshotRetention`` are expired;
9. the run leaves its Prometheus metrics (:mod:`.metrics`): a Pushgateway or a textfile.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from flink_jobs.batch import anomalies as anomalieslib
from flink_jobs.batch import daily as dailylib
from flink_jobs.batch import days as dayslib
from flink_jobs.batch import health, problems, steps, store
from flink_jobs.batch import meters as meterslib
from flink_jobs.batch import metrics as batch_metrics
from flink_jobs.batch.days import AsOf, BatchError, DayRange
from meterflow.anomaly.model import AnomalyModelError
from meterflow.errors import MeterflowError
from meterflow.spec.durations import to_millis
from meterflow.spec.model import MeterPipeline
from meterflow.spec.names import PipelineNames, names_for
from meterflow.stack.endpoints import clickhouse_dsn, iceberg_location, in_flink_cluster, kafka_bootstrap
from meterflow_clickhouse.anomalies import ANOMALY_COLUMNS, anomaly_arrow
from meterflow_clickhouse.client import session
from meterflow_clickhouse.schema import ensure_schema
from meterflow_iceberg.catalog import open_catalog
from meterflow_iceberg.maintenance import (
    SnapshotRef,
    current_snapshot,
    expire_snapshots,
    newest_event_ms,
    partition_updates,
    snapshot_as_of,
    snapshot_by_id,
)
from meterflow_iceberg.tables import ensure_readings_table

MARGIN_DAYS = 1
"""Days read before the first recomputed day, so its first register step has a predecessor."""

Echo = Callable[[str], None]


@dataclass
class BatchSummary:
    """What one batch run did."""

    run_id: str
    pipeline: str
    days: list[date] = field(default_factory=list)
    snapshot_id: int = 0
    snapshot_time: datetime | None = None
    as_of: str = ""
    readings: int = 0
    daily_rows: int = 0
    monthly_rows: int = 0
    problem_rows: int = 0
    health_rows: int = 0
    anomaly_rows: int = 0
    """Windows of the days re-scored by the anomaly model (0 without spec.anomalies or a model)."""
    anomalous_windows: int = 0
    anomaly_model: int = 0
    """The model version that scored them."""
    anomaly_seconds: float = 0.0
    """Recomputing the windows from the lake and scoring them."""
    jvm_seconds: float = 0.0
    """Starting the Flink JVM and its environment (0 when it was already running)."""
    flink_seconds: float = 0.0
    """The Flink job: reading the lake, the daily rows, handing them to Python."""
    write_seconds: float = 0.0
    """Writing the days, months and problems into ClickHouse."""
    seconds: float = 0.0
    expired_snapshots: int = 0
    meters_updated: int | None = None
    status: str = "ok"

    @property
    def day_from(self) -> date | None:
        return min(self.days) if self.days else None

    @property
    def day_to(self) -> date | None:
        return max(self.days) if self.days else None

    def _anomalies(self) -> str:
        if not self.anomaly_model:
            return ""
        return (
            f", {self.anomaly_rows:,} windows scored by anomaly model v{self.anomaly_model} "
            f"({self.anomalous_windows:,} anomalous, {self.anomaly_seconds:.1f}s)"
        )

    def describe(self) -> str:
        if not self.days:
            return f"batch {self.run_id}: nothing to recompute (every closed day of the lookback is up to date)"
        span = f"{self.day_from}" if self.day_from == self.day_to else f"{self.day_from} .. {self.day_to}"
        return (
            f"batch {self.run_id}: recomputed {len(self.days)} day{'s' if len(self.days) != 1 else ''} ({span}) "
            f"from snapshot {self.snapshot_id}: {self.readings:,} readings → {self.daily_rows:,} daily, "
            f"{self.monthly_rows:,} monthly, {self.health_rows:,} meter health, {self.problem_rows:,} problem rows"
            f"{self._anomalies()} "
            f"in {self.seconds:.1f}s "
            f"(JVM start {self.jvm_seconds:.1f}s, Flink job {self.flink_seconds:.1f}s, ClickHouse writes "
            f"{self.write_seconds:.1f}s); {self.expired_snapshots} snapshot"
            f"{'s' if self.expired_snapshots != 1 else ''} expired"
        )


def run_batch(
    pipeline: MeterPipeline,
    day_from: date | str | None = None,
    day_to: date | str | None = None,
    as_of: str | int | None = None,
    *,
    expire: bool = True,
    echo: Echo | None = None,
    now: datetime | None = None,
) -> BatchSummary:
    """Recompute ``day_from`` .. ``day_to`` (default: the due closed days) — see the module docstring."""
    say = echo or (lambda _: None)
    started = time.monotonic()
    started_at = now or datetime.now(UTC)
    run_id = started_at.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
    names = names_for(pipeline)
    zone = pipeline.spec.time_zone
    db = names.clickhouse_database
    dsn = clickhouse_dsn(pipeline)
    when = dayslib.parse_as_of(str(as_of), zone) if as_of is not None else None
    summary = BatchSummary(run_id=run_id, pipeline=pipeline.name, as_of=str(as_of) if as_of is not None else "")

    table = ensure_readings_table(open_catalog(iceberg_location(pipeline)), names.iceberg_namespace)
    snapshot = _pin(table, when)
    summary.snapshot_id = snapshot.snapshot_id if snapshot else 0
    summary.snapshot_time = store.from_ms(snapshot.timestamp_ms) if snapshot else store.from_ms(0)

    with session(dsn) as client:
        ensure_schema(client, pipeline)
        recomputed = store.recomputed_days(client, db)
    chosen = dayslib.explicit_range(day_from, day_to)
    if chosen is None:
        candidates = dayslib.closed_days(zone, pipeline.spec.batch.lookback, started_at)
        due = dayslib.due_days(candidates, recomputed, partition_updates(table), zone)
        chosen = dayslib.contiguous(due)
    if chosen is None:
        summary.status = "up to date"
    else:
        summary.days = chosen.days()
        say(
            f"recomputing {chosen.first} .. {chosen.last} ({zone} days) from "
            f"{snapshot.describe() if snapshot else 'an empty lake'}"
        )
        summary.meters_updated = _refresh_meters(pipeline, names, dsn, say)
        try:
            _compute(
                pipeline, names, table=table, chosen=chosen, snapshot=snapshot, recomputed=recomputed, summary=summary,
                known_until_ms=_known_until(table, snapshot, started_at), say=say,
            )  # fmt: skip
        except Exception as exc:
            # Flink (py4j) or a driver: keep the cause's first line; record the failed run either way
            failure = (
                exc if isinstance(exc, MeterflowError) else BatchError(f"the batch job failed: {_first_line(exc)}")
            )
            summary.status, summary.seconds = "failed", time.monotonic() - started
            _record_failure(dsn, db, summary, started_at, str(failure))
            batch_metrics.export(summary, datetime.now(UTC))
            raise failure from exc

    if expire:
        retention = to_millis(pipeline.spec.sinks.iceberg.snapshot_retention)
        summary.expired_snapshots = expire_snapshots(table, _ms(started_at) - retention)
    summary.seconds = time.monotonic() - started
    with session(dsn) as client:
        store.record_run(client, db, _record(summary, started_at))
    batch_metrics.export(summary, datetime.now(UTC))
    return summary


def _known_until(table: Any, snapshot: SnapshotRef | None, started_at: datetime) -> int:
    """How far the data reach (epoch ms): the lake's newest reading, or now if that is later.

    Silence after the newest reading of the whole fleet is not a meter's silence but the end of
    what has arrived (a replayed data set's last day, a collector that is behind); NO_DATA counts
    only up to here, as the streaming rule counts only up to the watermark.
    """
    now_ms = _ms(started_at)
    newest = newest_event_ms(table, snapshot.snapshot_id) if snapshot else None
    return now_ms if newest is None else min(now_ms, newest)


def _pin(table: Any, when: AsOf | None) -> SnapshotRef | None:
    if when is None:
        return current_snapshot(table)
    if when.snapshot_id is not None:
        return snapshot_by_id(table, when.snapshot_id)
    return snapshot_as_of(table, when.timestamp_ms or 0)


def _refresh_meters(pipeline: MeterPipeline, names: PipelineNames, dsn: str, say: Echo) -> int | None:
    """Copy the meters topic into ClickHouse; None when no broker answers (the table is kept)."""
    try:
        bootstrap = kafka_bootstrap(pipeline)
        latest = meterslib.read_topic(bootstrap, names.topics.meters)
    except Exception as exc:  # no broker: enrichment uses what the last run copied
        say(f"  meter metadata not refreshed ({_first_line(exc)}); using the copy in ClickHouse")
        return None
    with session(dsn) as client:
        current = store.meters(client, names.clickhouse_database)
        rows = meterslib.changed_rows(current, latest)
        if rows:
            client.insert(
                f"{names.clickhouse_database}.meters",
                rows,
                column_names=["meter_id", *meterslib.ENRICHMENT, "version", "is_deleted"],
            )
    return len(rows)


def _compute(
    pipeline: MeterPipeline,
    names: PipelineNames,
    *,
    table: Any,
    chosen: DayRange,
    snapshot: SnapshotRef | None,
    recomputed: dict[date, int],
    summary: BatchSummary,
    known_until_ms: int,
    say: Echo,
) -> None:
    zone = pipeline.spec.time_zone
    db = names.clickhouse_database
    days = chosen.days()
    scan_first = chosen.first - timedelta(days=MARGIN_DAYS)
    scan = dailylib.Scan(
        days=tuple(DayRange(scan_first, chosen.last).days()), snapshot_id=snapshot.snapshot_id if snapshot else None
    )
    raw = _flink_daily(pipeline, names, scan, summary, say) if snapshot else dailylib.empty_daily()

    # anchors only from an unbroken run of recomputed days ending at the margin (none: an empty span)
    streak = dayslib.streak_start(recomputed, scan_first) or scan_first
    with session(clickhouse_dsn(pipeline)) as client:
        series_anchors, meter_anchors = store.anchors(client, db, streak, scan_first)
        history = store.history(client, db, chosen.first - timedelta(days=problems.HISTORY_DAYS), chosen.last, days)
        meter_info = store.meters(client, db)
        dead_letters = store.dead_letters(client, db, days, zone)

    anchored = steps.anchor_registers(raw, series_anchors)
    meter_days = steps.meter_days(anchored, meter_anchors)
    daily = meterslib.enrich(anchored[anchored["day"].isin(days)].reset_index(drop=True), meter_info)
    daily = daily.sort_values(["day", "meter_id", "measurement_type", "series"], kind="stable").reset_index(drop=True)
    thresholds = problems.thresholds_for(pipeline)
    bounds = {d: dayslib.day_bounds(d, zone) for d in days}
    day_ends = {d: end for d, (_, end) in bounds.items()}
    silences = health.silences(meter_days, meter_anchors, days=days, day_ends=day_ends, known_until_ms=known_until_ms)
    meter_health = health.score(
        anchored, silences, series_anchors, dead_letters, days=days, day_bounds=bounds, known_until_ms=known_until_ms,
        expect=health.expectations_for(pipeline),
    )  # fmt: skip
    found = problems.detect(
        daily, history, meter_health=meter_health, meter_days=meter_days, meter_anchors=meter_anchors, days=days,
        day_ends=day_ends, known_until_ms=known_until_ms, t=thresholds,
    )  # fmt: skip
    meter_health = meterslib.enrich(meter_health, meter_info)
    found = meterslib.enrich(found, meter_info)

    summary.readings = int(daily["readings"].sum()) if not daily.empty else 0
    summary.daily_rows = len(daily)
    summary.problem_rows = len(found)
    summary.health_rows = len(meter_health)
    t_anomalies = time.monotonic()
    try:
        verdicts, model = anomalieslib.score_days(pipeline, table, days, snapshot.snapshot_id if snapshot else None)
    except AnomalyModelError as exc:  # the spec changed since training: the days' other figures still land
        say(f"  anomalies not scored: {exc}")
        verdicts, model = pd.DataFrame(), None
    if model is not None:
        summary.anomaly_model = model.card.version
        summary.anomaly_rows, summary.anomalous_windows = len(verdicts), int(verdicts["anomalous"].sum())
    summary.anomaly_seconds = time.monotonic() - t_anomalies
    computed_at = datetime.now(UTC)
    snapshot_time = store.from_ms(snapshot.timestamp_ms) if snapshot else store.from_ms(0)
    t0 = time.monotonic()
    with session(clickhouse_dsn(pipeline)) as client:
        store.replace_days(
            client, db, "daily_stats", column="day", columns=store.DAILY_COLUMNS, rows=store.daily_rows(daily),
            days=days, run_id=summary.run_id,
        )  # fmt: skip
        store.record_days(
            client, db, days, run_id=summary.run_id, snapshot_id=summary.snapshot_id, snapshot_time=snapshot_time,
            computed_at=computed_at,
        )  # fmt: skip
        summary.monthly_rows = store.rebuild_months(client, db, days, summary.run_id)
        store.replace_days(
            client, db, "problem_meters", column="day", columns=store.PROBLEM_COLUMNS, rows=store.problem_rows(found),
            days=days, run_id=summary.run_id,
        )  # fmt: skip
        store.replace_days(
            client, db, "meter_health", column="day", columns=store.HEALTH_COLUMNS,
            rows=store.health_rows(meter_health), days=days, run_id=summary.run_id,
        )  # fmt: skip
        if model is not None:
            store.replace_days(
                client, db, "anomalies", column="day", columns=ANOMALY_COLUMNS, rows=anomaly_arrow(verdicts),
                days=days, run_id=summary.run_id,
            )  # fmt: skip
    summary.write_seconds = time.monotonic() - t0


def _flink_daily(
    pipeline: MeterPipeline, names: PipelineNames, scan: dailylib.Scan, summary: BatchSummary, say: Echo
) -> pd.DataFrame:
    """Run the daily job on Flink (mini-cluster locally, the cluster's JVM on Kubernetes)."""
    from flink_jobs.runtime import prepare_local_jvm, web_ui_port

    t0 = time.monotonic()
    if in_flink_cluster():
        env = dailylib.environment(dailylib.job_config(pipeline))
    else:
        cluster = prepare_local_jvm(f"{pipeline.name}-batch", jvm_options=dailylib.LOCAL_JVM_OPTIONS)
        say(f"  Flink batch job on the local mini-cluster (log: {cluster.log_file})")
        env = dailylib.environment(dailylib.job_config(pipeline, web_ui_port(cluster)))
    t1 = time.monotonic()
    plan = dailylib.plan(pipeline, iceberg_location(pipeline), names.iceberg_namespace, scan, dailylib.output_file())
    frame = dailylib.run(env, plan)
    summary.jvm_seconds = t1 - t0
    summary.flink_seconds = time.monotonic() - t1
    return frame


def _record_failure(dsn: str, db: str, summary: BatchSummary, started_at: datetime, message: str) -> None:
    try:
        with session(dsn) as client:
            store.record_run(client, db, _record(summary, started_at, message))
    except MeterflowError:
        pass  # ClickHouse itself is what failed: the error raised says so


def _record(summary: BatchSummary, started_at: datetime, message: str | None = None) -> store.RunRecord:
    return store.RunRecord(
        run_id=summary.run_id,
        started_at=started_at,
        finished_at=datetime.now(UTC),
        day_from=summary.day_from,
        day_to=summary.day_to,
        as_of=summary.as_of,
        snapshot_id=summary.snapshot_id,
        snapshot_time=summary.snapshot_time or store.from_ms(0),
        readings=summary.readings,
        daily_rows=summary.daily_rows,
        monthly_rows=summary.monthly_rows,
        problem_rows=summary.problem_rows,
        flink_seconds=summary.flink_seconds,
        seconds=summary.seconds,
        expired_snapshots=summary.expired_snapshots,
        status=summary.status,
        message=message or summary.describe(),
    )


def _ms(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    caused = [line for line in lines if line.startswith("Caused by:")]
    return (caused[-1] if caused else lines[0] if lines else type(exc).__name__)[:400]
