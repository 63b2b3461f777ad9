"""Households like the UCI "Individual household electric power consumption" one, every minute.

Each household reports whole-house active and reactive power (kW), voltage (V) and current (A),
and three sub-meterings in Wh per interval: kitchen (dishwasher, oven, microwave), laundry
(washing machine, dryer, fridge) and heating (water heater and air conditioner). Appliances
switch on and off with a daily load profile in the manifest's time zone (meals, a morning and an
evening peak, thermostat cycles); active power is the sub-meterings plus the rest of the house,
so the figures add up as in the UCI data. Meters are ``household-<n>`` in Sceaux (92330), the
UCI household's town, usage ``Residential``.
"""

from __future__ import annotations

import math
import random

from meterflow.reading import MeterInfo
from meterflow.spec.durations import to_millis
from simulator.profiles.base import HOUR_MS, Model, Profile, Sample, Shaper

MAX_HOUSE_KW = 5.6
"""Appliances are kept from all peaking at once, so whole-house power stays below HIGH_LOAD-like limits."""


class _Home:
    """One household's appliances: when each runs until, and its size."""

    def __init__(self, rng: random.Random) -> None:
        self.size = rng.lognormvariate(0.0, 0.25)
        self.kitchen_until = 0
        self.kitchen_kw = 0.0
        self.laundry_start = 0
        self.laundry_until = 0
        self.heater_until = 0
        self.heater_off_until = 0
        self.fridge_phase = rng.randrange(30)


def _other_kw(hour: float) -> float:
    """Lights, TV, computers: the rest of the house."""
    if 6.5 <= hour < 8.5:
        return 0.55
    if 18.0 <= hour < 23.0:
        return 0.9 + 0.3 * math.sin(math.pi * (hour - 18.0) / 5)
    return 0.3 if 8.5 <= hour < 18.0 else 0.15


def _meal(hour: float) -> bool:
    return 7.0 <= hour < 8.0 or 12.0 <= hour < 13.5 or 19.0 <= hour < 20.5


class HouseholdProfile(Profile):
    """UCI-like households (see the module docstring)."""

    kind = "household"
    models = (
        Model("global_active_power", None, "kW", 3, "household active power, minute average"),
        Model("global_reactive_power", None, "kW", 3, "household reactive power, minute average"),
        Model("voltage", None, "V", 2, "voltage, minute average"),
        Model("global_intensity", None, "A", 1, "current, minute average"),
        Model("sub_metering_1", None, "Wh", 0, "kitchen energy in the interval"),
        Model("sub_metering_2", None, "Wh", 0, "laundry room energy in the interval"),
        Model("sub_metering_3", None, "Wh", 0, "water heater and air conditioner energy in the interval"),
    )

    def make_meters(self, n: int, rng: random.Random) -> list[MeterInfo]:
        self._homes = [_Home(rng) for _ in range(n)]
        self._last: list[dict[str, float]] = [{} for _ in range(n)]
        return [MeterInfo(f"household-{i + 1}", "household", "SCEAUX", "92330", "Residential") for i in range(n)]

    def unknown_ids(self, n: int) -> list[str]:
        return [f"household-{len(self.meters) + k + 1}" for k in range(n)]

    def _step(self, meter: int, millis: int, interval_ms: int) -> dict[str, float]:
        home, rng = self._homes[meter], self.rng
        hour = self.clock.hour(millis)
        minute = 60_000
        if millis >= home.kitchen_until and rng.random() < (0.03 if _meal(hour) else 0.002 if hour >= 7 else 0.0):
            home.kitchen_until = millis + rng.randint(5, 40) * minute
            home.kitchen_kw = rng.uniform(1.2, 2.4)
        if millis >= home.laundry_until and 8 <= hour < 21 and rng.random() < 0.0015:
            home.laundry_start = millis
            home.laundry_until = millis + rng.randint(60, 120) * minute
        if millis >= home.heater_until and millis >= home.heater_off_until:
            peak = 5 <= hour < 9 or 17 <= hour < 23
            if rng.random() < (0.3 if peak else 0.08):
                home.heater_until = millis + rng.randint(10, 60) * minute
            else:
                home.heater_off_until = millis + rng.randint(5, 30) * minute
        kitchen = home.kitchen_kw if millis < home.kitchen_until else 0.0
        fridge = 0.12 if (millis // minute + home.fridge_phase) % 30 < 12 else 0.06
        laundry = fridge
        if millis < home.laundry_until:
            laundry += rng.uniform(2.0, 2.6) if millis - home.laundry_start < 20 * minute else rng.uniform(0.2, 0.5)
        heater = rng.uniform(1.02, 1.14) if millis < home.heater_until else 0.0
        other = _other_kw(hour) * home.size * (1 + rng.gauss(0.0, 0.1))
        if kitchen + laundry + heater + other > MAX_HOUSE_KW:
            laundry = fridge
        active = kitchen + laundry + heater + max(other, 0.05)
        reactive = min(0.5, max(0.0, 0.06 + 0.1 * other + 0.05 * (kitchen > 0) + rng.gauss(0.0, 0.02)))
        volts = 241.0 + 2.0 * math.sin(2 * math.pi * (hour - 4.0) / 24) - 0.5 * active + rng.gauss(0.0, 0.7)
        hours = interval_ms / HOUR_MS
        values = {
            "global_active_power": active,
            "global_reactive_power": reactive,
            "voltage": volts,
            "global_intensity": math.hypot(active, reactive) * 1000 / volts,
            "sub_metering_1": kitchen * 1000 * hours,
            "sub_metering_2": laundry * 1000 * hours,
            "sub_metering_3": heater * 1000 * hours,
        }
        self._last[meter] = values
        return values

    def sample(self, meter: int, measurements: tuple[int, ...], millis: int, shaper: Shaper) -> list[Sample]:
        values = self._step(meter, millis, to_millis(self.measurements[measurements[0]].interval))
        out: list[Sample] = []
        for m in measurements:
            value, kind = shaper.shape(meter, m, self.guards[m].safe(values[self.measurements[m].name]))
            out.append((m, value, kind, None))
        return out

    def one_off(self, meter: int, measurement: int, millis: int) -> float:
        name = self.measurements[measurement].name
        last = self._last[meter] or {"voltage": 240.0, "global_intensity": 1.0}
        return self.guards[measurement].safe(last.get(name, 0.0))
