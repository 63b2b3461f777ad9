"""How consumption is counted, the same way in the speed layer, the batch layer and the tests.

* interval measurements (Pulse1: litres per 15 minutes): consumption is the sum of the values;
* register measurements (Pulse1_Total, DAIAD's meter reading): consumption is the *step* from
  the meter's previous reading in event-time order — never a sum of register values (the public
  Spark version of this pipeline summed the register and flagged every meter as high);
  a fall to at most :data:`REGISTER_RESET_RATIO` of the previous value is a **reset** (meter
  swap, roll-over) and the new value counts from zero; any smaller fall is a negative step
  (sensor jitter, back-flow, two devices interleaved on one key — all seen in DAIAD), counted as
  it is so that a run of steps nets out to last - first;
* power measurements (UCI's whole-house kW, a mean over each minute): consumption is energy, each
  reading's value times the hours of its measurement's ``interval`` (kW over 1m: kW / 60 kWh); a
  missing reading is energy unknown, never guessed;
* gauge measurements (battery, temperature): no consumption.

The JVM jobs multiply by :func:`consumption_factor`, computed here once per measurement.
"""

from __future__ import annotations

from meterflow.spec.durations import to_millis
from meterflow.spec.model import MeasurementKind, MeasurementSpec

REGISTER_RESET_RATIO = 0.1
"""A register falling to at most this share of its previous value has been reset."""

HOUR_MS = 3_600_000


def consumption_factor(m: MeasurementSpec) -> float:
    """What a reading's value is multiplied by to give its consumption: an interval's 1, a power's
    hours per reading (its ``interval``); 0 for registers (stepped, not scaled) and gauges."""
    kind = MeasurementKind(m.kind)
    if kind is MeasurementKind.interval:
        return 1.0
    if kind is MeasurementKind.power:
        return to_millis(m.interval) / HOUR_MS
    return 0.0


def energy_unit(power_unit: str) -> str:
    """The unit of a power's energy: its unit times hours (kW → kWh, var → varh)."""
    return f"{power_unit}h"


def consumption_unit(m: MeasurementSpec) -> str | None:
    """The unit consumption is served in: a power's energy unit, otherwise the measurement's own;
    None for a gauge."""
    kind = MeasurementKind(m.kind)
    if kind is MeasurementKind.gauge:
        return None
    return energy_unit(m.unit) if kind is MeasurementKind.power else m.unit
