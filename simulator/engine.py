"""One simulation run: meters, then readings in event-time order with injections, and the truth.

:class:`Simulation` is what ``meterflow simulate`` runs (through :mod:`simulator.producer`) and
what tests drive without Kafka: :meth:`Simulation.meter_records` gives the ``<name>.meters``
records, :meth:`Simulation.records` the ``<name>.readings`` records, lazily, and
:attr:`Simulation.truth` is complete once they are exhausted. Deterministic: everything random
comes from generators seeded with ``--seed`` (one per concern, so turning injections on does not
change the normal values around them).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from meterflow.reading import format_timestamp
from meterflow.spec.model import MeterPipeline
from simulator.encode import EPOCH, Encoder, pick_offset
from simulator.errors import SimulatorError
from simulator.injections import DEFAULT_RATES, Injector, MalformedMaker, Slot
from simulator.profiles import profile_for
from simulator.profiles.base import NORMAL, RESET
from simulator.record import Record
from simulator.schedule import Schedule, group_measurements
from simulator.truth import Truth

DEFAULT_DURATION_MS = 86_400_000


@dataclass(frozen=True)
class Settings:
    """The options of one run (``meterflow simulate``'s flags)."""

    meters: int | None = None
    count: int | None = None
    duration_ms: int | None = None
    start: datetime | None = None
    seed: int = 0
    inject: bool = False
    rates: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_RATES))


def default_start(duration_ms: int, now: datetime | None = None) -> datetime:
    """Midnight UTC of today, minus the duration."""
    today = (now or datetime.now(UTC)).astimezone(UTC)
    midnight = today.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight - timedelta(milliseconds=duration_ms)


def _millis(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)


class _Quiet:
    """The shaper of a run without injections: every value is normal."""

    def shape(self, meter: int, measurement: int, value: float) -> tuple[float, str]:
        return value, NORMAL

    def reset_due(self, meter: int, measurement: int) -> bool:
        return False

    def flow(self, meter: int, litres: float) -> tuple[float, str]:
        return litres, NORMAL

    def hold(self, meter: int, measurement: int, value: float) -> tuple[float, str]:
        return value, NORMAL


class Simulation:
    """A deterministic simulation of ``pipeline``'s meters (see the module docstring)."""

    def __init__(self, pipeline: MeterPipeline, settings: Settings, malformed: MalformedMaker | None = None) -> None:
        if settings.count is not None and settings.duration_ms is not None:
            raise SimulatorError("--count and --duration both given; give one (normal readings, or a span)")
        if settings.count is not None and settings.count < 1:
            raise SimulatorError(f"--count {settings.count}: give at least 1 reading")
        if settings.duration_ms is not None and settings.duration_ms <= 0:
            raise SimulatorError("--duration must be positive, e.g. 1h, 1d, 30d")
        self.pipeline = pipeline
        self.settings = settings
        span = settings.duration_ms if settings.count is None else None
        span_ms = span or DEFAULT_DURATION_MS
        start = settings.start or default_start(span_ms)
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        self.start_ms = _millis(start)
        self.end_ms: int | None = None if settings.count is not None else self.start_ms + span_ms
        seed = settings.seed
        self.profile = profile_for(pipeline, settings.meters, self.start_ms, seed)
        self.groups = group_measurements(self.profile.measurements)
        self.schedule = Schedule(
            self.groups, len(self.profile.meters), self.start_ms, random.Random(f"{seed}/schedule")
        )
        self.encoder = Encoder()
        self.truth = Truth(pipeline.name, seed, self.profile.kind, format_timestamp(start.astimezone(UTC)))
        self.truth.meters_published = len(self.profile.meters)
        self.expected_slots = (
            self.schedule.count_before(self.end_ms) if self.end_ms is not None else settings.count or 0
        )
        self.injector: Injector | None = None
        if settings.inject:
            self.injector = Injector(
                pipeline,
                profile=self.profile,
                schedule=self.schedule,
                encoder=self.encoder,
                truth=self.truth,
                rates=settings.rates,
                expected_slots=self.expected_slots,
                rng=random.Random(f"{seed}/inject"),
                malformed=malformed,
                span=(self.start_ms, self.end_ms),
                episodes_rng=random.Random(f"{seed}/episodes"),
                anomalies_rng=random.Random(f"{seed}/anomalies"),
            )

    @property
    def meters(self) -> int:
        return len(self.profile.meters)

    def meter_records(self) -> list[tuple[bytes, bytes]]:
        """``(meter_id, MeterInfo JSON)`` of every published meter (unknown meters are not)."""
        return [(m.meter_id.encode(), m.to_json()) for m in self.profile.meters]

    def records(self) -> Iterator[Record]:
        """Every record of ``<name>.readings``, in sending order; fills :attr:`truth`."""
        profile, encoder, truth, injector = self.profile, self.encoder, self.truth, self.injector
        shaper = injector or _Quiet()
        quiet = _Quiet()
        counts = truth.counts
        measurements = profile.measurements
        meter_ids = [m.meter_id for m in profile.meters]
        keys = [i.encode() for i in meter_ids]
        offsets = random.Random(f"{self.settings.seed}/offsets")
        count, end = self.settings.count, self.end_ms
        normal = slot = sent = 0
        newest = self.start_ms
        last: Slot | None = None
        for millis, meter, gi in self.schedule.slots():
            if end is not None and millis >= end:
                break
            offset = pick_offset(offsets)
            stamp = encoder.stamp(millis, offset)
            group = self.groups[gi].measurements
            if injector is not None:
                injector.at(stamp, millis)
                if injector.silenced(meter, group, millis):
                    # a silent meter: its values are still made (the register counts on, the random
                    # stream of every other value stays the same), but not sent
                    profile.sample(meter, group, millis, quiet)
                    continue
            for m, value, kind, before in profile.sample(meter, group, millis, shaper):
                payload = encoder.payload(meter_ids[meter], stamp, measurements[m], value)
                yield Record(keys[meter], payload, kind, millis)
                sent += 1
                counts[kind] += 1
                newest = millis
                if kind == NORMAL:
                    normal += 1
                    if injector is not None:
                        last = Slot(meter, m, millis, offset, value, payload)
                elif kind == RESET:
                    truth.resets.append(
                        {"meter_id": meter_ids[meter], "timestamp": stamp, "before": before, "after": value}
                    )
                if injector is not None:
                    for extra in injector.after(slot, last, sent) + injector.due_duplicates(sent):
                        yield extra
                        sent += 1
                        counts[extra.kind] += 1
                slot += 1
                if count is not None and normal >= count:
                    break
            else:
                continue
            break
        truth.end = format_timestamp(EPOCH + timedelta(milliseconds=newest if end is None else end))
        if injector is not None:
            for extra in injector.finish(self.start_ms, newest):
                yield extra
                counts[extra.kind] += 1
