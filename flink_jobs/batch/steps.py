"""Finish the daily rows Flink returns: anchor each series' first register step, and meter silences.

The Flink query sees only its scan window, so the first reading of each series in it has no
predecessor (``unanchored``; step 0, as in the streaming job's first reading). When daily_stats
already holds an earlier day of that series, its ``last_value`` is the predecessor: the step is
added here with the same rule (:func:`register_step`, :mod:`meterflow.consumption`). Likewise a
meter's first reading in the scan ends a silence that began at its last reading before the scan.

Pure pandas on the small daily rows (one per meter x measurement x series x day); called by
:mod:`flink_jobs.batch.run`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from meterflow.consumption import REGISTER_RESET_RATIO

KEY = ["meter_id", "measurement_type", "series"]


def register_step(previous: float | None, value: float) -> float:
    """The consumption step of a register reading after ``previous`` (None: the first, 0)."""
    if previous is None or (isinstance(previous, float) and np.isnan(previous)):
        return 0.0
    if value < previous and value <= previous * REGISTER_RESET_RATIO:
        return value
    return value - previous


def register_steps(previous: Any, value: Any) -> Any:
    """:func:`register_step` over arrays (NaN previous → 0)."""
    previous = np.asarray(previous, dtype=float)
    value = np.asarray(value, dtype=float)
    reset = (value < previous) & (value <= previous * REGISTER_RESET_RATIO)
    steps = np.where(reset, value, value - previous)
    return np.where(np.isnan(previous), 0.0, steps)


def anchor_registers(daily: pd.DataFrame, anchors: pd.DataFrame) -> pd.DataFrame:
    """``daily`` with the first step of every unanchored register series taken from ``anchors``.

    ``anchors``: one row per series (``KEY``) with ``last_value``, its last reading before the scan.
    """
    out = daily.copy()
    if out.empty or anchors.empty:
        return out
    mask = (out["kind"] == "register") & (out["unanchored"] == 1)
    if not mask.any():
        return out
    targets = out.loc[mask, [*KEY, "first_value"]].reset_index().merge(anchors[[*KEY, "last_value"]], on=KEY)
    if targets.empty:
        return out
    previous = targets["last_value"].to_numpy(dtype=float)
    value = targets["first_value"].to_numpy(dtype=float)
    steps = register_steps(previous, value)
    backwards = value < previous
    reset = backwards & (value <= previous * REGISTER_RESET_RATIO)
    negative = backwards & ~reset
    index = targets["index"].to_numpy()
    out.loc[index, "consumption"] = out.loc[index, "consumption"].fillna(0.0).to_numpy() + steps
    out.loc[index, "resets"] = out.loc[index, "resets"].to_numpy() + reset.astype(int)
    out.loc[index, "negative_steps"] = out.loc[index, "negative_steps"].to_numpy() + negative.astype(int)
    out.loc[index, "negative_total"] = out.loc[index, "negative_total"].to_numpy() + np.where(negative, steps, 0.0)
    out.loc[index, "unanchored"] = 0
    return out


def meter_days(daily: pd.DataFrame, meter_anchors: pd.DataFrame) -> pd.DataFrame:
    """One row per meter and scanned day: ``first_ms``, ``last_ms`` and ``max_gap_ms``.

    ``max_gap_ms`` is the longest silence (between two readings of any measurement) *ending* on
    that day; the silence ending at the meter's first reading in the scan is measured from
    ``meter_anchors.last_ms`` (its last reading before the scan), when there is one.
    """
    columns = ["meter_id", "day", "first_ms", "last_ms", "max_gap_ms"]
    if daily.empty:
        return pd.DataFrame(columns=columns)
    days = (
        daily.groupby(["meter_id", "day"], as_index=False)
        .agg(first_ms=("first_ms", "min"), last_ms=("last_ms", "max"), max_gap_ms=("max_gap_ms", "max"))
        .sort_values(["meter_id", "day"], kind="stable")
        .reset_index(drop=True)
    )
    if meter_anchors.empty:
        return days[columns]
    first = (
        days.groupby("meter_id")
        .head(1)
        .reset_index()
        .merge(meter_anchors[["meter_id", "last_ms"]], on="meter_id", suffixes=("", "_before"))
    )
    if not first.empty:
        gap = (first["first_ms"] - first["last_ms_before"]).astype(float)
        index = first["index"].to_numpy()
        days.loc[index, "max_gap_ms"] = np.fmax(days.loc[index, "max_gap_ms"].to_numpy(dtype=float), gap.to_numpy())
    return days[columns]
