"""Values that are valid and trigger no rule, and values that trigger exactly one chosen rule.

The simulator's promise is that the alerts a job raises are exactly the injected ones: every
normal value passes through :meth:`Guard.safe` (rounded, inside min/max, on the quiet side of
every threshold rule on its measurement), and :func:`trigger_value` puts a value just beyond one
rule's threshold. A :class:`RunGuard` keeps normal water flow from running through a
continuousFlow rule's intervals (the water profile also keeps its register from looking stuck).
Built by :mod:`simulator.engine` from the manifest; used by the profiles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from meterflow.spec.durations import to_millis
from meterflow.spec.model import Condition, MeasurementSpec, MeterPipeline, RuleSpec
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


class RunGuard:
    """Keeps normal flow from running through a continuousFlow rule's ``count`` intervals.

    Per meter it follows the run of consecutive clock intervals of ``every`` (from each local
    midnight in spec.timeZone, as the job counts them) that had flow; once the run reaches
    ``count - 2``, the next interval gets no flow at all. The margin of one interval lets an
    injected value (a stuck register's forced litre) land anywhere without completing a run, so
    only an injected leak makes a continuous-flow alert.
    """

    def __init__(self, zone: str, every_ms: int, count: int, meters: int) -> None:
        self.zone = ZoneInfo(zone)
        self.every = every_ms
        self.limit = max(1, count - 2)
        self._days: dict[int, tuple[int, int]] = {}
        self._start: list[int | None] = [None] * meters
        self._end = [0] * meters
        self._flow = [0.0] * meters
        self._run = [0] * meters
        self._last_end: list[int | None] = [None] * meters
        self._quiet = [False] * meters

    def _interval(self, millis: int) -> tuple[int, int]:
        local = datetime.fromtimestamp(millis / 1000, UTC).astimezone(self.zone)
        day = local.date().toordinal()
        bounds = self._days.get(day)
        if bounds is None:
            midnight = datetime.combine(local.date(), time(), tzinfo=self.zone)
            following = datetime.combine(local.date() + timedelta(days=1), time(), tzinfo=self.zone)
            bounds = self._days[day] = (int(midnight.timestamp() * 1000), int(following.timestamp() * 1000))
        midnight_ms, next_ms = bounds
        start = midnight_ms + (millis - midnight_ms) // self.every * self.every
        return start, min(start + self.every, next_ms)

    def quiet(self, meter: int, millis: int) -> bool:
        """True when ``meter``'s reading at ``millis`` must have no flow (call before :meth:`add`)."""
        start, end = self._interval(millis)
        if start != self._start[meter]:
            previous = self._start[meter]
            if previous is not None:  # the previous interval closes
                consecutive = self._last_end[meter] in (None, previous)
                run = self._run[meter] if consecutive else 0
                self._run[meter] = run + 1 if self._flow[meter] > 0 else 0
                self._last_end[meter] = self._end[meter]
            self._start[meter], self._end[meter], self._flow[meter] = start, end, 0.0
            follows = self._last_end[meter] in (None, start)
            self._quiet[meter] = follows and self._run[meter] >= self.limit
        return self._quiet[meter]

    def add(self, meter: int, litres: float) -> None:
        """The flow ``meter`` reported (its final value, after injections)."""
        self._flow[meter] += litres


def run_guards(pipeline: MeterPipeline, measurements: set[str], meters: int) -> list[RunGuard]:
    """A :class:`RunGuard` per continuousFlow rule on one of ``measurements``."""
    return [
        RunGuard(pipeline.spec.time_zone, to_millis(r.every), r.count, meters)
        for r in pipeline.spec.rules
        if r.kind == "continuousFlow" and r.measurement in measurements and r.every and r.count
    ]
