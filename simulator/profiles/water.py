"""Unity Water digital meters: flow per interval, the totaliser register, and daily device health.

Modelled on ``../shared/data/unitywater/measurement_types.csv`` (the "Digital Meter" rows) and
limited to what the manifest declares. Pulse1 is litres per interval with a morning and evening
peak (business hours for Non-Residential meters); Pulse1_Total is the register: it starts at a
per-meter random value and ``Total(t) = Total(t - interval) + Pulse1(t)``, reset to
``0 + Pulse1(t)`` when the injector asks. Battery is mostly 3.0-3.6 V with a small share on
the second scale real meters show (64-77). Meters come from :func:`simulator.registry.water_registry`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from meterflow.reading import MeterInfo
from meterflow.spec.durations import to_millis
from simulator.errors import SimulatorError
from simulator.guard import run_guards
from simulator.profiles.base import DAY_MS, NORMAL, RESET, Model, Profile, Sample, Shaper
from simulator.registry import meter_ids, water_registry

SECOND_SCALE_SHARE = 0.05
"""Share of Battery readings on the 64-77 scale."""

RESIDENTIAL_LITRES_PER_DAY = 550.0
NON_RESIDENTIAL_LITRES_PER_DAY = 2500.0

_GAUGES: dict[tuple[str, str], tuple[float, float, float, float]] = {
    # (name, series): (mean, spread, low, high) of a daily device-health value
    ("RF", "RSRP"): (-95.0, 8.0, -120.0, -70.0),
    ("RF", "SINR"): (10.0, 5.0, -5.0, 25.0),
    ("RF", "RSRQ"): (-10.0, 2.0, -15.0, -5.0),
    ("C8y_SignalStrength", "RSSI"): (-75.0, 8.0, -100.0, -55.0),
    ("DeviceTemperature", "Median"): (22.0, 2.0, 12.0, 32.0),
    ("DeviceTemperature", "Min"): (15.0, 2.5, 5.0, 25.0),
    ("DeviceTemperature", "Max"): (29.0, 3.0, 18.0, 40.0),
}


def _residential_weight(hour: float) -> float:
    return (
        0.15
        + 2.2 * math.exp(-(((hour - 7.5) / 1.3) ** 2))
        + 1.6 * math.exp(-(((hour - 19.0) / 1.8) ** 2))
        + (0.5 if 10 <= hour < 16 else 0.0)
    )


def _business_weight(hour: float) -> float:
    return 1.0 if 7 <= hour < 18 else 0.1


def _mean(weight: Callable[[float], float]) -> float:
    """The weight's average over a day (quarter-hour steps), to normalise it."""
    return sum(weight(h / 4) for h in range(96)) / 96


class WaterProfile(Profile):
    """Unity Water digital meters (see the module docstring)."""

    kind = "water"
    models = (
        Model("Pulse1", "P1", "L", 0, "water flow per interval, litres"),
        Model("Pulse1_Total", "T1", "L", 0, "flow totaliser register, litres"),
        Model("Battery", "V", "V", 3, "battery voltage (a few readings on the 64-77 scale)"),
        Model("DeviceTemperature", "T", "C", 1, "device (ambient) temperature at send time"),
        Model("DeviceTemperature", "Median", "C", 1, "median device temperature of the day"),
        Model("DeviceTemperature", "Min", "C", 1, "minimum device temperature of the day"),
        Model("DeviceTemperature", "Max", "C", 1, "maximum device temperature of the day"),
        Model("RF", "RSRP", "dB", 0, "reference signal received power"),
        Model("RF", "SINR", "dB", 0, "signal to noise ratio"),
        Model("RF", "RSRQ", "dB", 0, "reference signal received quality"),
        Model("C8y_SignalStrength", "RSSI", "dBm", 0, "received signal strength"),
        Model("Log_Count", "Stored", "count", 0, "log points stored in the day"),
        Model("Log_Count", "Sent", "count", 0, "log points sent in the day"),
    )

    def make_meters(self, n: int, rng: random.Random) -> list[MeterInfo]:
        meters = water_registry(n, rng)
        self._flow = self.index("Pulse1")
        self._total = self.index("Pulse1_Total")
        if self._flow is not None and self._total is not None:
            flow, total = self.measurements[self._flow], self.measurements[self._total]
            if to_millis(flow.interval) != to_millis(total.interval):
                raise SimulatorError(
                    f"Pulse1 every {flow.interval} and Pulse1_Total every {total.interval}: the register adds up "
                    "the flow of each interval, so give both the same interval"
                )
        r = self.rng
        business = [m.usage_type == "Non-Residential" for m in meters]
        self._daily = [
            (NON_RESIDENTIAL_LITRES_PER_DAY if b else RESIDENTIAL_LITRES_PER_DAY) * r.lognormvariate(0.0, 0.45)
            for b in business
        ]
        self._business = business
        self._register = [float(r.randint(50_000, 3_000_000)) for _ in meters]
        self._stuck_for = self._stuck_guard()
        watched = {self.measurements[i].name for i in (self._flow, self._total) if i is not None}
        self._runs = run_guards(self.pipeline, watched, len(meters))
        self._last_reported = [math.nan] * len(meters)
        self._changed = [self.start_ms] * len(meters)
        self._battery = [r.uniform(3.1, 3.6) for _ in meters]
        self._temp_bias = [r.gauss(0.0, 1.5) for _ in meters]
        self._weights = (_mean(_residential_weight), _mean(_business_weight))
        return meters

    def _stuck_guard(self) -> int | None:
        """The ``for`` of a stuck rule on the register: normal flow never leaves it unchanged that
        long (a reading of no flow gets one litre instead), so only an injected episode is stuck."""
        if self._total is None:
            return None
        name = self.measurements[self._total].name
        spans = [
            to_millis(r.for_)
            for r in self.pipeline.spec.rules
            if r.kind == "stuck" and r.measurement == name and r.for_
        ]
        return min(spans) if spans else None

    @property
    def supports_resets(self) -> bool:
        return self._total is not None

    def unknown_ids(self, n: int) -> list[str]:
        return meter_ids(self.registry_rng, n, frozenset(m.meter_id for m in self.meters))

    # --- values --------------------------------------------------------------------------------

    def _litres(self, meter: int, millis: int, interval_ms: int) -> float:
        hour = self.clock.hour(millis)
        if self._business[meter]:
            weight, mean = _business_weight(hour), self._weights[1]
        else:
            weight, mean = _residential_weight(hour), self._weights[0]
        expected = self._daily[meter] * interval_ms / DAY_MS * weight / mean
        used = min(0.95, 0.2 + 0.4 * weight / mean)
        if self.rng.random() >= used:
            return 0.0
        return expected / used * self.rng.lognormvariate(-0.18, 0.6)

    def _gauge(self, meter: int, measurement: int, millis: int) -> float:
        spec = self.measurements[measurement]
        rng = self.rng
        if spec.name == "Battery":
            days = (millis - self.start_ms) / DAY_MS
            volts = min(3.6, max(3.02, self._battery[meter] - 0.0004 * days + rng.gauss(0.0, 0.01)))
            if rng.random() < SECOND_SCALE_SHARE:
                return float(min(77, max(64, round(64 + (volts - 3.0) / 0.6 * 13 + rng.uniform(-0.5, 0.5)))))
            return volts
        if spec.name == "DeviceTemperature" and spec.series == "T":
            hour = self.clock.hour(millis)
            return 22.0 + 6.0 * math.sin(2 * math.pi * (hour - 9.0) / 24) + self._temp_bias[meter] + rng.gauss(0, 1)
        if spec.name == "Log_Count":
            per_day = DAY_MS // to_millis(self.measurements[self._flow].interval) if self._flow is not None else 96
            return float(per_day if spec.series == "Stored" or rng.random() < 0.9 else per_day - rng.randint(1, 4))
        mean, spread, low, high = _GAUGES[(spec.name, spec.series)]
        return min(max(rng.gauss(mean, spread), low), high)

    def sample(self, meter: int, measurements: tuple[int, ...], millis: int, shaper: Shaper) -> list[Sample]:
        out: list[Sample] = []
        guards = self.guards
        flow: float | None = None
        flow_kind = NORMAL
        for m in measurements:
            if m in (self._flow, self._total):
                if flow is None:  # Pulse1 and the register share one interval's flow
                    flow, flow_kind = self._flow_of(meter, m, millis, shaper)
                if m == self._flow:
                    out.append((m, flow, flow_kind, None))
                    continue
                before = self._register[meter]
                if shaper.reset_due(meter, m):
                    self._register[meter] = flow
                    value, kind = shaper.hold(meter, m, flow)
                    out.append((m, value, RESET if kind == NORMAL else kind, before))
                else:
                    self._register[meter] = before + flow
                    value, kind = shaper.hold(meter, m, self._register[meter])
                    out.append((m, value, kind, None))
                self._reported(meter, millis, value)
            else:
                value, kind = shaper.shape(meter, m, guards[m].safe(self._gauge(meter, m, millis)))
                out.append((m, value, kind, None))
        return out

    def _flow_of(self, meter: int, m: int, millis: int, shaper: Shaper) -> tuple[float, str]:
        """The litres of this interval and their kind: a normal value on the quiet side of Pulse1's
        threshold rules (none in an interval a continuousFlow run guard keeps quiet, at least one
        step where the register would otherwise look stuck), then what an episode sets, else a
        threshold trigger."""
        guard = self.guards[self._flow if self._flow is not None else m]
        litres = guard.safe(self._litres(meter, millis, self._interval(m)))
        quiet = any([run.quiet(meter, millis) for run in self._runs])  # every guard sees every reading
        if quiet:
            litres = guard.safe(0.0)
        if litres == 0.0 and self._stuck_for is not None and millis - self._changed[meter] >= self._stuck_for:
            litres = guard.safe(guard.step)
        litres, kind = shaper.flow(meter, litres)
        if kind == NORMAL and self._flow is not None and not quiet:  # a trigger waits for a flowing interval
            litres, kind = shaper.shape(meter, self._flow, litres)
        for run in self._runs:
            run.add(meter, litres)
        return litres, kind

    def _reported(self, meter: int, millis: int, value: float) -> None:
        """Remember when the reported register value last changed (the stuck guard)."""
        if value != self._last_reported[meter]:
            self._last_reported[meter] = value
            self._changed[meter] = millis

    def one_off(self, meter: int, measurement: int, millis: int) -> float:
        guard = self.guards[measurement]
        if measurement == self._flow:
            return guard.safe(self._litres(meter, millis, self._interval(measurement)))
        return guard.safe(self._gauge(meter, measurement, millis))

    def _interval(self, measurement: int) -> int:
        return to_millis(self.measurements[measurement].interval)
