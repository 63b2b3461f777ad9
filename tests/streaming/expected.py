"""What the speed layer must produce, computed independently in plain Python.

From the simulator's record file (every record sent, in order) and ground truth — never from the
job's code: windows by flooring instants, register steps by walking each meter's readings in
event-time order, duplicates by first arrival, and alerts of every rule kind with their
transitions by :class:`AlertModel`, which restates docs/alerts.md (watermark, lateness, clock
intervals and nights in spec.timeZone) in plain Python.
"""

from __future__ import annotations

import heapq
import json
import math
import statistics
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from meterflow.spec import MeterPipeline
from meterflow.spec.durations import to_millis

RESET_RATIO = 0.1  # restated here on purpose: the test does not import the rule it checks

Key = tuple[str, str, str, datetime]  # meter, measurement, series, window start (naive UTC)


@dataclass
class Window:
    readings: int = 0
    total: float = 0.0
    lowest: float = float("inf")
    highest: float = float("-inf")
    consumption: float | None = None
    squares: float = 0.0

    @property
    def stddev(self) -> float:
        """The population standard deviation (as the job's Welford sums give it)."""
        mean = self.total / self.readings
        return math.sqrt(max(0.0, self.squares / self.readings - mean * mean))


@dataclass
class Expected:
    """Every figure the speed layer should produce for one simulation."""

    records: int = 0
    dlq_by_reason: dict[str, int] = field(default_factory=dict)
    unique: int = 0
    duplicates: int = 0
    late: list[dict[str, Any]] = field(default_factory=list)
    windows: dict[Key, Window] = field(default_factory=dict)
    alerts: set[tuple[str, str, str, datetime]] = field(default_factory=set)
    """Every alert's key (meter, rule, series, opened at), of every kind."""
    episodes: dict[tuple[str, str, str, datetime], Alert] = field(default_factory=dict)
    """Every alert with its transitions, by key."""
    model_late: list[tuple[str, str, str, int]] = field(default_factory=list)
    """The readings the alert model found late (its own watermark), to check it against the truth's."""
    outliers: set[tuple[str, str, str, datetime]] = field(default_factory=set)
    """The readings outlier rules flag: (meter, rule, series, event time)."""


def instant(text: str) -> datetime:
    """ISO 8601 with offset → naive UTC (how ClickHouse returns DateTime64 'UTC')."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).replace(tzinfo=None)


def compute(pipeline: MeterPipeline, record_file: Path, truth: dict[str, Any]) -> Expected:
    out = Expected()
    malformed = {m["payload"]: m["reason"] for m in truth["malformed"]}
    seen: set[tuple[str, str, str, datetime]] = set()
    unique: list[dict[str, Any]] = []
    late_payloads = set()
    lines = record_file.read_text().splitlines()
    for line in lines:
        record = json.loads(line)
        out.records += 1
        if record["kind"] == "malformed":
            reason = malformed[record["value"]]
            out.dlq_by_reason[reason] = out.dlq_by_reason.get(reason, 0) + 1
            continue
        reading = json.loads(record["value"])
        reading["at"] = instant(reading["timestamp"])
        identity = (reading["meter_id"], reading["measurement_type"], reading["series"], reading["at"])
        if identity in seen:
            out.duplicates += 1
            continue
        seen.add(identity)
        unique.append(reading)
        if record["kind"] == "late":
            late_payloads.add(record["value"])
            out.late.append(reading)
    out.unique = len(unique)
    late_ids = {id(r) for r in out.late}
    on_time = [r for r in unique if id(r) not in late_ids]
    out.windows = _windows(pipeline, on_time)
    model = alert_model(pipeline, unique)
    out.episodes = {a.key: a for a in model.alerts}
    out.alerts = set(out.episodes)
    out.model_late = model.late
    out.outliers = {(m, rule, series, _utc(at)) for m, rule, series, at in model.outliers}
    return out


def _window_starts(pipeline: MeterPipeline, at: datetime) -> list[datetime]:
    w = pipeline.spec.windows
    epoch_ms = int(at.replace(tzinfo=UTC).timestamp() * 1000)
    last = epoch_ms - epoch_ms % w.slide_ms
    starts = []
    start = last
    while start > epoch_ms - w.size_ms:
        starts.append(datetime.fromtimestamp(start / 1000, UTC).replace(tzinfo=None))
        start -= w.slide_ms
    return starts


def _windows(pipeline: MeterPipeline, readings: list[dict[str, Any]]) -> dict[Key, Window]:
    kinds = {(m.name, m.series): m.kind for m in pipeline.spec.measurements}
    # a power reading is the mean rate over its interval: its energy is the value times those hours
    hours = {(m.name, m.series): to_millis(m.interval) / 3_600_000 for m in pipeline.spec.measurements}
    step: dict[int, float] = {}
    by_series: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in readings:
        by_series[(r["meter_id"], r["measurement_type"], r["series"])].append(r)
    for (_, name, series), rows in by_series.items():
        if kinds[(name, series)] != "register":
            continue
        previous = None
        for r in sorted(rows, key=lambda x: x["at"]):
            value = float(r["value"])
            if previous is None:
                step[id(r)] = 0.0
            elif value < previous and value <= previous * RESET_RATIO:
                step[id(r)] = value
            else:
                step[id(r)] = value - previous
            previous = value
    windows: dict[Key, Window] = {}
    for r in readings:
        kind = kinds[(r["measurement_type"], r["series"])]
        value = float(r["value"])
        for start in _window_starts(pipeline, r["at"]):
            w = windows.setdefault((r["meter_id"], r["measurement_type"], r["series"], start), Window())
            w.readings += 1
            w.total += value
            w.squares += value * value
            w.lowest = min(w.lowest, value)
            w.highest = max(w.highest, value)
            part = {
                "interval": value,
                "power": value * hours[(r["measurement_type"], r["series"])],
                "register": step.get(id(r)),
            }.get(kind)
            if part is not None:
                w.consumption = (w.consumption or 0.0) + part
    return windows


# --- alerts: an independent model of every rule kind and the lifecycle -------------------------
#
# Restated from docs/alerts.md, never imported from the job: every unique reading is seen in arrival
# order; the watermark trails the newest valid event time by the grace and moves after the reading
# that advances it; a reading at or behind the watermark is late (thresholds and noData only);
# time-driven transitions (a silence, a closed interval or night, an escalation) happen in
# event-time order as the watermark passes them, readings the watermark has passed first; nothing
# time-driven happens after the last reading (a drain), but register and stuck readings not yet
# passed are still taken then.

OPENED, UPDATED, ESCALATED, RESOLVED = "OPENED", "UPDATED", "ESCALATED", "RESOLVED"
SEVERITIES = ("INFO", "WARNING", "CRITICAL")
AlertKey = tuple[str, str, str, datetime]  # meter, rule, series ('' for a meter-wide rule), opened at


def _utc(ms: int) -> datetime:
    """Epoch milliseconds → naive UTC (how ClickHouse returns DateTime64 'UTC')."""
    return datetime(1970, 1, 1) + timedelta(milliseconds=ms)


def _millis(text: str) -> int:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


@dataclass
class Alert:
    """One alert the model raises: its transitions (name, event time, value) and its state after them."""

    meter: str
    rule: str
    kind: str
    series: str
    opened: int
    first: float
    severity: int
    transitions: list[tuple[str, int, float]] = field(default_factory=list)
    breaches: int = 1
    last: float = 0.0
    peak: float = 0.0
    last_seen: int = 0
    resolved: int | None = None
    escalated: bool = False

    @property
    def key(self) -> AlertKey:
        return (self.meter, self.rule, self.series, _utc(self.opened))

    @property
    def state(self) -> str:
        return "OPEN" if self.resolved is None else "RESOLVED"


@dataclass
class _Slot:
    """What one rule tracks for one meter and series (the model's own bookkeeping)."""

    rule: Any
    meter: str
    series: str
    alert: Alert | None = None  # the open one
    latest: int | None = None  # noData
    armed: bool = False
    value: float | None = None  # stuck
    since: int = 0
    window: deque[float] = field(default_factory=deque)  # outlier: the last `count` values
    periods: dict[int, list[Any]] = field(default_factory=dict)  # start -> [end, flow, steps, all above]
    run: int = 0
    last_end: int | None = None


class AlertModel:
    """Every alert ``pipeline``'s rules raise on a record file, in plain Python (see above)."""

    def __init__(self, pipeline: MeterPipeline) -> None:
        spec = pipeline.spec
        self.zone = ZoneInfo(spec.time_zone)
        self.grace = spec.windows.grace_ms
        self.kinds = {(m.name, m.series): m.kind for m in spec.measurements}
        self.rules = list(spec.rules)
        self.watermark = -(2**63)
        self.alerts: list[Alert] = []
        self.late: list[tuple[str, str, str, int]] = []
        self._slots: dict[tuple[str, str, str], _Slot] = {}
        self._slots_of: dict[str, list[_Slot]] = defaultdict(list)
        self._pending: dict[tuple[str, str, str], list[tuple[int, float]]] = defaultdict(list)
        self._pending_of: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
        self._stuck_watched = {r.measurement for r in self.rules if r.kind in ("stuck", "outlier")}
        self.outliers: list[tuple[str, str, str, int]] = []
        """The readings an outlier rule flagged: (meter, rule, series, event time ms)."""
        self._last_register: dict[tuple[str, str, str], float] = {}
        self._wakes: list[tuple[int, str]] = []
        self._meters: set[str] = set()

    # --- inputs ---------------------------------------------------------------------------------

    def reading(self, meter: str, name: str, series: str, at: int, value: float) -> None:
        """One unique reading, in arrival order; then the watermark it moves."""
        self._meters.add(meter)
        late = at <= self.watermark
        if late:
            self.late.append((meter, name, series, at))
        for rule in self.rules:
            watches = rule.measurement == name
            if rule.kind == "threshold" and watches:
                self._threshold(self._slot(rule, meter, series), at, value)
            elif rule.kind == "noData" and (watches or rule.measurement is None):
                self._seen(self._slot(rule, meter, "" if rule.measurement is None else series), at, value)
        if not late:
            if self.kinds[(name, series)] == "interval":
                self._consume(meter, name, series, at, value)
            if self.kinds[(name, series)] == "register" or name in self._stuck_watched:
                self._pending_of[meter].add((meter, name, series))
                pending = self._pending[(meter, name, series)]
                pending.append((at, value))
                pending.sort(key=lambda p: p[0])
                self._wake(at, meter)
        if at - self.grace > self.watermark:
            self.watermark = at - self.grace
            while self._wakes and self._wakes[0][0] <= self.watermark:
                time, woken = heapq.heappop(self._wakes)
                self._run(woken, time)

    def finish(self) -> None:
        """The end of the records: readings the watermark has not passed are still taken in
        event-time order (a drain passes them), but no time-driven transition happens."""
        for key in sorted(self._pending):
            self._take(key, None)

    # --- time -----------------------------------------------------------------------------------

    def _wake(self, time: int, meter: str) -> None:
        heapq.heappush(self._wakes, (time, meter))

    def _run(self, meter: str, upto: int) -> None:
        """Everything of ``meter`` due at or before ``upto``, in event-time order (readings first)."""
        for key in sorted(self._pending_of[meter]):
            self._take(key, upto)
        slots = self._slots_of[meter]
        while True:
            due: list[tuple[int, int, _Slot]] = []
            for i, slot in enumerate(slots):
                time = self._due(slot)
                if time is not None and time <= upto:
                    due.append((time, i, slot))
            if not due:
                return
            time, _, slot = min(due, key=lambda d: (d[0], d[1]))
            self._at(slot, time)

    def _due(self, slot: _Slot) -> int | None:
        """When ``slot``'s next time-driven transition is due."""
        times = []
        if slot.rule.kind == "noData" and slot.armed and slot.latest is not None:
            times.append(slot.latest + to_millis(slot.rule.for_))
        if slot.periods:
            times.append(min(p[0] for p in slot.periods.values()) - 1)
        a = slot.alert
        if a is not None and slot.rule.escalate_after and not a.escalated and a.severity < len(SEVERITIES) - 1:
            times.append(a.opened + to_millis(slot.rule.escalate_after))
        return min(times) if times else None

    def _at(self, slot: _Slot, time: int) -> None:
        rule = slot.rule
        if rule.kind == "noData" and slot.armed and slot.latest is not None:
            due = slot.latest + to_millis(rule.for_)
            if due == time:
                slot.armed = False
                if slot.alert is None:
                    self._open(slot, due, 0.0)
                return
        if slot.periods and min(p[0] for p in slot.periods.values()) - 1 == time:
            self._close_period(slot)
            return
        a = slot.alert
        assert a is not None and a.opened + to_millis(rule.escalate_after) == time
        a.escalated = True
        a.severity += 1
        a.transitions.append((ESCALATED, time, a.last))

    # --- kinds ----------------------------------------------------------------------------------

    def _slot(self, rule: Any, meter: str, series: str) -> _Slot:
        key = (rule.name, meter, series)
        if key not in self._slots:
            self._slots[key] = _Slot(rule, meter, series)
            self._slots_of[meter].append(self._slots[key])
        return self._slots[key]

    def _threshold(self, slot: _Slot, at: int, value: float) -> None:
        rule = slot.rule
        if _COMPARE[rule.condition](value, rule.threshold):
            if slot.alert is None:
                self._open(slot, at, value)
            else:
                self._update(slot, at, value)
        elif slot.alert is not None:
            clear = rule.clear_threshold
            if clear is None or (value <= clear if rule.condition in (">", ">=") else value >= clear):
                self._resolve(slot, at, value)

    def _seen(self, slot: _Slot, at: int, value: float) -> None:
        if slot.alert is not None:
            self._resolve(slot, at, value)
        slot.latest = at if slot.latest is None else max(slot.latest, at)
        if not slot.armed:
            slot.armed = True
        self._wake(slot.latest + to_millis(slot.rule.for_), slot.meter)

    def _take(self, key: tuple[str, str, str], upto: int | None) -> None:
        """Pending register and stuck readings of one series the watermark has passed, in event-time order."""
        meter, name, series = key
        pending = self._pending[key]
        while pending and (upto is None or pending[0][0] <= upto):
            at, value = pending.pop(0)
            if self.kinds[(name, series)] == "register":
                previous = self._last_register.get(key)
                self._last_register[key] = value
                if previous is not None:  # a register's first reading ends no step
                    reset = value < previous and value <= previous * RESET_RATIO
                    step = value if reset else value - previous
                    self._consume(meter, name, series, at, step)
            for rule in self.rules:
                if rule.kind == "stuck" and rule.measurement == name:
                    self._stuck(self._slot(rule, meter, series), at, value)
                elif rule.kind == "outlier" and rule.measurement == name:
                    self._outlier(self._slot(rule, meter, series), at, value)

    def _outlier(self, slot: _Slot, at: int, value: float) -> None:
        """Judged against the previous `count` values before joining them (docs/alerts.md, outlier)."""
        count = slot.rule.count
        if len(slot.window) == count:
            if abs(robust_z(list(slot.window), value)) > slot.rule.threshold:
                self.outliers.append((slot.meter, slot.rule.name, slot.series, at))
                if slot.alert is not None:
                    self._update(slot, at, value)
                else:
                    self._open(slot, at, value)
            elif slot.alert is not None:
                self._resolve(slot, at, value)
        slot.window.append(value)
        if len(slot.window) > count:
            slot.window.popleft()

    def _stuck(self, slot: _Slot, at: int, value: float) -> None:
        if slot.value is None or value != slot.value:
            if slot.alert is not None:
                self._resolve(slot, at, value)
            slot.value, slot.since = value, at
        elif slot.alert is not None:
            self._update(slot, at, value)
        elif at - slot.since >= to_millis(slot.rule.for_):
            self._open(slot, at, value)

    def _consume(self, meter: str, name: str, series: str, at: int, part: float) -> None:
        for rule in self.rules:
            if rule.measurement != name or rule.kind not in ("continuousFlow", "nightFlow"):
                continue
            period = self._interval(rule, at) if rule.kind == "continuousFlow" else self._night(rule, at)
            if period is None:
                continue
            slot = self._slot(rule, meter, series)
            if period[0] not in slot.periods:
                slot.periods[period[0]] = [period[1], 0.0, 0, True]
                self._wake(period[1] - 1, meter)
            p = slot.periods[period[0]]
            p[1] += part
            p[2] += 1
            if rule.kind == "nightFlow" and not part > (rule.threshold or 0.0):
                p[3] = False

    def _close_period(self, slot: _Slot) -> None:
        rule = slot.rule
        night = rule.kind == "nightFlow"
        start = min(slot.periods, key=lambda k: slot.periods[k][0])
        end, flow, steps, above = slot.periods.pop(start)
        flowing = steps >= 2 and above if night else steps > 0 and flow > 0
        consecutive = slot.last_end is None or slot.last_end == start
        if night and not consecutive:
            consecutive = slot.last_end == self._night_ending(rule, self._local_date(end) - timedelta(days=1))[1]
        slot.last_end = end
        if not consecutive:
            slot.run = 0
        if flowing:
            slot.run += 1
            if slot.alert is not None:
                self._update(slot, end, flow)
            elif slot.run >= (rule.nights if night else rule.count):
                self._open(slot, end, flow)
        else:
            slot.run = 0
            if slot.alert is not None:
                self._resolve(slot, end, flow)
        if night and (slot.run > 0 or slot.alert is not None):
            following = self._night_ending(rule, self._local_date(end) + timedelta(days=1))
            if following[0] not in slot.periods:
                slot.periods[following[0]] = [following[1], 0.0, 0, True]
                self._wake(following[1] - 1, slot.meter)

    # --- the lifecycle --------------------------------------------------------------------------

    def _open(self, slot: _Slot, at: int, value: float) -> None:
        rule = slot.rule
        a = Alert(slot.meter, rule.name, rule.kind, slot.series, at, value, SEVERITIES.index(rule.severity))
        a.last, a.peak, a.last_seen = value, value, at
        a.transitions.append((OPENED, at, value))
        slot.alert = a
        self.alerts.append(a)
        if rule.escalate_after:
            self._wake(at + to_millis(rule.escalate_after), slot.meter)

    def _update(self, slot: _Slot, at: int, value: float) -> None:
        a = slot.alert
        assert a is not None
        a.breaches += 1
        a.last = value
        lower_is_worse = slot.rule.kind == "threshold" and slot.rule.condition in ("<", "<=")
        if (value < a.peak) if lower_is_worse else (value > a.peak):
            a.peak = value
        a.last_seen = max(a.last_seen, at)
        a.transitions.append((UPDATED, at, value))

    def _resolve(self, slot: _Slot, at: int, value: float) -> None:
        a = slot.alert
        assert a is not None
        a.resolved = max(at, a.opened)  # a late reading that clears it: never before it opened
        a.transitions.append((RESOLVED, a.resolved, value))
        slot.alert = None

    # --- clocks in spec.timeZone ----------------------------------------------------------------

    def _local_date(self, at: int) -> date:
        return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=at)).astimezone(self.zone).date()

    def _instant(self, day: date, minute: int) -> int:
        local = datetime.combine(day, dtime(minute // 60, minute % 60), tzinfo=self.zone)
        return (local - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)

    def _interval(self, rule: Any, at: int) -> tuple[int, int]:
        """The clock interval of ``every`` holding ``at``: every from local midnight, the day's last
        one ending at the next midnight."""
        day = self._local_date(at)
        midnight, following = self._instant(day, 0), self._instant(day + timedelta(days=1), 0)
        every = to_millis(rule.every)
        start = midnight + (at - midnight) // every * every
        return start, min(start + every, following)

    def _minutes(self, text: str) -> int:
        hours, minutes = text.split(":")
        return int(hours) * 60 + int(minutes)

    def _night_ending(self, rule: Any, end_day: date) -> tuple[int, int]:
        start, end = self._minutes(rule.from_), self._minutes(rule.to)
        start_day = end_day if start < end else end_day - timedelta(days=1)
        return self._instant(start_day, start), self._instant(end_day, end)

    def _night(self, rule: Any, at: int) -> tuple[int, int] | None:
        """The night whose hours [from, to) hold ``at``, or None."""
        local = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=at)).astimezone(self.zone)
        minute, start, end = local.hour * 60 + local.minute, self._minutes(rule.from_), self._minutes(rule.to)
        if start < end:
            return self._night_ending(rule, local.date()) if start <= minute < end else None
        if minute >= start:
            return self._night_ending(rule, local.date() + timedelta(days=1))
        if minute < end:
            return self._night_ending(rule, local.date())
        return None


_COMPARE = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def robust_z(window: list[float], x: float) -> float:
    """0.6745 (x - median) / MAD; (x - median) / (1.253314 x mean absolute deviation) when the MAD is 0;
    0 for a window without spread."""
    median = statistics.median(window)
    deviations = [abs(v - median) for v in window]
    mad = statistics.median(deviations)
    if mad > 0:
        return 0.6745 * (x - median) / mad
    mean = sum(deviations) / len(deviations)
    return (x - median) / (1.253314 * mean) if mean > 0 else 0.0


def alert_model(pipeline: MeterPipeline, readings: list[dict[str, Any]]) -> AlertModel:
    """Run the model over the unique readings in arrival order (each with its ``timestamp`` text)."""
    model = AlertModel(pipeline)
    for r in readings:
        model.reading(r["meter_id"], r["measurement_type"], r["series"], _millis(r["timestamp"]), float(r["value"]))
    model.finish()
    return model


ONE_PARTITION = {"partitions": 1}
"""The readings topic of a pipeline whose late readings a test predicts exactly.

Late means behind the watermark when read, and the watermark is the slowest partition's: with
several partitions, which injected reading is late depends on how far the source has read each
partition (Flink's semantics, not a fault). One partition makes the reading order the record file's.
"""
