"""Values that are valid and trigger no rule, and values that trigger exactly one chosen rule.

The simulator's promise is that the alerts a job raises are exactly the injected ones: every
normal value passes through :meth:`Guard.safe` (rounded, inside min/max, on the quiet side of
every rule on its measurement), and :func:`trigger_value` puts a value just beyond one rule's
threshold. Built by :mod:`simulator.engine` from the manifest; used by the profiles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from meterflow.spec.model import Condition, MeasurementSpec, RuleSpec
from simulator.errors import SimulatorError


def _threshold(rule: RuleSpec) -> float:
    """The threshold of a threshold rule (guards only ever see those: ``spec.threshold_rules()``)."""
    if rule.threshold is None or rule.condition is None:
        raise SimulatorError(f"rule {rule.name} ({rule.kind}) has no threshold to guard against")
    return rule.threshold


def fires(rule: RuleSpec, value: float) -> bool:
    """True when ``value <condition> threshold`` holds, as the job evaluates it."""
    t = _threshold(rule)
    match Condition(rule.condition):
        case Condition.gt:
            return value > t
        case Condition.ge:
            return value >= t
        case Condition.lt:
            return value < t
        case Condition.le:
            return value <= t
        case Condition.eq:
            return value == t
        case Condition.ne:
            return value != t
    raise AssertionError(rule.condition)  # pragma: no cover - the enum is exhaustive


@dataclass(frozen=True)
class Guard:
    """The safe values of one measurement: rounded to ``decimals``, within ``[low, high]``."""

    measurement: MeasurementSpec
    rules: tuple[RuleSpec, ...]
    decimals: int
    low: float
    high: float
    forbidden: tuple[float, ...] = ()
    fixed: float | None = None

    @property
    def step(self) -> float:
        """The smallest difference between two emitted values."""
        return 10.0**-self.decimals

    def safe(self, value: float) -> float:
        """``value`` rounded and moved to the nearest valid value that triggers no rule."""
        if self.fixed is not None:
            return self.fixed
        out = round(min(max(value, self.low), self.high), self.decimals)
        out = min(max(out, self.low), self.high)
        while out in self.forbidden:
            out = round(out + self.step if out + self.step <= self.high else out - self.step, self.decimals)
        return out + 0.0  # never -0.0

    def fired_by(self, value: float) -> list[str]:
        """Names of the rules on this measurement that ``value`` triggers."""
        return [r.name for r in self.rules if fires(r, value)]


def build_guard(measurement: MeasurementSpec, rules: list[RuleSpec], decimals: int) -> Guard:
    """The guard of ``measurement`` under the rules that name it; error when no value is safe."""
    mine = tuple(r for r in rules if r.measurement == measurement.name)
    step = 10.0**-decimals
    low = -math.inf if measurement.min is None else measurement.min
    high = math.inf if measurement.max is None else measurement.max
    forbidden: list[float] = []
    fixed: float | None = None
    for rule in mine:
        t = _threshold(rule)
        match Condition(rule.condition):
            case Condition.gt:
                high = min(high, t)
            case Condition.ge:
                high = min(high, round(t - step, decimals))
            case Condition.lt:
                low = max(low, t)
            case Condition.le:
                low = max(low, round(t + step, decimals))
            case Condition.eq:
                forbidden.append(t)
            case Condition.ne:
                if fixed is not None and fixed != t:
                    raise SimulatorError(
                        f"rules {[r.name for r in mine]} on {measurement.name} leave no value that triggers none "
                        "of them; drop one of the != rules"
                    )
                fixed = t
    if low > high or (fixed is not None and not low <= fixed <= high):
        raise SimulatorError(
            f"no valid {measurement.name} value avoids the rules {[r.name for r in mine]}; "
            "widen the measurement's min/max or move a threshold"
        )
    return Guard(measurement, mine, decimals, low, high, tuple(forbidden), fixed)


def trigger_value(guard: Guard, rule: RuleSpec) -> float | None:
    """A valid value just beyond ``rule``'s threshold, or None when no valid value triggers it."""
    t, step, d = _threshold(rule), guard.step, guard.decimals
    candidates = {
        Condition.gt: [round(t + step, d)],
        Condition.ge: [t],
        Condition.lt: [round(t - step, d)],
        Condition.le: [t],
        Condition.eq: [t],
        Condition.ne: [round(t + step, d), round(t - step, d)],
    }[Condition(rule.condition)]
    spec = guard.measurement
    for value in candidates:
        if spec.accepts(value) and fires(rule, value):
            return value + 0.0
    return None
