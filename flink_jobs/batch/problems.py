"""Problem meters: the batch's rules over the daily rows (pure pandas, small data).

Each rule turns daily rows into problem rows (:data:`COLUMNS`): the day, the meter, the rule,
a severity, the measurement it concerns, the value that tripped it, the threshold and a reason
in words. The thresholds come from the manifest (:func:`thresholds_for`):

* ``HIGH_CONSUMPTION_HISTORY`` — a day's consumption above ``highConsumptionFactor`` x the
  median of the same meter's daily consumption over its previous 28 days (at least 7 days with
  readings, median > 0). CRITICAL above twice that limit.
* ``HIGH_CONSUMPTION_USAGE`` — a day's consumption above factor x the median of that day's
  consumption of the meters of the same usage type (at least 5 meters, median > 0; meters without
  metadata form the ``unknown`` group). CRITICAL above twice that limit.
  Consumption is always interval sums or register *steps* — never a sum of a running register.
* ``LOW_BATTERY`` — the day's lowest battery reading, in volts after normalisation
  (:mod:`flink_jobs.batch.battery`), below the threshold of the manifest's alert rule on that
  measurement (``<``/``<=``; default 3.0 V), with that rule's severity (default CRITICAL).
* ``HIGH_TEMPERATURE`` — the day's highest temperature above the manifest's rule threshold
  (``>``/``>=``; default 50 °C), with its severity (default WARNING).
* ``NO_DATA`` — the longest silence of a meter (no reading of any measurement) touching the day
  is longer than ``noDataHours``: a gap ending that day, or the time from its last reading to the
  end of the day — or to the fleet's newest reading, if that is earlier (silence after it is the
  end of what has arrived, not the meter's). CRITICAL above 4 x noDataHours.
* ``STUCK_REGISTER`` — a register that stayed flat all day while its interval measurement
  recorded flow, or the reverse (the interval measurement reported nothing while the register
  advanced). Pairs: each register with the interval measurement of the same unit whose name
  prefixes it (Pulse1_Total ↔ Pulse1), or the only interval measurement of that unit. WARNING.
* ``NEGATIVE_STEP`` — register steps below zero that are not resets (counted as they are). WARNING.
* ``REGISTER_RESET`` — a register fell to at most 10 % of its previous value (meter swap or
  roll-over; counted from zero). INFO.
* ``LOW_QUALITY`` — the meter-day's data-quality score (:mod:`flink_jobs.batch.health`) below
  ``minHealthScore``, with what lowered it. CRITICAL below half of it.

Called by :mod:`flink_jobs.batch.run`; unit-tested with exact values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from flink_jobs.batch import battery, health
from meterflow.consumption import REGISTER_RESET_RATIO, energy_unit
from meterflow.spec.model import MeterPipeline

KEY = ["meter_id", "measurement_type", "series"]
COLUMNS = ["day", "meter_id", "rule", "severity", "measurement_type", "series", "value", "threshold", "reason"]

HISTORY_DAYS = 28
MIN_HISTORY_DAYS = 7
MIN_PEERS = 5
CRITICAL_MULTIPLE = 2.0
"""High consumption is CRITICAL above this multiple of its limit."""
NO_DATA_CRITICAL_MULTIPLE = 4
DEFAULT_LOW_BATTERY_V = 3.0
DEFAULT_HIGH_TEMPERATURE_C = 50.0
HOUR_MS = 3_600_000

Series = tuple[str, str]


@dataclass(frozen=True)
class Limit:
    """A threshold on one measurement: the comparison that flags, and the severity."""

    threshold: float
    condition: str
    severity: str

    def trips(self, values: pd.Series) -> pd.Series:
        ops = {"<": values.lt, "<=": values.le, ">": values.gt, ">=": values.ge}
        return ops[self.condition](self.threshold)


@dataclass(frozen=True)
class Thresholds:
    """Everything the rules compare with, from one MeterPipeline."""

    factor: float
    no_data_hours: int
    low_battery: dict[Series, Limit] = field(default_factory=dict)
    high_temperature: dict[Series, Limit] = field(default_factory=dict)
    pairs: tuple[tuple[Series, Series], ...] = ()
    """(register, interval) measurement pairs for STUCK_REGISTER."""
    min_health_score: float = 60.0


def _rule_limit(pipeline: MeterPipeline, name: str, conditions: set[str]) -> tuple[float, str, str] | None:
    """The first alert rule on measurement ``name`` with one of ``conditions`` (rules name no series)."""
    for rule in pipeline.spec.threshold_rules():
        if rule.measurement == name and rule.condition in conditions and rule.threshold is not None:
            return rule.threshold, str(rule.condition), rule.severity
    return None


def thresholds_for(pipeline: MeterPipeline) -> Thresholds:
    """The rules' thresholds for ``pipeline`` (manifest alert rules win over the defaults)."""
    measurements = pipeline.spec.measurements
    low: dict[Series, Limit] = {}
    high: dict[Series, Limit] = {}
    for m in measurements:
        if m.kind != "gauge":
            continue
        if battery.is_battery(m.name):
            found = _rule_limit(pipeline, m.name, {"<", "<="})
            low[(m.name, m.series)] = Limit(*found) if found else Limit(DEFAULT_LOW_BATTERY_V, "<", "CRITICAL")
        elif "temp" in m.name.lower():
            found = _rule_limit(pipeline, m.name, {">", ">="})
            high[(m.name, m.series)] = Limit(*found) if found else Limit(DEFAULT_HIGH_TEMPERATURE_C, ">", "WARNING")
    pairs = []
    intervals = [m for m in measurements if m.kind == "interval"]
    for reg in (m for m in measurements if m.kind == "register"):
        same_unit = [m for m in intervals if m.unit == reg.unit]
        prefixed = [m for m in same_unit if reg.name.startswith(m.name)]
        chosen = prefixed or (same_unit if len(same_unit) == 1 else [])
        if chosen:
            pairs.append(((reg.name, reg.series), (chosen[0].name, chosen[0].series)))
    return Thresholds(
        factor=pipeline.spec.batch.high_consumption_factor,
        no_data_hours=pipeline.spec.batch.no_data_hours,
        low_battery=low,
        high_temperature=high,
        pairs=tuple(pairs),
        min_health_score=pipeline.spec.batch.min_health_score,
    )


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object if c not in ("value", "threshold") else float) for c in COLUMNS})


def _frame(
    rows: pd.DataFrame,
    rule: str,
    *,
    severity: pd.Series | str,
    value: pd.Series,
    threshold: pd.Series | float,
    reason: pd.Series,
) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "day": rows["day"].to_numpy(),
            "meter_id": rows["meter_id"].to_numpy(),
            "rule": rule,
            "severity": severity if isinstance(severity, str) else severity.to_numpy(),
            "measurement_type": rows["measurement_type"].to_numpy() if "measurement_type" in rows else "",
            "series": rows["series"].to_numpy() if "series" in rows else "",
            "value": np.asarray(value, dtype=float),
            "threshold": np.broadcast_to(np.asarray(threshold, dtype=float), (len(rows),)).copy(),
            "reason": reason.to_numpy(),
        }
    )
    return out if len(out) else _empty()


def _consumers(daily: pd.DataFrame) -> pd.DataFrame:
    """The rows with consumption, their ``unit`` the consumption's (a power's kW: kWh)."""
    rows = daily[daily["kind"].isin(["interval", "register", "power"]) & daily["consumption"].notna()]
    power = rows["kind"] == "power"
    if not power.any():
        return rows
    return rows.assign(unit=rows["unit"].where(~power, rows["unit"].map(energy_unit)))


def _high_severity(consumption: pd.Series, limit: pd.Series) -> pd.Series:
    return pd.Series(np.where(consumption > CRITICAL_MULTIPLE * limit, "CRITICAL", "WARNING"), index=consumption.index)


def high_consumption_history(daily: pd.DataFrame, history: pd.DataFrame, t: Thresholds) -> pd.DataFrame:
    """HIGH_CONSUMPTION_HISTORY (see the module docstring); ``history`` holds earlier days' rows."""
    today = _consumers(daily)[[*KEY, "day", "unit", "consumption"]]
    if today.empty:
        return _empty()
    frames = [f for f in (history[[*KEY, "day", "consumption"]], today[[*KEY, "day", "consumption"]]) if not f.empty]
    past = pd.concat(frames, ignore_index=True)
    past = past[past["consumption"].notna()].drop_duplicates([*KEY, "day"], keep="last")
    pairs = today.merge(past, on=KEY, suffixes=("", "_past"))
    age = (pd.to_datetime(pairs["day"]) - pd.to_datetime(pairs["day_past"])).dt.days
    pairs = pairs[(age >= 1) & (age <= HISTORY_DAYS)]
    if pairs.empty:
        return _empty()
    base = pairs.groupby([*KEY, "day"], as_index=False).agg(
        baseline=("consumption_past", "median"), days=("consumption_past", "size")
    )
    rows = today.merge(base, on=[*KEY, "day"])
    return _over_median(
        rows[rows["days"] >= MIN_HISTORY_DAYS],
        "baseline",
        t.factor,
        "HIGH_CONSUMPTION_HISTORY",
        lambda r: (
            f"{r.consumption:,.1f} {r.unit} in the day: {r.consumption / r.baseline:.1f}x this meter's median "
            f"of {r.baseline:,.1f} {r.unit} over its previous {r.days} active days (limit {t.factor:g}x)"
        ),
    )


def _over_median(
    rows: pd.DataFrame, median: str, factor: float, rule: str, reason: Callable[[Any], str]
) -> pd.DataFrame:
    """The rows whose consumption exceeds ``factor`` x a positive ``median`` column, as problems."""
    rows = rows[(rows[median] > 0) & (rows["consumption"] > factor * rows[median])]
    if rows.empty:
        return _empty()
    limit = factor * rows[median]
    return _frame(
        rows,
        rule,
        severity=_high_severity(rows["consumption"], limit),
        value=rows["consumption"],
        threshold=limit,
        reason=rows.apply(reason, axis=1),
    )


def high_consumption_usage(daily: pd.DataFrame, t: Thresholds) -> pd.DataFrame:
    """HIGH_CONSUMPTION_USAGE: against the meters of the same usage type on the same day."""
    today = _consumers(daily)
    if today.empty:
        return _empty()
    group = ["day", "measurement_type", "series", "usage_type"]
    peers = today.groupby(group, as_index=False).agg(median=("consumption", "median"), meters=("meter_id", "nunique"))
    rows = today.merge(peers, on=group)
    return _over_median(
        rows[rows["meters"] >= MIN_PEERS],
        "median",
        t.factor,
        "HIGH_CONSUMPTION_USAGE",
        lambda r: (
            f"{r.consumption:,.1f} {r.unit} in the day: {r.consumption / r['median']:.1f}x the median of the "
            f"{r.meters} {r.usage_type} meters ({r['median']:,.1f} {r.unit}; limit {t.factor:g}x)"
        ),
    )


def _limits(daily: pd.DataFrame, limits: dict[Series, Limit], column: str, rule: str, words: str) -> pd.DataFrame:
    parts = []
    for (name, series), limit in limits.items():
        rows = daily[(daily["measurement_type"] == name) & (daily["series"] == series)]
        rows = rows[limit.trips(rows[column])]
        if rows.empty:
            continue
        reason = rows.apply(
            lambda r, lim=limit: f"{words} {r[column]:g} {r.unit} {lim.condition} {lim.threshold:g} {r.unit}", axis=1
        )
        parts.append(
            _frame(rows, rule, severity=limit.severity, value=rows[column], threshold=limit.threshold, reason=reason)
        )
    return pd.concat(parts, ignore_index=True) if parts else _empty()


def low_battery(daily: pd.DataFrame, t: Thresholds) -> pd.DataFrame:
    """LOW_BATTERY on the day's lowest (normalised) battery reading."""
    return _limits(daily, t.low_battery, "min", "LOW_BATTERY", "lowest battery reading (in volts, both scales)")


def high_temperature(daily: pd.DataFrame, t: Thresholds) -> pd.DataFrame:
    """HIGH_TEMPERATURE on the day's highest temperature."""
    return _limits(daily, t.high_temperature, "max", "HIGH_TEMPERATURE", "highest temperature")


def stuck_register(daily: pd.DataFrame, t: Thresholds) -> pd.DataFrame:
    """STUCK_REGISTER: register flat while the interval measurement shows flow, or the reverse."""
    parts = []
    for (reg_name, reg_series), (int_name, int_series) in t.pairs:
        reg = daily[(daily["measurement_type"] == reg_name) & (daily["series"] == reg_series)]
        flow = daily[(daily["measurement_type"] == int_name) & (daily["series"] == int_series)]
        both = reg.merge(flow, on=["meter_id", "day"], suffixes=("", "_flow"))
        if both.empty:
            continue
        flat = both[(both["consumption"] == 0) & (both["consumption_flow"] > 0)]
        if not flat.empty:
            reason = flat.apply(
                lambda r, n=int_name: (
                    f"register {r.measurement_type} stayed at {r.last_value:,.1f} {r.unit} all day "
                    f"while {n} recorded {r.consumption_flow:,.1f} {r.unit}"
                ),
                axis=1,
            )
            parts.append(
                _frame(
                    flat,
                    "STUCK_REGISTER",
                    severity="WARNING",
                    value=flat["consumption_flow"],
                    threshold=0.0,
                    reason=reason,
                )
            )
        silent = both[(both["consumption_flow"] == 0) & (both["consumption"] > 0)].copy()
        if not silent.empty:
            reason = silent.apply(
                lambda r, n=int_name: (
                    f"{n} recorded no flow all day while register {r.measurement_type} advanced "
                    f"{r.consumption:,.1f} {r.unit}"
                ),
                axis=1,
            )
            silent["measurement_type"], silent["series"] = int_name, int_series
            parts.append(
                _frame(
                    silent,
                    "STUCK_REGISTER",
                    severity="WARNING",
                    value=silent["consumption"],
                    threshold=0.0,
                    reason=reason,
                )
            )
    return pd.concat(parts, ignore_index=True) if parts else _empty()


def register_faults(daily: pd.DataFrame) -> pd.DataFrame:
    """NEGATIVE_STEP and REGISTER_RESET from the day's step counts."""
    regs = daily[daily["kind"] == "register"]
    parts = []
    neg = regs[regs["negative_steps"] > 0]
    if not neg.empty:
        reason = neg.apply(
            lambda r: (
                f"{int(r.negative_steps)} negative register step(s) totalling {r.negative_total:,.1f} {r.unit} "
                "(counted as they are)"
            ),
            axis=1,
        )
        parts.append(
            _frame(neg, "NEGATIVE_STEP", severity="WARNING", value=neg["negative_total"], threshold=0.0, reason=reason)
        )
    resets = regs[regs["resets"] > 0]
    if not resets.empty:
        reason = resets.apply(
            lambda r: (
                f"register reset {int(r.resets)} time(s): fell to at most {REGISTER_RESET_RATIO:.0%} of the "
                "previous reading, counted from zero"
            ),
            axis=1,
        )
        parts.append(
            _frame(resets, "REGISTER_RESET", severity="INFO", value=resets["resets"], threshold=np.nan, reason=reason)
        )
    return pd.concat(parts, ignore_index=True) if parts else _empty()


def no_data(
    meter_days: pd.DataFrame,
    meter_anchors: pd.DataFrame,
    *,
    days: list[date],
    day_ends: dict[date, int],
    known_until_ms: int,
    t: Thresholds,
) -> pd.DataFrame:
    """NO_DATA: per meter and day, the longest silence touching the day against ``noDataHours``.

    ``meter_days``: ``meter_id, day, last_ms, max_gap_ms`` for every scanned day (margin included);
    ``meter_anchors``: ``meter_id, last_ms`` of each meter's last reading before the scan;
    ``known_until_ms``: how far the data reach (silence is counted up to there at most).
    """
    grid = health.silences(meter_days, meter_anchors, days=days, day_ends=day_ends, known_until_ms=known_until_ms)
    if grid.empty:
        return _empty()
    limit_ms = t.no_data_hours * HOUR_MS
    silence = grid["silence_ms"].to_numpy(dtype=float)
    grid["hours"] = silence / HOUR_MS
    rows = grid[silence > limit_ms].copy()
    if rows.empty:
        return _empty()
    severity = pd.Series(
        np.where(rows["hours"] > NO_DATA_CRITICAL_MULTIPLE * t.no_data_hours, "CRITICAL", "WARNING"), index=rows.index
    )
    reason = rows["hours"].map(lambda h: f"no reading for {h:,.1f} h (more than {t.no_data_hours} h)")
    rows["measurement_type"], rows["series"] = "", ""
    return _frame(
        rows, "NO_DATA", severity=severity, value=rows["hours"], threshold=float(t.no_data_hours), reason=reason
    )


def low_quality(meter_health: pd.DataFrame, t: Thresholds) -> pd.DataFrame:
    """LOW_QUALITY: the meter-days whose health score is below ``minHealthScore``."""
    if meter_health.empty or t.min_health_score <= 0:
        return _empty()
    rows = meter_health[meter_health["score"] < t.min_health_score].copy()
    if rows.empty:
        return _empty()
    severity = pd.Series(np.where(rows["score"] < t.min_health_score / 2, "CRITICAL", "WARNING"), index=rows.index)
    reason = rows["score"].map(lambda s: f"data quality {s:.1f} of 100: ") + rows["reason"]
    rows["measurement_type"], rows["series"] = "", ""
    return _frame(
        rows, "LOW_QUALITY", severity=severity, value=rows["score"], threshold=t.min_health_score, reason=reason
    )


def detect(
    daily: pd.DataFrame,
    history: pd.DataFrame,
    *,
    meter_health: pd.DataFrame | None = None,
    meter_days: pd.DataFrame,
    meter_anchors: pd.DataFrame,
    days: list[date],
    day_ends: dict[date, int],
    known_until_ms: int,
    t: Thresholds,
) -> pd.DataFrame:
    """Every rule over the recomputed days' rows, sorted by day, meter, rule, measurement."""
    parts = [
        high_consumption_history(daily, history, t),
        high_consumption_usage(daily, t),
        low_battery(daily, t),
        high_temperature(daily, t),
        no_data(meter_days, meter_anchors, days=days, day_ends=day_ends, known_until_ms=known_until_ms, t=t),
        stuck_register(daily, t),
        register_faults(daily),
        low_quality(meter_health if meter_health is not None else pd.DataFrame(), t),
    ]
    parts = [p for p in parts if not p.empty]
    if not parts:
        return _empty()
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["day", "meter_id", "rule", "measurement_type", "series"], kind="stable").reset_index(
        drop=True
    )[COLUMNS]
