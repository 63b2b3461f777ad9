"""Meter health: one data-quality score (0 to 100) per meter and local day, with its components.

The first question an analyst asks of a meter is whether its data can be trusted. Each
meter-day is judged on seven components, each a share between 0 (bad) and 1 (good):

==============  ======  ==================================================================
component       weight  share
==============  ======  ==================================================================
completeness    40      readings / the readings expected from each measurement's ``interval``
                        (capped at 1) over the part of the day the meter was expected to
                        report (from its first reading, if it began that day, up to the end
                        of the day or of what has arrived)
silence         20      1 - (longest silence touching the day - the meter's shortest reporting
                        interval) / the day's length (capped): the silence NO_DATA measures
                        (:func:`silences`), less the gap the meter is allowed
duplicates      10      1 - duplicates / (readings + duplicates)
late            10      1 - readings that arrived after their windows closed / readings
dead letters    10      readings / (readings + the meter's dead letters of the day)
clock           5       1 - readings whose event time is more than
                        :data:`CLOCK_AHEAD_TOLERANCE_MS` ahead of their arrival / readings
stuck           5       1 - stuck series / series watched: a series is stuck when its value
                        stayed unchanged at least the ``for`` of a ``stuck`` rule on its
                        measurement (only measurements with such a rule are watched)
==============  ======  ==================================================================

The score is 100 x the weighted mean of the components that have evidence: on a day without
readings only completeness, silence and dead letters speak (a silent day scores 0). Pure pandas
on the small daily rows; called by :mod:`flink_jobs.batch.run`, which writes ``meter_health``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from meterflow.spec.durations import to_millis
from meterflow.spec.model import MeterPipeline, RuleKind

CLOCK_AHEAD_TOLERANCE_MS = 60_000
"""A reading stamped more than this after its arrival counts against its meter's clock."""

WEIGHTS = {
    "completeness": 40.0,
    "silence": 20.0,
    "duplicates": 10.0,
    "late": 10.0,
    "dead_letters": 10.0,
    "clock": 5.0,
    "stuck": 5.0,
}
"""Each component's weight in the score (they add up to 100)."""

COLUMNS = [
    "day", "meter_id", "score", "completeness", "readings", "expected_readings", "longest_silence_h",
    "duplicates", "late_readings", "dead_letters", "clock_ahead", "max_clock_ahead_s", "stuck_series", "reason",
]  # fmt: skip
"""The columns of a meter_health row (before the meter's labels)."""

HOUR_MS = 3_600_000
Series = tuple[str, str]


@dataclass(frozen=True)
class Expectations:
    """What the manifest says a meter owes: each series' reporting interval, and what counts as stuck."""

    interval_ms: dict[Series, int]
    stuck_ms: dict[Series, int]
    """Series watched for a stuck value → the ``for`` of the ``stuck`` rule on its measurement."""


def expectations_for(pipeline: MeterPipeline) -> Expectations:
    stuck_for = {
        r.measurement: to_millis(r.for_)
        for r in pipeline.spec.rules
        if r.kind == RuleKind.stuck.value and r.measurement is not None and r.for_ is not None
    }
    return Expectations(
        interval_ms={(m.name, m.series): to_millis(m.interval) for m in pipeline.spec.measurements},
        stuck_ms={(m.name, m.series): stuck_for[m.name] for m in pipeline.spec.measurements if m.name in stuck_for},
    )


def silences(
    meter_days: pd.DataFrame,
    meter_anchors: pd.DataFrame,
    *,
    days: list[date],
    day_ends: dict[date, int],
    known_until_ms: int,
) -> pd.DataFrame:
    """Per meter seen by then and recomputed day: ``seen_ms`` (its last reading up to the day's end)
    and ``silence_ms``, the longest silence touching the day.

    That is the longest gap ending on the day, or the time from the meter's last reading to the
    end of the day — or to ``known_until_ms``, how far the data reach, if that is earlier (silence
    after the fleet's newest reading is the end of what has arrived, not the meter's).
    ``meter_days``: ``meter_id, day, first_ms, last_ms, max_gap_ms`` for every scanned day (margin
    included); ``meter_anchors``: ``meter_id, last_ms`` of each meter's last reading before the scan.
    """
    columns = ["meter_id", "day", "first_ms", "last_ms", "max_gap_ms", "before_ms", "seen_ms", "silence_ms"]
    meters = sorted(set(meter_days["meter_id"]) | set(meter_anchors["meter_id"]))
    if not meters or not days:
        return pd.DataFrame(columns=columns)
    scanned = meter_days[["meter_id", "day", "first_ms", "last_ms", "max_gap_ms"]]
    all_days = sorted(set(scanned["day"]) | set(days))
    grid = pd.MultiIndex.from_product([meters, all_days], names=["meter_id", "day"]).to_frame(index=False)
    grid = grid.merge(scanned, on=["meter_id", "day"], how="left")
    grid = grid.merge(
        meter_anchors[["meter_id", "last_ms"]].rename(columns={"last_ms": "before_ms"}), on="meter_id", how="left"
    )
    grid = grid.sort_values(["meter_id", "day"], kind="stable")
    seen = grid.groupby("meter_id")["last_ms"].cummax()
    grid["seen_ms"] = np.fmax(
        seen.groupby(grid["meter_id"]).ffill().to_numpy(dtype=float), grid["before_ms"].to_numpy(dtype=float)
    )
    grid = grid[grid["day"].isin(days) & grid["seen_ms"].notna()].copy()
    ends = np.minimum(grid["day"].map(day_ends).to_numpy(dtype=float), float(known_until_ms))
    trailing = ends - grid["seen_ms"].to_numpy(dtype=float)
    grid["silence_ms"] = np.fmax(grid["max_gap_ms"].to_numpy(dtype=float), np.maximum(trailing, 0.0))
    return grid[columns].reset_index(drop=True)


def _series_of_meters(daily_scan: pd.DataFrame, series_anchors: pd.DataFrame) -> pd.DataFrame:
    """``meter_id, measurement_type, series``: the series each meter has reported (in the scan or before)."""
    key = ["meter_id", "measurement_type", "series"]
    return pd.concat([daily_scan[key], series_anchors[key]], ignore_index=True).drop_duplicates(ignore_index=True)


def score(
    daily_scan: pd.DataFrame,
    silence: pd.DataFrame,
    series_anchors: pd.DataFrame,
    dead_letters: pd.DataFrame,
    *,
    days: list[date],
    day_bounds: dict[date, tuple[int, int]],
    known_until_ms: int,
    expect: Expectations,
) -> pd.DataFrame:
    """One :data:`COLUMNS` row per meter and recomputed day it was known on, sorted by day and meter.

    ``daily_scan``: the daily rows of the whole scan (margin day included: a meter's series and its
    first reading); ``silence``: :func:`silences`; ``series_anchors``: the series' last readings before
    the scan; ``dead_letters``: ``meter_id, day, dead_letters``; ``day_bounds``: each day's start
    and end (epoch ms).
    """
    if silence.empty:
        return pd.DataFrame(columns=COLUMNS)
    grid = silence[["meter_id", "day", "first_ms", "before_ms", "silence_ms"]].copy()

    # what each meter owes per millisecond: the sum over its series of 1 / interval
    owned = _series_of_meters(daily_scan, series_anchors)
    intervals = np.array(
        [
            expect.interval_ms.get((m, s), np.nan)
            for m, s in zip(owned["measurement_type"], owned["series"], strict=True)
        ],
        dtype=float,
    )
    intervals_of = pd.Series(intervals, index=owned.index).groupby(owned["meter_id"])
    rate = (1.0 / pd.Series(intervals, index=owned.index)).groupby(owned["meter_id"]).sum(min_count=1)
    grid["rate"] = grid["meter_id"].map(rate).to_numpy(dtype=float)
    grid["allowed_gap_ms"] = grid["meter_id"].map(intervals_of.min()).fillna(0.0).to_numpy(dtype=float)

    # the part of the day the meter owed readings: from its first reading, if it began that day
    day_starts = grid["day"].map(lambda d: day_bounds[d][0]).to_numpy(dtype=float)
    ends = grid["day"].map(lambda d: day_bounds[d][1]).to_numpy(dtype=float)
    new = grid["before_ms"].isna().to_numpy()
    began = grid["meter_id"].map(daily_scan.groupby("meter_id")["first_ms"].min()).to_numpy(dtype=float)
    starts = np.where(new & (began > day_starts), began, day_starts)
    owed_ms = np.clip(np.minimum(ends, float(known_until_ms)) - starts, 0.0, None)
    grid["expected_readings"] = owed_ms * grid["rate"].to_numpy(dtype=float)
    grid["day_ms"] = ends - day_starts

    rows = daily_scan[daily_scan["day"].isin(days)]
    watched, stuck = _stuck(rows, expect)
    per_day = (
        rows.assign(stuck=stuck, watched=watched)
        .groupby(["meter_id", "day"], as_index=False)
        .agg(
            readings=("readings", "sum"),
            duplicates=("duplicates", "sum"),
            late_readings=("late_readings", "sum"),
            clock_ahead=("clock_ahead", "sum"),
            max_ahead_ms=("max_ahead_ms", "max"),
            stuck_series=("stuck", "sum"),
            watched=("watched", "sum"),
        )
    )
    grid = grid.merge(per_day, on=["meter_id", "day"], how="left")
    if dead_letters.empty:
        grid["dead_letters"] = 0
    else:
        grid = grid.merge(dead_letters[["meter_id", "day", "dead_letters"]], on=["meter_id", "day"], how="left")
    for column in ("readings", "duplicates", "late_readings", "clock_ahead", "stuck_series", "watched", "dead_letters"):
        grid[column] = grid[column].fillna(0).astype(np.int64)

    parts = _components(grid)
    weights = np.array([WEIGHTS[c] for c in parts.columns])
    values = parts.to_numpy(dtype=float)
    present = ~np.isnan(values)
    total = np.where(present, values, 0.0) @ weights
    weight = present.astype(float) @ weights
    grid["score"] = np.round(100.0 * np.divide(total, weight, out=np.zeros_like(total), where=weight > 0), 1)
    grid["completeness"] = parts["completeness"].to_numpy()
    grid["longest_silence_h"] = grid["silence_ms"].to_numpy(dtype=float) / HOUR_MS
    ahead = grid["max_ahead_ms"].to_numpy(dtype=float)
    grid["max_clock_ahead_s"] = np.where(ahead > CLOCK_AHEAD_TOLERANCE_MS, ahead / 1000.0, np.nan)
    grid["reason"] = _reasons(grid, parts)
    out = grid.sort_values(["day", "meter_id"], kind="stable").reset_index(drop=True)
    return out[COLUMNS]


def _stuck(rows: pd.DataFrame, expect: Expectations) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Per daily row: whether a stuck rule watches its series (1/0), and whether it was stuck (1/0)."""
    keys = zip(rows["measurement_type"], rows["series"], strict=True)
    limit = np.array([expect.stuck_ms.get(k, np.inf) for k in keys], dtype=float)
    watched = np.isfinite(limit)
    stuck = rows["max_flat_ms"].to_numpy(dtype=float) >= limit
    return watched.astype(np.int64), stuck.astype(np.int64)


def _components(grid: pd.DataFrame) -> pd.DataFrame:
    """Each component's share (NaN: no evidence that day), in :data:`WEIGHTS` order."""
    readings = grid["readings"].to_numpy(dtype=float)
    has = readings > 0
    expected = grid["expected_readings"].to_numpy(dtype=float)
    dead = grid["dead_letters"].to_numpy(dtype=float)
    duplicates = grid["duplicates"].to_numpy(dtype=float)
    watched = grid["watched"].to_numpy(dtype=float)
    excess_silence = np.maximum(
        0.0, grid["silence_ms"].to_numpy(dtype=float) - grid["allowed_gap_ms"].to_numpy(dtype=float)
    )

    def share(bad: np.ndarray[Any, Any], of: np.ndarray[Any, Any], when: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return np.where(when, 1.0 - np.divide(bad, of, out=np.zeros_like(bad), where=of > 0), np.nan)

    return pd.DataFrame(
        {
            "completeness": np.where(
                expected > 0,
                np.minimum(1.0, np.divide(readings, expected, out=np.zeros_like(readings), where=expected > 0)),
                np.nan,
            ),
            "silence": 1.0 - np.minimum(1.0, excess_silence / grid["day_ms"].to_numpy(dtype=float)),
            "duplicates": share(duplicates, readings + duplicates, has),
            "late": share(grid["late_readings"].to_numpy(dtype=float), readings, has),
            "dead_letters": share(dead, readings + dead, has | (dead > 0)),
            "clock": share(grid["clock_ahead"].to_numpy(dtype=float), readings, has),
            "stuck": share(grid["stuck_series"].to_numpy(dtype=float), watched, has & (watched > 0)),
        }
    )[list(WEIGHTS)]


def _reasons(grid: pd.DataFrame, parts: pd.DataFrame) -> list[str]:
    """What lowered each score, worst first, in words ("" when nothing did)."""
    out = []
    records = grid.to_dict("records")
    for row, shares in zip(records, parts.to_dict("records"), strict=True):
        said: list[tuple[float, str]] = []
        lost = {c: WEIGHTS[c] * (1.0 - v) for c, v in shares.items() if not math.isnan(v) and v < 1.0}
        for component, points in lost.items():
            said.append((points, _words(component, row)))
        said.sort(key=lambda p: -p[0])
        out.append("; ".join(text for _, text in said))
    return out


def _words(component: str, row: dict[str, Any]) -> str:
    if component == "completeness":
        return f"{row['readings']:,} of {float(row['expected_readings']):,.0f} expected readings"
    if component == "silence":
        return f"silent for {float(row['silence_ms']) / HOUR_MS:,.1f} h"
    if component == "duplicates":
        return _count(row["duplicates"], "duplicate")
    if component == "late":
        return _count(row["late_readings"], "late reading")
    if component == "dead_letters":
        return _count(row["dead_letters"], "dead letter")
    if component == "clock":
        return _count(row["clock_ahead"], "reading") + " stamped ahead of arrival (clock)"
    return f"{row['stuck_series']:,} stuck series"


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
