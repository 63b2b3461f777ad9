"""Industrial sensors (``../shared/seeds/004``): temperature and humidity on a factory's lines.

Every sensor reports temperature (°C) and humidity (%) each interval (2 s in
examples/industrial-sensors.yaml). Normal values wander smoothly around the sensor's own mean
(mean-reverting noise, the means drawn per sensor from the seed) and stay inside seed 004's normal
ranges, 18-28 °C and 40-70 %. With ``--inject`` the injector swaps a few short runs of readings for
anomalies in seed 004's anomaly ranges, 80-120 °C and 0-20 % (:attr:`IndustrialProfile.anomaly_ranges`,
simulator/anomalies.py), each listed in the ground truth.

Metadata mapping (the reading contract's enrichment fields are water-shaped): ``meter_id`` is
``sensor_<nnn>`` (seed 004's ``sensor_001``), ``meter_type`` ``industrial_sensor``, ``suburb`` the
line or zone the sensor watches, ``postcode`` its hall and ``usage_type`` ``Industrial``. With
``--meters`` above 5, sensor 6 watches the first line again ("Furnace Line 2"), and so on.
"""

from __future__ import annotations

import math
import random
from typing import ClassVar

from meterflow.reading import MeterInfo
from meterflow.spec.durations import to_millis
from simulator.profiles.base import Model, Profile, Sample, Shaper

LINES = (
    ("Furnace Line", "1"),
    ("Press Line", "1"),
    ("Paint Shop", "2"),
    ("Assembly Line", "2"),
    ("Packaging", "3"),
)
"""The line or zone each sensor watches, and its hall: sensor ``n`` watches ``LINES[(n - 1) % 5]``."""

NORMAL_RANGES = {"temperature": (18.0, 28.0), "humidity": (40.0, 70.0)}
"""Seed 004's normal ranges: every normal value lies inside (before the manifest's own rules)."""

ANOMALY_RANGES = {"temperature": (80.0, 120.0), "humidity": (0.0, 20.0)}
"""Seed 004's anomaly ranges: what an injected anomaly reports."""

MEANS = {"temperature": (21.0, 25.0), "humidity": (48.0, 62.0)}
"""Each sensor's mean of each measurement is drawn uniformly from these."""

TAU_S = 300.0
"""How fast a value reverts to the sensor's mean (seconds)."""

SPREAD = {"temperature": 0.8, "humidity": 2.5}
"""Standard deviation of each value around the sensor's mean."""


class IndustrialProfile(Profile):
    """Seed 004's industrial sensors (see the module docstring)."""

    kind = "industrial"
    models = (
        Model("temperature", None, "C", 2, "temperature at the sensor"),
        Model("humidity", None, "%", 2, "relative humidity at the sensor"),
    )
    anomaly_ranges: ClassVar[dict[str, tuple[float, float]]] = ANOMALY_RANGES

    def make_meters(self, n: int, rng: random.Random) -> list[MeterInfo]:
        names = [m.name for m in self.measurements]
        pulls = [min(1.0, to_millis(m.interval) / 1000 / TAU_S) for m in self.measurements]
        self._pull = pulls  # how far a value moves to its mean in one interval
        self._noise = [SPREAD[name] * math.sqrt(2 * a) for name, a in zip(names, pulls, strict=True)]
        self._means = [[rng.uniform(*MEANS[name]) for name in names] for _ in range(n)]
        self._values = [
            [_inside(name, mean + rng.gauss(0.0, SPREAD[name])) for name, mean in zip(names, means, strict=True)]
            for means in self._means
        ]
        meters = []
        for i in range(n):
            line, hall = LINES[i % len(LINES)]
            round_ = i // len(LINES)
            zone = line if round_ == 0 else f"{line} {round_ + 1}"
            meters.append(MeterInfo(f"sensor_{i + 1:03d}", "industrial_sensor", zone, hall, "Industrial"))
        return meters

    def unknown_ids(self, n: int) -> list[str]:
        return [f"sensor_{len(self.meters) + k + 1:03d}" for k in range(n)]

    def _step(self, meter: int, measurement: int) -> float:
        """Move one value of ``meter`` on by its interval: towards the sensor's mean, plus noise."""
        current, mean = self._values[meter][measurement], self._means[meter][measurement]
        moved = current + self._pull[measurement] * (mean - current) + self.rng.gauss(0.0, self._noise[measurement])
        self._values[meter][measurement] = value = _inside(self.measurements[measurement].name, moved)
        return value

    def sample(self, meter: int, measurements: tuple[int, ...], millis: int, shaper: Shaper) -> list[Sample]:
        out: list[Sample] = []
        for m in measurements:
            value, kind = shaper.shape(meter, m, self.guards[m].safe(self._step(meter, m)))
            out.append((m, value, kind, None))
        return out

    def one_off(self, meter: int, measurement: int, millis: int) -> float:
        return self.guards[measurement].safe(self._values[meter][measurement])


def _inside(name: str, value: float) -> float:
    low, high = NORMAL_RANGES[name]
    return min(max(value, low), high)
