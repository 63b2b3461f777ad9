"""The batch job's Flink side: one scan of the Iceberg lake made into daily rows in the JVM.

Python builds a **plan** (:func:`plan`: the lake table and snapshot, the scan's local days as
instants, the spec's measurements) and hands it to ``io.meterflow.batch.DailyJob``
(``flink_jobs/batch/jvm``) through PyFlink's gateway. The job reads the scan window from the lake
(Flink's Iceberg source: partitions pruned, ten columns), collects each meter's readings and makes
one row per meter x measurement x series x local day (:data:`DAILY_COLUMNS`); the raw readings
never leave the JVM. The rows come back through a file of binary columns (:func:`read_rows`)
rather than through the gateway's socket, which copies every byte through a Python list.

Why JVM operators and not Flink SQL (measured, docs/batch.md "Speed"): the SQL needed four sorts
of every reading on string keys (de-duplication, the meter's gaps, the series' previous reading,
the daily groups) and spilled them to disk; one pass over each meter's readings in event-time
order does the same work. The semantics — de-duplication, the local day, register steps and
resets, battery volts, gaps — are stated once, in ``io.meterflow.batch.MeterReadings``.

Called by :mod:`flink_jobs.batch.run`; the plan and the decoding are pure and unit-tested.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flink_jobs.batch import battery, health
from flink_jobs.batch.days import day_bounds
from meterflow.consumption import REGISTER_RESET_RATIO, consumption_factor
from meterflow.spec.model import MeasurementKind, MeterPipeline
from meterflow.stack.endpoints import IcebergLocation
from meterflow_iceberg.catalog import flink_catalog_options
from meterflow_iceberg.tables import READINGS

JOB = "io.meterflow.batch.DailyJob"

LOCAL_JVM_OPTIONS = "-XX:TieredStopAtLevel=1"
"""The local batch JVM compiles with C1 only: a run lives for seconds, and C2 spent more CPU
compiling (13 s of a cold 10-day run) than its faster code saved (4 s) — docs/batch.md, Speed."""


DAILY_COLUMNS = (
    "meter_id", "measurement_type", "series", "day", "unit", "kind", "readings", "sum", "avg", "min",
    "max", "consumption", "first_ms", "last_ms", "first_value", "last_value", "unanchored", "resets",
    "negative_steps", "negative_total", "max_gap_ms", "late_readings", "duplicates", "clock_ahead",
    "max_ahead_ms", "max_flat_ms",
)  # fmt: skip
"""The columns of a daily row, in order (one per meter x measurement x series x local day)."""

_MAGIC = 0x4D464431  # "MFD1", io.meterflow.batch.DailyRows


@dataclass(frozen=True)
class Scan:
    """What one job reads: the local ``days`` (in order, consecutive), from one snapshot (None: the current)."""

    days: tuple[date, ...]
    snapshot_id: int | None = None


def plan(pipeline: MeterPipeline, lake: IcebergLocation, namespace: str, scan: Scan, output: Path) -> dict[str, Any]:
    """The JVM job's plan (``io.meterflow.batch.DailyPlan``) for ``scan``: everything it needs, as data."""
    zone = pipeline.spec.time_zone
    starts = [day_bounds(d, zone)[0] for d in scan.days] + [day_bounds(scan.days[-1], zone)[1]]
    return {
        "job_name": f"meterflow-batch-{pipeline.name}",
        "parallelism": pipeline.spec.flink.parallelism,
        "lake": {
            "catalog_name": lake.catalog_name,
            "catalog_properties": flink_catalog_options(lake),
            "namespace": namespace,
            "table": READINGS,
        },
        "snapshot_id": scan.snapshot_id,
        "scan_days": [d.isoformat() for d in scan.days],
        "day_starts_ms": starts,
        "measurements": [
            {
                "name": m.name,
                "series": m.series,
                "unit": m.unit,
                "kind": MeasurementKind(m.kind).value,
                "consumption_factor": consumption_factor(m),
                "battery": battery.is_battery(m.name),
            }
            for m in pipeline.spec.measurements
        ],
        "reset_ratio": REGISTER_RESET_RATIO,
        "clock_ahead_tolerance_ms": health.CLOCK_AHEAD_TOLERANCE_MS,
        "battery_scale": [
            battery.SCALE_SPLIT,
            battery.SCALE_LOW,
            battery.SCALE_SPAN,
            battery.VOLTS_LOW,
            battery.VOLTS_SPAN,
        ],
        "output": str(output),
    }


def job_config(pipeline: MeterPipeline, web_ui_port: str | None = None) -> dict[str, str]:
    """Flink settings of the batch job."""
    config = {
        "pipeline.name": f"meterflow-batch-{pipeline.name}",
        "execution.runtime-mode": "BATCH",
        "parallelism.default": str(pipeline.spec.flink.parallelism),
        # the converter makes a new record per row and the operator copies it into arrays at once:
        # without reuse, Flink would copy every reading between the two (chained) operators
        "pipeline.object-reuse": "true",
    }
    if web_ui_port is not None:
        config |= {"rest.bind-port": web_ui_port, "rest.bind-address": "127.0.0.1", "rest.address": "127.0.0.1"}
    return config


def environment(config: dict[str, str]) -> Any:
    """The JVM's StreamExecutionEnvironment with ``config`` (the PyFlink gateway's JVM is started if needed).

    Made in the JVM directly, not through PyFlink's Python wrapper: that one starts a Beam worker
    server for Python functions (importing Beam and gRPC, ~1 s of CPU), and this job has none.
    """
    from pyflink.java_gateway import get_gateway

    jvm = get_gateway().jvm
    conf = jvm.org.apache.flink.configuration.Configuration()
    for key, value in config.items():
        conf.setString(key, value)
    return jvm.org.apache.flink.streaming.api.environment.StreamExecutionEnvironment.getExecutionEnvironment(conf)


def run(env: Any, job_plan: dict[str, Any]) -> pd.DataFrame:
    """Run the job of ``job_plan`` on the JVM environment ``env`` (:func:`environment`); its daily rows."""
    from pyflink.java_gateway import get_gateway

    job = get_gateway().jvm
    for part in JOB.split("."):
        job = getattr(job, part)
    output = Path(job_plan["output"])
    try:
        job.run(env, json.dumps(job_plan))
        return read_rows(output, job_plan)
    finally:
        output.unlink(missing_ok=True)


def output_file() -> Path:
    """A fresh file for the job's rows (the caller's :func:`run` removes it)."""
    handle, name = tempfile.mkstemp(prefix="meterflow-daily-", suffix=".bin")
    os.close(handle)
    return Path(name)


def read_rows(path: Path, job_plan: dict[str, Any]) -> pd.DataFrame:
    """The daily rows the job wrote to ``path`` (blocks of ``io.meterflow.batch.DailyRows``)."""
    data = path.read_bytes()
    blocks = []
    pos = 0
    while pos < len(data):
        (length,) = struct.unpack_from(">i", data, pos)
        blocks.append(_block(memoryview(data)[pos + 4 : pos + 4 + length]))
        pos += 4 + length
    if not blocks:
        return empty_daily()
    columns = {name: np.concatenate([b[name] for b in blocks]) for name in blocks[0]}
    measurements = job_plan["measurements"]
    days = _scan_days(job_plan)
    which = columns.pop("measurement").astype(np.int64)
    frame = pd.DataFrame(
        {
            "meter_id": columns["meter_id"],
            "measurement_type": np.array([m["name"] for m in measurements], dtype=object)[which],
            "series": np.array([m["series"] for m in measurements], dtype=object)[which],
            "day": np.array(days, dtype=object)[columns["day"].astype(np.int64)],
            "unit": columns["unit"],
            "kind": np.array([m["kind"] for m in measurements], dtype=object)[which],
            "readings": columns["readings"],
            "sum": columns["sum"],
            "avg": columns["avg"],
            "min": columns["min"],
            "max": columns["max"],
            "consumption": np.where(columns["has_consumption"] == 1, columns["consumption"], np.nan),
            "first_ms": columns["first_ms"],
            "last_ms": columns["last_ms"],
            "first_value": columns["first_value"],
            "last_value": columns["last_value"],
            "unanchored": columns["unanchored"].astype(np.int64),
            "resets": columns["resets"],
            "negative_steps": columns["negative_steps"],
            "negative_total": columns["negative_total"],
            "max_gap_ms": np.where(columns["has_gap"] == 1, columns["max_gap_ms"].astype(np.float64), np.nan),
            "late_readings": columns["late_readings"],
            "duplicates": columns["duplicates"],
            "clock_ahead": columns["clock_ahead"],
            "max_ahead_ms": np.where(columns["has_arrival"] == 1, columns["max_ahead_ms"].astype(np.float64), np.nan),
            "max_flat_ms": columns["max_flat_ms"],
        }
    )
    return frame[list(DAILY_COLUMNS)]


def empty_daily() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in DAILY_COLUMNS})


def _scan_days(job_plan: dict[str, Any]) -> list[date]:
    """The scan's local days (the JVM numbers them by position)."""
    return [date.fromisoformat(d) for d in job_plan["scan_days"]]


_FIXED = (
    ("measurement", ">i1"), ("day", ">i2"), ("unit", "str"), ("readings", ">i8"), ("sum", ">f8"), ("avg", ">f8"),
    ("min", ">f8"), ("max", ">f8"), ("consumption", ">f8"), ("has_consumption", ">i1"), ("first_ms", ">i8"),
    ("last_ms", ">i8"), ("first_value", ">f8"), ("last_value", ">f8"), ("unanchored", ">i1"), ("resets", ">i4"),
    ("negative_steps", ">i4"), ("negative_total", ">f8"), ("max_gap_ms", ">i8"), ("has_gap", ">i1"),
    ("late_readings", ">i4"), ("duplicates", ">i4"), ("clock_ahead", ">i4"), ("max_ahead_ms", ">i8"),
    ("has_arrival", ">i1"), ("max_flat_ms", ">i8"),
)  # fmt: skip
"""The block's columns after the meter ids, in order (``DailyRows.toBytes``)."""


def _block(block: memoryview) -> dict[str, np.ndarray[Any, Any]]:
    magic, n = struct.unpack_from(">ii", block, 0)
    if magic != _MAGIC:
        raise ValueError("not a block of daily rows")
    pos = 8
    out: dict[str, np.ndarray[Any, Any]] = {}
    out["meter_id"], pos = _strings(block, pos, n)
    for name, dtype in _FIXED:
        if dtype == "str":
            out[name], pos = _strings(block, pos, n)
            continue
        column = np.frombuffer(block, dtype=dtype, count=n, offset=pos)
        out[name] = column.astype(column.dtype.newbyteorder("="))
        pos += column.nbytes
    return out


def _strings(block: memoryview, pos: int, n: int) -> tuple[np.ndarray[Any, Any], int]:
    """``n`` strings: their UTF-8 lengths (int32 each), then their bytes."""
    lengths = np.frombuffer(block, dtype=">i4", count=n, offset=pos).astype(np.int64)
    pos += 4 * n
    ends = np.cumsum(lengths)
    blob = bytes(block[pos : pos + int(ends[-1]) if n else pos])
    starts = ends - lengths
    text = blob.decode()
    if len(text) == len(blob):  # ASCII: character and byte positions agree
        values = [text[s:e] for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]
    else:
        values = [blob[s:e].decode() for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]
    return np.array(values, dtype=object), pos + (int(ends[-1]) if n else 0)
