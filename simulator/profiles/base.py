"""The shape every meter profile has, and the helpers the profiles share.

A profile knows its meters (:class:`~meterflow.reading.MeterInfo`, published on
``<name>.meters``), which manifest measurements it can model (:class:`Model`: expected unit and
decimals) and how to produce one reporting slot of values. :mod:`simulator.engine` drives it;
the engine's injector (a :class:`Shaper`) may swap a value for a rule trigger or an anomaly, or
reset a register, while the profile produces a slot, so registers stay consistent with what was
sent. A profile whose sensors can go wrong says how in :attr:`Profile.anomaly_ranges`.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar, Protocol
from zoneinfo import ZoneInfo

from meterflow.reading import MeterInfo
from meterflow.spec.model import MeasurementKind, MeasurementSpec, MeterPipeline
from simulator.errors import SimulatorError
from simulator.guard import Guard, build_guard

Sample = tuple[int, float, str, float | None]
"""One produced value: (measurement index, value, kind, register value before a reset)."""

NORMAL = "normal"
TRIGGER = "trigger"
RESET = "reset"
EPISODE = "episode"
ANOMALY = "anomaly"

HOUR_MS = 3_600_000
DAY_MS = 86_400_000


class Shaper(Protocol):
    """The engine's hook into a slot: may replace a value by a trigger or an anomaly, reset a
    register, or let an episode set a water meter's flow or hold its register."""

    def shape(self, meter: int, measurement: int, value: float) -> tuple[float, str]:
        """The value to send and its kind (``normal``, ``trigger`` or ``anomaly``)."""
        ...

    def reset_due(self, meter: int, measurement: int) -> bool:
        """True when this register reading should drop to zero (water registers only)."""
        ...

    def flow(self, meter: int, litres: float) -> tuple[float, str]:
        """A water meter's flow of this interval and its kind (``normal``, or ``episode`` when a leak,
        a night leak or a stuck register's episode sets it: simulator/episodes.py)."""
        ...

    def hold(self, meter: int, measurement: int, value: float) -> tuple[float, str]:
        """The register value to report and its kind (``episode`` while a stuck register holds it)."""
        ...


@dataclass(frozen=True)
class Model:
    """A measurement a profile can simulate: its name, series (None: any), unit and decimals."""

    name: str
    series: str | None
    unit: str
    decimals: int
    description: str


class LocalClock:
    """Local hour of day in the pipeline's time zone, cached per UTC hour."""

    def __init__(self, zone: str) -> None:
        self.zone = ZoneInfo(zone)
        self._offsets: dict[int, int] = {}

    def local_millis(self, millis: int) -> int:
        """``millis`` shifted by the zone's offset at that instant (local wall clock as epoch millis)."""
        bucket = millis // HOUR_MS
        offset = self._offsets.get(bucket)
        if offset is None:
            moment = datetime.fromtimestamp(bucket * 3600, UTC).astimezone(self.zone)
            offset = self._offsets[bucket] = int((moment.utcoffset() or timedelta(0)).total_seconds() * 1000)
        return millis + offset

    def hour(self, millis: int) -> float:
        """Fractional local hour (0 <= h < 24) at ``millis`` since the epoch."""
        return (self.local_millis(millis) % DAY_MS) / HOUR_MS

    def workday(self, millis: int) -> bool:
        """True on a local Monday to Friday (1970-01-01 was a Thursday)."""
        return (self.local_millis(millis) // DAY_MS + 3) % 7 < 5


class Profile(ABC):
    """One kind of meter: its meters, its models, and how it produces values."""

    kind: str
    models: tuple[Model, ...]
    anomaly_ranges: ClassVar[dict[str, tuple[float, float]]] = {}
    """Measurement name -> (low, high) of the values an injected anomaly reports (simulator/anomalies.py);
    empty: this kind of meter gets no anomalies."""

    def __init__(
        self, pipeline: MeterPipeline, meters: int, start_ms: int, registry_rng: random.Random, rng: random.Random
    ) -> None:
        if meters < 1:
            raise SimulatorError(f"--meters {meters}: give at least 1 meter")
        self.pipeline = pipeline
        self.start_ms = start_ms
        self.measurements: list[MeasurementSpec] = list(pipeline.spec.measurements)
        self.rng = rng
        self.registry_rng = registry_rng
        self.clock = LocalClock(pipeline.spec.time_zone)
        self.modelled = [self._model_for(m) for m in self.measurements]
        self.guards: list[Guard] = [
            build_guard(m, pipeline.spec.threshold_rules(), model.decimals)
            for m, model in zip(self.measurements, self.modelled, strict=True)
        ]
        self.meters: list[MeterInfo] = self.make_meters(meters, registry_rng)

    def _model_for(self, spec: MeasurementSpec) -> Model:
        for model in self.models:
            if model.name == spec.name and model.series in (None, spec.series):
                if model.unit != spec.unit:
                    raise SimulatorError(
                        f"measurement {spec.name}/{spec.series}: the {self.kind} simulator produces it in "
                        f"{model.unit}, the manifest says {spec.unit!r}; set unit: {model.unit}"
                    )
                return model
        known = ", ".join(f"{m.name}/{m.series or '*'}" for m in self.models)
        raise SimulatorError(
            f"measurement {spec.name}/{spec.series}: the {self.kind} simulator has no model for it "
            f"(it knows {known}); remove it from the manifest or use `meterflow replay`"
        )

    def index(self, name: str) -> int | None:
        """Index of the first manifest measurement called ``name``, if declared."""
        for i, m in enumerate(self.measurements):
            if m.name == name:
                return i
        return None

    @property
    def supports_resets(self) -> bool:
        """True when this profile has a register the injector may reset."""
        return False

    def is_register(self, measurement: int) -> bool:
        return self.measurements[measurement].kind == MeasurementKind.register.value

    @abstractmethod
    def make_meters(self, n: int, rng: random.Random) -> list[MeterInfo]:
        """The ``n`` meters of this kind, with metadata."""

    @abstractmethod
    def sample(self, meter: int, measurements: tuple[int, ...], millis: int, shaper: Shaper) -> list[Sample]:
        """The values ``meter`` reports for ``measurements`` (one group) at ``millis``."""

    @abstractmethod
    def one_off(self, meter: int, measurement: int, millis: int) -> float:
        """A safe value of a gauge or interval measurement, off the normal stream (late readings)."""

    @abstractmethod
    def unknown_ids(self, n: int) -> list[str]:
        """``n`` meter ids shaped like this kind's, that belong to no published meter."""
