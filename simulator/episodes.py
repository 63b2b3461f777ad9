"""Episodes for the stateful alert rules (``--inject``): a leak, a silent meter, a night-flow leak and
a stuck register, each in the ground truth with what it is and when.

:class:`Episodes` plans one episode per stateful rule kind of the manifest (for its first rule of
that kind; ``--inject-rate KIND=0`` turns one off), each on a published meter of its own, drawn
from a generator of its own so threshold triggers and the other injections stay where they were.
An episode is placed at random where the alert it makes opens *and* resolves inside the run with
the watermark past both; when the run is too short (or the manifest gives the kind nothing to
work on) it is listed under ``skipped_episodes`` with the reason. Each is made so that its alert
follows from its truth entry alone (``start``, ``end`` and the margins it lists):

* ``leak`` (continuousFlow on a water meter's Pulse1 or Pulse1_Total): in ``ceil(1.25 x count)``
  consecutive clock intervals of ``every`` (spec.timeZone) every reading of the meter's flow gets
  8 L/h more (30 h for 24 x 1h), and the interval before (``quiet_start``..``start``) and the one
  after (``end``..``quiet_end``) have no flow at all. The alert opens at the end of the count-th
  interval (start + count x every), updates at the end of each further one, resolves at
  ``quiet_end``.
* ``silent`` (noData): the meter sends nothing for 2 x ``for`` (52 h for 26 h). ``start`` is its
  last reading before (of the rule's measurement, or of any), ``end`` its first one after: the
  alert opens at start + for and resolves at end. The meter's register keeps counting meanwhile.
* ``night_leak`` (nightFlow on a water meter's Pulse1 or Pulse1_Total): on ``nights`` consecutive
  nights every reading between ``from`` and ``to`` gets threshold + 8 L/h more flow; the first
  reading of the night before (``quiet_before``) and of the night after (``quiet_after``) has no
  flow, and with a continuousFlow rule on the same flow the clock interval before each leaking
  night (``dry``) has none either. The alert opens at ``end`` (the last leaking night's end) and
  resolves at the end of the night after.
* ``stuck`` (stuck on a water meter's Pulse1_Total): the register reports the value it reached at
  ``start`` (a reading with flow) until ``end``, the first reading at least 2 x ``for`` later, which
  reports the true total again (with flow, so it differs). The alert opens at the first reading at
  least ``for`` after start, updates at every frozen reading after, resolves at end.

Episode readings have the record kind ``episode``; while an episode governs a meter's flow, a
pending threshold trigger waits for another reading, and no register reset lands in an episode.
Used by :class:`simulator.injections.Injector`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from meterflow.reading import format_timestamp
from meterflow.spec.durations import to_millis
from meterflow.spec.model import MeasurementKind, MeterPipeline, RuleKind, RuleSpec
from simulator.guard import Guard
from simulator.profiles.base import Profile
from simulator.schedule import Schedule

EPISODE_KINDS = {
    RuleKind.continuousFlow.value: "leak",
    RuleKind.noData.value: "silent",
    RuleKind.nightFlow.value: "night_leak",
    RuleKind.stuck.value: "stuck",
}
"""The episode each stateful rule kind gets."""

LEAK_LITRES_PER_HOUR = 8.0
"""What a leak adds to the flow (a running toilet cistern leaks about this much)."""

LEAK_SHARE = 1.25
"""A leak lasts this many times the rule's count of intervals (30 h for 24 x 1h)."""

SILENCE_FACTOR = 2
"""A silent meter is silent for this many times the noData rule's ``for``."""

STUCK_FACTOR = 2
"""A stuck register is stuck for this many times the stuck rule's ``for``."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _stamp(millis: int) -> str:
    return format_timestamp(_EPOCH + timedelta(milliseconds=millis))


def _ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


class _Episode:
    """One planned episode; the hooks return None (or False) where it has no say."""

    kind = ""

    def __init__(self, rule: RuleSpec, meter: int, entry: dict[str, Any], window: tuple[int, int]) -> None:
        self.rule = rule
        self.meter = meter
        self.entry = entry
        self.window = window
        """Event times the episode governs (no register reset lands inside)."""

    def flow(self, millis: int, litres: float) -> float | None:
        return None

    def hold(self, measurement: int, millis: int, value: float) -> float | None:
        return None

    def silenced(self, measurements: tuple[int, ...], millis: int) -> bool:
        return False


class _Leak(_Episode):
    kind = "leak"

    def __init__(self, rule: RuleSpec, meter: int, entry: dict[str, Any], bounds: list[int], guard: Guard) -> None:
        super().__init__(rule, meter, entry, (bounds[0], bounds[-1]))
        self.bounds = bounds  # quiet_start, start, ..., end, quiet_end
        self.guard = guard
        self.amount = entry["litres_per_reading"]

    def flow(self, millis: int, litres: float) -> float | None:
        first, start, end, last = self.bounds[0], self.bounds[1], self.bounds[-2], self.bounds[-1]
        if first <= millis < start or end <= millis < last:
            return 0.0
        if start <= millis < end:
            return self.guard.safe(litres + self.amount)
        return None


class _NightLeak(_Episode):
    kind = "night_leak"

    def __init__(
        self,
        rule: RuleSpec,
        meter: int,
        entry: dict[str, Any],
        nights: list[tuple[int, int]],
        dry: list[tuple[int, int]],
        guard: Guard,
    ) -> None:
        super().__init__(rule, meter, entry, (min([nights[0][0], *(d[0] for d in dry)]), nights[-1][1]))
        self.before, self.leaking, self.after = nights[0], nights[1:-1], nights[-1]
        self.dry = dry
        self.guard = guard
        self.extra = float(rule.threshold or 0.0) + entry["litres_per_reading"]
        self.quieted: set[int] = set()

    def flow(self, millis: int, litres: float) -> float | None:
        for start, end in self.leaking:
            if start <= millis < end:
                return self.guard.safe(litres + self.extra)
        for start, end in self.dry:
            if start <= millis < end:
                return 0.0
        for start, end in (self.before, self.after):
            if start <= millis < end and start not in self.quieted:
                self.quieted.add(start)
                return 0.0
        return None


class _Stuck(_Episode):
    kind = "stuck"

    def __init__(
        self, rule: RuleSpec, meter: int, entry: dict[str, Any], measurement: int, start: int, end: int, guard: Guard
    ) -> None:
        super().__init__(rule, meter, entry, (start, end))
        self.measurement = measurement
        self.start, self.end = start, end
        self.guard = guard
        self.frozen: float | None = None

    def flow(self, millis: int, litres: float) -> float | None:
        if millis in (self.start, self.end):
            return self.guard.safe(max(litres, self.guard.step))
        return None

    def hold(self, measurement: int, millis: int, value: float) -> float | None:
        if measurement != self.measurement or not self.start <= millis <= self.end:
            return None
        if millis == self.start:
            self.frozen = value
        if millis == self.end or self.frozen is None:
            return value
        return self.frozen


class _Silent(_Episode):
    kind = "silent"

    def __init__(
        self, rule: RuleSpec, meter: int, entry: dict[str, Any], scope: frozenset[int] | None, start: int, end: int
    ) -> None:
        super().__init__(rule, meter, entry, (start, end))
        self.scope = scope
        self.start, self.end = start, end
        self.last: int | None = None
        self.resumed = False

    def silenced(self, measurements: tuple[int, ...], millis: int) -> bool:
        in_scope = self.scope is None or any(m in self.scope for m in measurements)
        if millis < self.start:
            if in_scope:
                self.last = millis
            return False
        if millis < self.end:
            return True
        if in_scope and not self.resumed:
            self.resumed = True
            self.entry["start"] = None if self.last is None else _stamp(self.last)
            self.entry["end"] = _stamp(millis)
        return False


@dataclass
class Episodes:
    """The episodes of one run (see the module docstring)."""

    pipeline: MeterPipeline
    profile: Profile
    schedule: Schedule
    start_ms: int
    end_ms: int | None
    rng: random.Random
    enabled: set[str]
    episodes: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    _by_meter: dict[int, list[_Episode]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.zone = ZoneInfo(self.pipeline.spec.time_zone)
        self._used: set[int] = set()
        planned: set[str] = set()
        for rule in self.pipeline.spec.rules:
            kind = EPISODE_KINDS.get(str(rule.kind))
            if kind is None or kind in planned or kind not in self.enabled:
                continue
            planned.add(kind)
            reason = self._plan(kind, rule)
            if reason is not None:
                self.skipped.append({"kind": kind, "rule": rule.name, "reason": reason})

    # --- what the engine and the profiles ask ---------------------------------------------------

    @property
    def meters(self) -> set[int]:
        """Meters that have an episode (late readings avoid them)."""
        return set(self._by_meter)

    def silenced(self, meter: int, measurements: tuple[int, ...], millis: int) -> bool:
        return any(e.silenced(measurements, millis) for e in self._by_meter.get(meter, ()))

    def flow(self, meter: int, millis: int, litres: float) -> float | None:
        for e in self._by_meter.get(meter, ()):
            out = e.flow(millis, litres)
            if out is not None:
                return out
        return None

    def hold(self, meter: int, measurement: int, millis: int, value: float) -> float | None:
        for e in self._by_meter.get(meter, ()):
            out = e.hold(measurement, millis, value)
            if out is not None:
                return out
        return None

    def governs(self, meter: int, millis: int) -> bool:
        """True inside one of the meter's episodes (no register reset lands there)."""
        return any(e.window[0] <= millis <= e.window[1] for e in self._by_meter.get(meter, ()))

    # --- planning -------------------------------------------------------------------------------

    def _plan(self, kind: str, rule: RuleSpec) -> str | None:
        """Plan one episode for ``rule``; the reason when it cannot be."""
        if self.end_ms is None:
            return "a run of --count readings has no known end; give --duration"
        choices = [i for i in range(len(self.profile.meters)) if i not in self._used]
        if not choices:
            return "every meter already has an episode; give more --meters"
        meter = self.rng.choice(choices)
        if kind == "silent":
            reason = self._silent(rule, meter)
        elif self.profile.kind != "water":
            return f"the {self.profile.kind} simulator makes no {kind} (water meters' Pulse1/Pulse1_Total only)"
        elif kind == "leak":
            reason = self._leak(rule, meter)
        elif kind == "night_leak":
            reason = self._night_leak(rule, meter)
        else:
            reason = self._stuck(rule, meter)
        if reason is None:
            self._used.add(meter)
        return reason

    def _add(self, episode: _Episode) -> None:
        self._by_meter.setdefault(episode.meter, []).append(episode)
        self.episodes.append(episode.entry)

    def _entry(self, kind: str, rule: RuleSpec, meter: int) -> dict[str, Any]:
        measurement = rule.measurement
        series = None
        if measurement is not None:
            series = self.pipeline.spec.measurement(measurement).series
        return {
            "kind": kind,
            "rule": rule.name,
            "meter_id": self.profile.meters[meter].meter_id,
            "measurement": measurement,
            "series": series,
        }

    @property
    def _horizon(self) -> int:
        """The latest instant an alert may resolve at and still be passed by the final watermark."""
        assert self.end_ms is not None
        shortest = min(to_millis(m.interval) for m in self.pipeline.spec.measurements)
        return self.end_ms - self.pipeline.spec.windows.grace_ms - 2 * shortest

    def _flow_guard(self, rule: RuleSpec) -> tuple[Guard, int] | str:
        """The guard of the flow a consumption rule watches, and the flow's interval; or why not."""
        flow = self.profile.index("Pulse1")
        total = self.profile.index("Pulse1_Total")
        watched = self.profile.index(rule.measurement or "")
        if watched is None or watched not in (flow, total):
            return f"the water simulator makes a {rule.kind} episode on Pulse1 or Pulse1_Total, not {rule.measurement}"
        guard = self.profile.guards[flow if flow is not None else watched]
        if guard.safe(0.0) != 0.0:
            return f"the rules on {guard.measurement.name} forbid a reading of 0, which the episode needs"
        return guard, to_millis(self.profile.measurements[watched].interval)

    def _amount(self, guard: Guard, interval_ms: int) -> float:
        per_reading = round(LEAK_LITRES_PER_HOUR * interval_ms / 3_600_000, guard.decimals)
        return max(guard.step, per_reading)

    def _silent(self, rule: RuleSpec, meter: int) -> str | None:
        if len(self.profile.meters) < 2:
            return "a silence shows only while other meters report (the watermark); give --meters 2 or more"
        assert rule.for_ is not None and self.end_ms is not None
        silence = SILENCE_FACTOR * to_millis(rule.for_)
        scope: frozenset[int] | None = None
        measurements = self.pipeline.spec.measurements
        if rule.measurement is not None:
            scope = frozenset(i for i, m in enumerate(measurements) if m.name == rule.measurement)
        watched = scope if scope is not None else range(len(measurements))
        every = min(to_millis(measurements[i].interval) for i in watched)  # a reading before, one after
        low, high = self.start_ms + every, self.end_ms - silence - every - self.pipeline.spec.windows.grace_ms
        if high <= low:
            return f"a silence of {SILENCE_FACTOR} x {rule.for_} with a reading before and after needs a longer run"
        start = self.rng.randrange(low, high)
        entry = self._entry("silent", rule, meter) | {"start": None, "end": None, "silence_ms": silence}
        self._add(_Silent(rule, meter, entry, scope, start, start + silence))
        return None

    def _interval_bounds(self, every_ms: int) -> list[int]:
        """Clock-interval boundaries in spec.timeZone over the run: every ``every_ms`` from each local
        midnight, the last interval of a day ending at the next midnight (as the job counts them)."""
        assert self.end_ms is not None
        out: list[int] = []
        day = (_EPOCH + timedelta(milliseconds=self.start_ms)).astimezone(self.zone).date() - timedelta(days=1)
        while True:
            midnight = _ms(datetime.combine(day, time(), tzinfo=self.zone))
            following = _ms(datetime.combine(day + timedelta(days=1), time(), tzinfo=self.zone))
            if midnight > self.end_ms:
                return out
            out.extend(range(midnight, following, every_ms))
            day += timedelta(days=1)

    def _leak(self, rule: RuleSpec, meter: int) -> str | None:
        found = self._flow_guard(rule)
        if isinstance(found, str):
            return found
        guard, interval = found
        assert rule.every is not None and rule.count is not None
        every = to_millis(rule.every)
        if interval > every:
            minutes = interval // 60_000
            return f"{rule.measurement} reports every {minutes} min: some intervals of {rule.every} have no reading"
        n = math.ceil(LEAK_SHARE * rule.count)
        bounds = self._interval_bounds(every)
        fits = [
            i for i in range(1, len(bounds) - n - 1)
            if bounds[i - 1] >= self.start_ms + interval and bounds[i + n + 1] <= self._horizon
        ]  # fmt: skip
        if not fits:
            return f"a leak of {n} x {rule.every} with a quiet interval either side needs a longer run"
        i = self.rng.choice(fits)
        chosen = bounds[i - 1 : i + n + 2]
        entry = self._entry("leak", rule, meter) | {
            "start": _stamp(chosen[1]),
            "end": _stamp(chosen[-2]),
            "quiet_start": _stamp(chosen[0]),
            "quiet_end": _stamp(chosen[-1]),
            "intervals": n,
            "litres_per_reading": self._amount(guard, interval),
        }
        self._add(_Leak(rule, meter, entry, chosen, guard))
        return None

    def _night(self, rule: RuleSpec, end_date: date) -> tuple[int, int]:
        """The night ending on local ``end_date``: [from, to) as instants (from is the day before
        when the night spans midnight)."""
        assert rule.from_ is not None and rule.to is not None
        start_minute, end_minute = rule.clock_minutes(rule.from_), rule.clock_minutes(rule.to)
        start_date = end_date if start_minute < end_minute else end_date - timedelta(days=1)
        start = datetime.combine(start_date, time(start_minute // 60, start_minute % 60), tzinfo=self.zone)
        end = datetime.combine(end_date, time(end_minute // 60, end_minute % 60), tzinfo=self.zone)
        return _ms(start), _ms(end)

    def _night_leak(self, rule: RuleSpec, meter: int) -> str | None:
        found = self._flow_guard(rule)
        if isinstance(found, str):
            return found
        guard, interval = found
        assert rule.nights is not None and rule.threshold is not None
        if rule.threshold < 0:
            return f"a night without flow needs a step at or below threshold {rule.threshold:g}; use a threshold >= 0"
        amount = self._amount(guard, interval)
        if guard.safe(rule.threshold + amount) <= rule.threshold:
            return f"no valid {guard.measurement.name} value lies above threshold {rule.threshold:g}"
        first, last = self._night(rule, date(2000, 1, 1))
        if last - first < 2 * interval:
            length, minutes = (last - first) // 60_000, interval // 60_000
            return f"a night of {length} min holds fewer than two readings every {minutes} min"
        assert self.end_ms is not None
        day = (_EPOCH + timedelta(milliseconds=self.start_ms)).astimezone(self.zone).date()
        nights = []
        while True:
            night = self._night(rule, day)
            if night[1] > self.end_ms:
                break
            nights.append(night)
            day += timedelta(days=1)
        count = rule.nights + 2  # the night before, the leaking nights, the night after
        fits = [
            j for j in range(len(nights) - count + 1)
            if nights[j][0] >= self.start_ms + interval and nights[j + count - 1][1] <= self._horizon
        ]  # fmt: skip
        if not fits:
            return f"a night leak over {rule.nights} nights with a quiet night either side needs a longer run"
        chosen = nights[(j := self.rng.choice(fits)) : j + count]
        # a continuousFlow rule on the same flow: the clock interval before each leaking night has no
        # flow, so the nights never complete a continuous run (only the leak episode does)
        dry = []
        for other in self.pipeline.spec.rules:
            if other.kind == RuleKind.continuousFlow.value and other.measurement in ("Pulse1", "Pulse1_Total"):
                assert other.every is not None
                bounds = self._interval_bounds(to_millis(other.every))
                for start, _ in chosen[1:-1]:
                    i = max(k for k in range(len(bounds) - 1) if bounds[k + 1] <= start)
                    dry.append((bounds[i], bounds[i + 1]))
        entry = self._entry("night_leak", rule, meter) | {
            "start": _stamp(chosen[1][0]),
            "end": _stamp(chosen[-2][1]),
            "nights": rule.nights,
            "quiet_before": [_stamp(chosen[0][0]), _stamp(chosen[0][1])],
            "quiet_after": [_stamp(chosen[-1][0]), _stamp(chosen[-1][1])],
            "litres_per_reading": amount,
            "dry": [[_stamp(a), _stamp(b)] for a, b in dry],
        }
        self._add(_NightLeak(rule, meter, entry, chosen, dry, guard))
        return None

    def _stuck(self, rule: RuleSpec, meter: int) -> str | None:
        m = self.profile.index(rule.measurement or "")
        flow = self.profile.index("Pulse1")
        if m is None or self.profile.measurements[m].kind != MeasurementKind.register.value:
            return f"the water simulator makes a stuck register (Pulse1_Total), not {rule.measurement}"
        assert rule.for_ is not None
        guard = self.profile.guards[flow if flow is not None else m]
        first, interval = self.schedule.grid(meter, m)
        readings = math.ceil(STUCK_FACTOR * to_millis(rule.for_) / interval)
        low = max(0, math.ceil((self.start_ms + 2 * interval - first) / interval))
        high = (self._horizon - first) // interval - readings
        if high < low:
            return f"a register stuck for {STUCK_FACTOR} x {rule.for_} needs a longer run"
        start = first + self.rng.randint(low, high) * interval
        end = start + readings * interval
        entry = self._entry("stuck", rule, meter) | {"start": _stamp(start), "end": _stamp(end)}
        self._add(_Stuck(rule, meter, entry, m, start, end, guard))
        return None
