"""``meterflow export``: the three BI files of the batch layer, as CSV and as Parquet.

The files the Tableau connector of seed 000 produced (daily stats, monthly stats, problem
meters), from ClickHouse ``daily_stats``, ``monthly_stats`` and ``problem_meters``: one CSV
(header row, ISO dates, UTC times with offset, empty cell for NULL) and one Parquet file each,
ordered by day/month, meter, measurement. Columns are documented in docs/batch.md.
Called by ``meterflow export`` and the demo.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from meterflow.spec.model import MeterPipeline
from meterflow.spec.names import names_for
from meterflow.stack.endpoints import clickhouse_dsn
from meterflow_clickhouse.client import session
from meterflow_clickhouse.schema import ensure_schema

EXPORTS: dict[str, tuple[str, str]] = {
    "daily_stats": ("day", "day, meter_id, measurement_type, series"),
    "monthly_stats": ("month", "month, meter_id, measurement_type, series"),
    "problem_meters": ("day", "day, meter_id, rule, measurement_type, series"),
}
"""File stem → (its day column, its order)."""


def export(
    pipeline: MeterPipeline, out_dir: str | Path, day_from: date | None = None, day_to: date | None = None
) -> list[Path]:
    """Write ``<stem>.csv`` and ``<stem>.parquet`` for the three tables into ``out_dir``; the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    db = names_for(pipeline).clickhouse_database
    written: list[Path] = []
    with session(clickhouse_dsn(pipeline)) as client:
        ensure_schema(client, pipeline)
        for stem, (column, order) in EXPORTS.items():
            where = _where(column, day_from, day_to)
            frame = client.query_df(f"SELECT * FROM {db}.{stem} {where} ORDER BY {order}")
            frame = _tidy(frame)
            csv_path, parquet_path = out / f"{stem}.csv", out / f"{stem}.parquet"
            _csv_text(frame).to_csv(csv_path, index=False)
            frame.to_parquet(parquet_path, index=False, engine="pyarrow")
            written += [csv_path, parquet_path]
    return written


def _where(column: str, day_from: date | None, day_to: date | None) -> str:
    parts = []
    if day_from is not None:
        parts.append(f"{column} >= '{day_from.isoformat()}'")
    if day_to is not None:
        parts.append(f"{column} <= '{day_to.isoformat()}'")
    return ("WHERE " + " AND ".join(parts)) if parts else ""


def _tidy(frame: pd.DataFrame) -> pd.DataFrame:
    """Dates as dates (not midnight timestamps), times as UTC instants, categories as strings."""
    out = frame.copy()
    for column in out.columns:
        series = out[column]
        if column in ("day", "month"):
            out[column] = pd.to_datetime(series).dt.date
        elif pd.api.types.is_datetime64_any_dtype(series):
            out[column] = series.dt.tz_localize("UTC") if series.dt.tz is None else series.dt.tz_convert("UTC")
        elif isinstance(series.dtype, pd.CategoricalDtype):
            out[column] = series.astype(str)
    return out


def _csv_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Times written as ISO 8601 with milliseconds and ``Z`` (the reading contract's form)."""
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[column]):
            out[column] = out[column].dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z"
    return out
