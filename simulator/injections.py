"""Injected records: rule triggers, malformed records, duplicates, late readings, resets, unknown meters,
anomalies.

:func:`parse_rates` reads ``--inject-rate``; :class:`Injector` plans how many of each kind a run
gets (``rate`` per 1,000 normal readings, per rule for triggers, at least one of each, at least
one of each malformed variant's reason) and where: at random reporting slots drawn up front from
the seeded generator, so the same seed gives the same injections. It is the engine's
:class:`~simulator.profiles.base.Shaper`: a planned trigger replaces the next normal value of its
measurement (so a register still adds up what was sent), a planned reset zeroes the next
register reading, the stateful rules' episodes (:mod:`simulator.episodes`: a leak, a silent
meter, a night leak, a stuck register) set a water meter's flow, hold its register or keep a
meter's slots from being sent, and anomaly episodes (:mod:`simulator.anomalies`) replace a few
consecutive readings of a sensor by values far outside normal. Everything it emits is listed in
the :class:`~simulator.truth.Truth`.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from meterflow.spec.model import MeasurementKind, MeasurementSpec, MeterPipeline, RuleSpec
from simulator.anomalies import DEFAULT_ANOMALY_RATE, Anomalies
from simulator.encode import Encoder, pick_offset
from simulator.episodes import EPISODE_KINDS, Episodes
from simulator.errors import SimulatorError
from simulator.guard import trigger_value
from simulator.malformed import Base, Malformed, ReadingMalformed
from simulator.profiles.base import ANOMALY, EPISODE, NORMAL, TRIGGER, Profile
from simulator.record import Record
from simulator.schedule import Schedule
from simulator.truth import Truth

EPISODE_NAMES = tuple(EPISODE_KINDS.values())
CATEGORIES = ("trigger", "malformed", "duplicate", "late", "reset", "unknown_meter", *EPISODE_NAMES, "anomaly")
DEFAULT_RATE = 0.5
"""Injected records of each category per 1,000 normal readings (triggers: per rule); an episode
(leak, silent, night_leak, stuck) is one per run when its rate is above 0 (simulator/episodes.py);
anomalies have a default of their own."""

DEFAULT_RATES = dict.fromkeys(CATEGORIES, DEFAULT_RATE) | {"anomaly": DEFAULT_ANOMALY_RATE}
"""``--inject-rate`` when not given: 0.5 per 1,000 each, anomalous readings 15 per 1,000 (simulator/anomalies.py)."""

UNKNOWN_METERS = 3
"""How many meters without metadata send readings."""

DUPLICATE_DELAY = (1, 200)
"""A duplicate goes out this many records after its original (inclusive range)."""

PLAN_SHARE = 0.9
"""Injection slots are drawn from the first 90% of the run, so pending triggers land."""


def parse_rates(items: Sequence[str]) -> dict[str, float]:
    """``["0.5", "late=2,trigger=1"]`` → a rate per category (a bare number sets all of them)."""
    rates = dict(DEFAULT_RATES)
    for item in items:
        for part in filter(None, (p.strip() for p in item.split(","))):
            name, _, text = part.rpartition("=")
            if name and name not in CATEGORIES:
                raise SimulatorError(f"--inject-rate {part!r}: {name!r} is no injection; use one of {CATEGORIES}")
            try:
                rate = float(text)
            except ValueError:
                rate = math.nan
            if not math.isfinite(rate) or rate < 0:
                raise SimulatorError(f"--inject-rate {part!r}: give a number >= 0 (per 1000 normal readings)")
            rates |= {name: rate} if name else dict.fromkeys(CATEGORIES, rate)
    return rates


class MalformedMaker(Protocol):
    """Makes the ``index``-th malformed record from a valid one; ``reasons`` distinct reasons in all."""

    reasons: int

    def __call__(self, index: int, base: Base) -> Malformed: ...


@dataclass(frozen=True)
class Slot:
    """The normal reading just sent: what malformed, duplicate and unknown-meter records copy."""

    meter: int
    measurement: int
    millis: int
    offset: int
    value: float
    payload: bytes


class Injector:
    """Plans and emits the injected records of one run (see the module docstring)."""

    def __init__(
        self,
        pipeline: MeterPipeline,
        *,
        profile: Profile,
        schedule: Schedule,
        encoder: Encoder,
        truth: Truth,
        rates: dict[str, float],
        expected_slots: int,
        rng: random.Random,
        malformed: MalformedMaker | None = None,
        span: tuple[int, int | None] | None = None,
        episodes_rng: random.Random | None = None,
        anomalies_rng: random.Random | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.profile = profile
        self.schedule = schedule
        self.encoder = encoder
        self.truth = truth
        self.rng = rng
        self.malformed: MalformedMaker = malformed or ReadingMalformed()
        self.measurements: list[MeasurementSpec] = profile.measurements
        self._pending: dict[int, deque[tuple[RuleSpec, float]]] = {}
        self._resets = 0
        self._duplicates: list[tuple[int, int, bytes, bytes]] = []
        self._used: set[tuple[str, int, int]] = set()
        self._malformed = 0
        self._stamp = ""
        self.unknown_ids = profile.unknown_ids(UNKNOWN_METERS)
        truth.unknown_meter_ids = list(self.unknown_ids)
        self._unknown_registers = {i: float(rng.randint(1_000, 100_000)) for i in self.unknown_ids}
        self._unknown_turn = 0
        self._millis = 0
        self._plan(rates, expected_slots)
        start_ms, end_ms = span or (0, None)
        self.episodes = Episodes(
            pipeline,
            profile,
            schedule,
            start_ms,
            end_ms,
            episodes_rng or random.Random(0),
            {name for name in EPISODE_NAMES if rates.get(name, DEFAULT_RATE) > 0},
        )
        truth.episodes = self.episodes.episodes
        truth.skipped_episodes = self.episodes.skipped
        wanted = self._count(rates.get("anomaly", DEFAULT_ANOMALY_RATE), expected_slots)
        self.anomalies = Anomalies(
            profile,
            schedule,
            (start_ms, end_ms),
            anomalies_rng or random.Random(0),
            wanted if profile.anomaly_ranges else 0,
            expected_slots,
        )

    # --- planning ------------------------------------------------------------------------------

    def _count(self, rate: float, expected: int, minimum: int = 1) -> int:
        return max(minimum, round(rate * expected / 1000)) if rate > 0 else 0

    def _plan(self, rates: dict[str, float], expected: int) -> None:
        span = max(1, int(expected * PLAN_SHARE))
        plan: list[tuple[int, int, str, int]] = []

        def place(category: str, n: int, arg: int = -1) -> None:
            plan.extend((self.rng.randrange(span), len(plan), category, arg) for _ in range(n))

        for i, rule in enumerate(self.pipeline.spec.rules):
            if rule.kind != "threshold" or rule.measurement is None:
                continue  # stateful rules have injections of their own
            m = self.profile.index(rule.measurement)
            if m is None or trigger_value(self.profile.guards[m], rule) is None:
                self.truth.untriggerable_rules.append(rule.name)
                continue
            place("trigger", self._count(rates["trigger"], expected), i)
        place("malformed", self._count(rates["malformed"], expected, self.malformed.reasons))
        place("duplicate", self._count(rates["duplicate"], expected))
        place("unknown_meter", self._count(rates["unknown_meter"], expected))
        if self.profile.supports_resets:
            place("reset", self._count(rates["reset"], expected))
        self._late = self._count(rates["late"], expected) if self._late_measurements() else 0
        plan.sort()
        self._plan_items = plan
        self._next = 0

    def _late_measurements(self) -> list[int]:
        """Gauges if any, else interval measurements; never registers (a past register value would lie)."""
        kinds = [m.kind for m in self.measurements]
        gauges = [i for i, k in enumerate(kinds) if k == MeasurementKind.gauge.value]
        return gauges or [i for i, k in enumerate(kinds) if k == MeasurementKind.interval.value]

    # --- the Shaper protocol -------------------------------------------------------------------

    def at(self, stamp: str, millis: int) -> None:
        """The timestamp (formatted, and in epoch milliseconds) of the slot the profile is about to produce."""
        self._stamp = stamp
        self._millis = millis

    def silenced(self, meter: int, measurements: tuple[int, ...], millis: int) -> bool:
        """True when a silent meter's episode keeps this slot from being sent."""
        return self.episodes.silenced(meter, measurements, millis)

    def flow(self, meter: int, litres: float) -> tuple[float, str]:
        out = self.episodes.flow(meter, self._millis, litres)
        return (litres, NORMAL) if out is None else (out, EPISODE)

    def hold(self, meter: int, measurement: int, value: float) -> tuple[float, str]:
        out = self.episodes.hold(meter, measurement, self._millis, value)
        return (value, NORMAL) if out is None else (out, EPISODE)

    def shape(self, meter: int, measurement: int, value: float) -> tuple[float, str]:
        anomaly = self.anomalies.take(meter, measurement, self._millis)
        if anomaly is not None:  # a pending trigger waits for another reading
            return self._anomaly(meter, measurement, *anomaly), ANOMALY
        queue = self._pending.get(measurement)
        if not queue:
            return value, NORMAL
        rule, trigger = queue.popleft()
        spec = self.measurements[measurement]
        self.truth.triggers.append(
            {
                "meter_id": self.profile.meters[meter].meter_id,
                "rule": rule.name,
                "rules": self.profile.guards[measurement].fired_by(trigger),
                "measurement": spec.name,
                "series": spec.series,
                "timestamp": self._stamp,
                "value": trigger,
            }
        )
        return trigger, TRIGGER

    def _anomaly(self, meter: int, measurement: int, value: float, episode: int) -> float:
        spec = self.measurements[measurement]
        self.truth.anomalies.append(
            {
                "meter_id": self.profile.meters[meter].meter_id,
                "measurement": spec.name,
                "series": spec.series,
                "timestamp": self._stamp,
                "value": value,
                "episode": episode,
                "rules": self.profile.guards[measurement].fired_by(value),
            }
        )
        return value

    def reset_due(self, meter: int, measurement: int) -> bool:
        if self._resets <= 0 or self.episodes.governs(meter, self._millis):
            return False
        self._resets -= 1
        return True

    # --- after every slot ----------------------------------------------------------------------

    def after(self, slot: int, last: Slot | None, sent: int) -> list[Record]:
        """Records injected once slot number ``slot`` went out (``sent`` records so far)."""
        out: list[Record] = []
        plan = self._plan_items
        while self._next < len(plan) and plan[self._next][0] <= slot:
            _, _, category, arg = plan[self._next]
            self._next += 1
            if category == "trigger":
                rule = self.pipeline.spec.rules[arg]
                assert rule.measurement is not None
                m = self.profile.index(rule.measurement)
                assert m is not None
                value = trigger_value(self.profile.guards[m], rule)
                assert value is not None
                self._pending.setdefault(m, deque()).append((rule, value))
            elif category == "reset":
                self._resets += 1
            elif last is None:
                continue
            elif category == "malformed":
                out.append(self._malformed_record(last))
            elif category == "duplicate":
                delay = self.rng.randint(*DUPLICATE_DELAY)
                key = self.profile.meters[last.meter].meter_id.encode()
                heapq.heappush(self._duplicates, (sent + len(out) + delay, slot, key, last.payload))
            elif category == "unknown_meter":
                out.append(self._unknown_record(last))
        return out

    def due_duplicates(self, sent: int | None) -> list[Record]:
        """Duplicates due once ``sent`` records went out (all that wait, when ``sent`` is None)."""
        out: list[Record] = []
        while self._duplicates and (sent is None or self._duplicates[0][0] <= sent):
            _, _, key, payload = heapq.heappop(self._duplicates)
            self.truth.duplicates.append({"meter_id": key.decode(), "payload": payload.decode()})
            out.append(Record(key, payload, "duplicate", None))
        return out

    def _unique_millis(self, meter_id: str, measurement: int, millis: int, meter: int | None) -> int:
        """``millis`` moved forward until no normal or injected reading has that key."""
        while (meter_id, measurement, millis) in self._used or (
            meter is not None and self.schedule.on_grid(meter, measurement, millis)
        ):
            millis += 1
        self._used.add((meter_id, measurement, millis))
        return millis

    def _malformed_record(self, last: Slot) -> Record:
        meter_id = self.profile.meters[last.meter].meter_id
        millis = self._unique_millis(meter_id, last.measurement, last.millis + self.rng.randint(1, 499), last.meter)
        base = Base(
            meter_id,
            self.encoder.stamp(millis, last.offset),
            self.measurements[last.measurement],
            last.value,
            tuple(self.measurements),
        )
        bad = self.malformed(self._malformed, base)
        self._malformed += 1
        key = meter_id if bad.key is None else bad.key
        entry = {
            "key": key,
            "payload": bad.payload,
            "payload_encoding": bad.encoding,
            "reason": bad.reason,
            "variant": bad.variant,
        }
        if bad.stage != "job":
            entry["stage"] = bad.stage
        self.truth.malformed.append(entry)
        return Record(key.encode(), bad.data, "malformed", millis)

    def _unknown_record(self, last: Slot) -> Record:
        meter_id = self.unknown_ids[self._unknown_turn % len(self.unknown_ids)]
        self._unknown_turn += 1
        millis = self._unique_millis(meter_id, last.measurement, last.millis, None)
        value = last.value
        if self.profile.is_register(last.measurement):
            value = self._unknown_registers[meter_id] = self._unknown_registers[meter_id] + self.rng.randint(0, 40)
        spec = self.measurements[last.measurement]
        stamp = self.encoder.stamp(millis, last.offset)
        self.truth.unknown_meters.append(
            {"meter_id": meter_id, "measurement": spec.name, "series": spec.series, "timestamp": stamp, "value": value}
        )
        return Record(meter_id.encode(), self.encoder.payload(meter_id, stamp, spec, value), "unknown_meter", millis)

    # --- at the end ----------------------------------------------------------------------------

    def finish(self, start_ms: int, newest_ms: int) -> list[Record]:
        """Outstanding duplicates, then the late readings.

        A late reading lies at least ``max(span / 2, 2 x (watermarkDelay + allowedLateness +
        window size))`` behind ``newest_ms``, the newest event time sent.
        """
        out = self.due_duplicates(None)
        windows = self.pipeline.spec.windows
        lag = max((newest_ms - start_ms) // 2, 2 * (windows.grace_ms + windows.size_ms))
        high = newest_ms - lag
        low = min(start_ms, high - max(lag, 60_000))
        candidates = self._late_measurements()
        calm = [i for i in range(len(self.profile.meters)) if i not in self.episodes.meters]
        for _ in range(self._late):
            meter = self.rng.randrange(len(self.profile.meters))
            if meter in self.episodes.meters and calm:  # a late reading would end a silence or move a register
                meter = self.rng.choice(calm)
            m = self.rng.choice(candidates)
            meter_id = self.profile.meters[meter].meter_id
            millis = self._unique_millis(meter_id, m, self.rng.randint(low, high - 1_000), meter)
            value = self.profile.one_off(meter, m, millis)
            spec = self.measurements[m]
            stamp = self.encoder.stamp(millis, pick_offset(self.rng))
            payload = self.encoder.payload(meter_id, stamp, spec, value)
            self.truth.late.append(
                {
                    "meter_id": meter_id,
                    "measurement": spec.name,
                    "series": spec.series,
                    "timestamp": stamp,
                    "value": value,
                    "behind_ms": newest_ms - millis,
                    "payload": payload.decode(),
                }
            )
            out.append(Record(meter_id.encode(), payload, "late", None))
        return out
