"""The batch layer's ClickHouse side: what a run reads first, and how it replaces its days.

Replacement is by month partition: for every month a run touches, a staging table receives the
month's rows for the days *not* recomputed (copied) plus the new rows for the recomputed days,
and ``ALTER TABLE ... REPLACE PARTITION`` swaps it in atomically (``DROP PARTITION`` when the
month ends up empty). Exactly the recomputed days change; a re-run writes identical rows.
monthly_stats is rebuilt the same way from daily_stats, so a month always adds up its days.
Everything is written in one session (for the embedded chDB: one turn of its lock).
Called by :mod:`flink_jobs.batch.run`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import pyarrow as pa

DAILY_COLUMNS = (
    "day", "meter_id", "measurement_type", "series", "unit", "kind", "readings", "sum", "avg", "min", "max",
    "consumption", "first_time", "last_time", "first_value", "last_value", "resets", "negative_steps",
    "negative_total", "late_readings", "meter_type", "suburb", "postcode", "usage_type",
)  # fmt: skip
PROBLEM_COLUMNS = (
    "day", "meter_id", "rule", "severity", "measurement_type", "series", "value", "threshold", "reason",
    "meter_type", "suburb", "postcode", "usage_type",
)  # fmt: skip
HEALTH_COLUMNS = (
    "day", "meter_id", "score", "completeness", "readings", "expected_readings", "longest_silence_h", "duplicates",
    "late_readings", "dead_letters", "clock_ahead", "max_clock_ahead_s", "stuck_series", "reason", "meter_type",
    "suburb", "postcode", "usage_type",
)  # fmt: skip
MONTHLY_COLUMNS = (
    "month", "meter_id", "measurement_type", "series", "unit", "kind", "readings", "days_active", "days_recomputed",
    "consumption", "avg_daily_consumption", "max_daily_consumption", "avg", "min", "max", "resets", "negative_steps",
    "late_readings", "meter_type", "suburb", "postcode", "usage_type",
)  # fmt: skip
KEY = ["meter_id", "measurement_type", "series"]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class RunRecord:
    """One row of ``batch_runs``."""

    run_id: str
    started_at: datetime
    finished_at: datetime
    day_from: date | None
    day_to: date | None
    as_of: str
    snapshot_id: int
    snapshot_time: datetime
    readings: int
    daily_rows: int
    monthly_rows: int
    problem_rows: int
    flink_seconds: float
    seconds: float
    expired_snapshots: int
    status: str
    message: str


def from_ms(ms: int | float) -> datetime:
    return _EPOCH + timedelta(milliseconds=int(ms))


def _date_list(days: Sequence[date]) -> str:
    return ", ".join(f"'{d.isoformat()}'" for d in days)


def _months(days: Sequence[date]) -> list[int]:
    return sorted({d.year * 100 + d.month for d in days})


# --- reads before the job --------------------------------------------------------------------


def recomputed_days(client: Any, db: str) -> dict[date, int]:
    """Every recomputed day and the commit time (epoch ms) of the snapshot it was computed from."""
    rows = client.query(f"SELECT day, toUnixTimestamp64Milli(snapshot_time) FROM {db}.batch_days FINAL").result_rows
    return {day: int(ms) for day, ms in rows}


def anchors(client: Any, db: str, first: date, before: date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(last reading per series, last reading per meter) in daily_stats over days ``[first, before)``."""
    series = client.query_df(
        f"""SELECT meter_id, measurement_type, series, argMax(last_value, last_time) AS last_value,
               toInt64(toUnixTimestamp64Milli(max(last_time))) AS last_ms
        FROM {db}.daily_stats WHERE day >= '{first.isoformat()}' AND day < '{before.isoformat()}'
        GROUP BY meter_id, measurement_type, series"""
    )
    if series.empty:
        series = pd.DataFrame(columns=[*KEY, "last_value", "last_ms"])
    meters = (
        series.groupby("meter_id", as_index=False).agg(last_ms=("last_ms", "max"))
        if not series.empty
        else pd.DataFrame(columns=["meter_id", "last_ms"])
    )
    return series, meters


def history(client: Any, db: str, first: date, before: date, excluded: Sequence[date]) -> pd.DataFrame:
    """Daily consumption rows of ``[first, before)`` not among ``excluded`` (the baseline of HIGH_CONSUMPTION)."""
    frame = client.query_df(
        f"""SELECT meter_id, measurement_type, series, day, consumption FROM {db}.daily_stats
        WHERE day >= '{first.isoformat()}' AND day < '{before.isoformat()}' AND consumption IS NOT NULL
          AND day NOT IN ({_date_list(excluded) or "'1970-01-01'"})"""
    )
    if frame.empty:
        return pd.DataFrame(columns=[*KEY, "day", "consumption"])
    frame["day"] = pd.to_datetime(frame["day"]).dt.date
    return frame


def dead_letters(client: Any, db: str, days: Sequence[date], zone: str) -> pd.DataFrame:
    """``meter_id, day, dead_letters``: each meter's dead letters per local day of ``days``.

    A dead letter's day is its reading's (``event_time``) when the record had a readable
    timestamp, else its arrival's (``toDate32``: a device clock in 2100 stays in 2100); letters no
    meter can be named for are left out.
    """
    frame = client.query_df(
        f"""SELECT meter_id, toDate32(coalesce(event_time, ingest_time), '{zone}') AS day, count() AS dead_letters
        FROM {db}.dead_letters FINAL WHERE meter_id != '' AND day IN ({_date_list(days) or "'1970-01-01'"})
        GROUP BY meter_id, day"""
    )
    if frame.empty:
        return pd.DataFrame(columns=["meter_id", "day", "dead_letters"])
    frame["day"] = pd.to_datetime(frame["day"]).dt.date
    return frame


def meters(client: Any, db: str) -> pd.DataFrame:
    frame = client.query_df(
        f"SELECT meter_id, meter_type, suburb, postcode, usage_type FROM {db}.meters FINAL ORDER BY meter_id"
    )
    if frame.empty:
        return pd.DataFrame(columns=["meter_id", "meter_type", "suburb", "postcode", "usage_type"])
    return frame


# --- rows ------------------------------------------------------------------------------------


def _cell(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return _cell(value.item())
    return value


def daily_rows(daily: pd.DataFrame) -> list[list[Any]]:
    """``daily`` (the finished daily frame) as rows in :data:`DAILY_COLUMNS` order."""
    out = []
    for r in daily.itertuples(index=False):
        out.append(
            [
                r.day, r.meter_id, r.measurement_type, r.series, r.unit, r.kind, int(r.readings), float(r.sum),
                float(r.avg), float(r.min), float(r.max), _cell(r.consumption), from_ms(r.first_ms),
                from_ms(r.last_ms), float(r.first_value), float(r.last_value), int(r.resets), int(r.negative_steps),
                float(r.negative_total), int(r.late_readings), r.meter_type, r.suburb, r.postcode, r.usage_type,
            ]
        )  # fmt: skip
    return out


def health_rows(health: pd.DataFrame) -> list[list[Any]]:
    return [[_cell(getattr(r, c)) for c in HEALTH_COLUMNS] for r in health.itertuples(index=False)]


def problem_rows(problems: pd.DataFrame) -> list[list[Any]]:
    return [[_cell(getattr(r, c)) for c in PROBLEM_COLUMNS] for r in problems.itertuples(index=False)]


# --- the write -------------------------------------------------------------------------------


def replace_days(
    client: Any, db: str, table: str, *, column: str, columns: Sequence[str], rows: list[list[Any]] | pa.Table,
    days: Sequence[date], run_id: str,
) -> None:  # fmt: skip
    """Make ``table`` hold exactly ``rows`` for ``days`` (other days of their months untouched);
    ``rows`` as lists of ``columns``, or an Arrow table (inserted in bulk)."""
    stage = f"{db}.`_stage_{table}_{run_id}`"
    client.command(f"DROP TABLE IF EXISTS {stage}")
    client.command(f"CREATE TABLE {stage} AS {db}.{table}")
    try:
        months = _months(days)
        client.command(
            f"INSERT INTO {stage} SELECT * FROM {db}.{table} "
            f"WHERE toYYYYMM({column}) IN ({', '.join(map(str, months))}) AND {column} NOT IN ({_date_list(days)})"
        )
        if isinstance(rows, pa.Table):
            if rows.num_rows:
                client.insert_arrow(stage, rows.select(list(columns)))
        elif rows:
            client.insert(stage, rows, column_names=list(columns))
        _swap(client, db, table, stage=stage, column=column, months=months)
    finally:
        client.command(f"DROP TABLE IF EXISTS {stage}")


def _swap(client: Any, db: str, table: str, *, stage: str, column: str, months: list[int]) -> None:
    present = {int(m) for (m,) in client.query(f"SELECT DISTINCT toYYYYMM({column}) FROM {stage}").result_rows}
    for month in months:
        if month in present:
            client.command(f"ALTER TABLE {db}.{table} REPLACE PARTITION {month} FROM {stage}")
        else:
            client.command(f"ALTER TABLE {db}.{table} DROP PARTITION {month}")


def rebuild_months(client: Any, db: str, days: Sequence[date], run_id: str) -> int:
    """Recompute monthly_stats for the months of ``days`` from daily_stats; the rows written."""
    months = _months(days)
    month_list = ", ".join(map(str, months))
    recomputed = dict(
        client.query(
            f"SELECT toYYYYMM(day), count() FROM {db}.batch_days FINAL WHERE toYYYYMM(day) IN ({month_list}) "
            "GROUP BY toYYYYMM(day)"
        ).result_rows
    )
    keys = "[" + ", ".join(str(m) for m in recomputed) + "]"
    values = "[" + ", ".join(str(int(n)) for n in recomputed.values()) + "]"
    stage = f"{db}.`_stage_monthly_stats_{run_id}`"
    client.command(f"DROP TABLE IF EXISTS {stage}")
    client.command(f"CREATE TABLE {stage} AS {db}.monthly_stats")
    try:
        client.command(
            f"""INSERT INTO {stage} ({", ".join(MONTHLY_COLUMNS)})
            SELECT toStartOfMonth(day) AS month, meter_id, measurement_type, series, any(unit), any(kind),
                   sum(readings), uniqExact(day), transform(toYYYYMM(month), {keys}, {values}, 0),
                   sum(consumption), sum(consumption) / uniqExact(day), max(consumption),
                   sum(sum) / sum(readings), min(min), max(max), sum(resets), sum(negative_steps), sum(late_readings),
                   argMax(meter_type, day), argMax(suburb, day), argMax(postcode, day), argMax(usage_type, day)
            FROM {db}.daily_stats
            WHERE toYYYYMM(day) IN ({month_list})
            GROUP BY month, meter_id, measurement_type, series"""
        )
        (written,) = client.query(f"SELECT count() FROM {stage}").result_rows[0]
        _swap(client, db, "monthly_stats", stage=stage, column="month", months=months)
    finally:
        client.command(f"DROP TABLE IF EXISTS {stage}")
    return int(written)


def record_days(
    client: Any,
    db: str,
    days: Sequence[date],
    *,
    run_id: str,
    snapshot_id: int,
    snapshot_time: datetime,
    computed_at: datetime,
) -> None:
    """Mark ``days`` recomputed (one row per day; the table is kept merged)."""
    rows = [[d, run_id, snapshot_id, snapshot_time, computed_at] for d in days]
    client.insert(
        f"{db}.batch_days", rows, column_names=["day", "run_id", "snapshot_id", "snapshot_time", "computed_at"]
    )
    client.command(f"OPTIMIZE TABLE {db}.batch_days FINAL")


def record_run(client: Any, db: str, run: RunRecord) -> None:
    columns = list(RunRecord.__dataclass_fields__)
    client.insert(f"{db}.batch_runs", [[getattr(run, c) for c in columns]], column_names=columns)
