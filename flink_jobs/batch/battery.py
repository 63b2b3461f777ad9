"""Battery readings on two scales, brought to one: volts.

Unity Water meters report ``Battery`` (series V) on two scales, for the same meter on the same
day: volts (about 1.6-3.6) and a second scale of about 64-77 (the simulator models it the same
way). A daily minimum over both would be meaningless, so the batch normalises every battery
reading *before* it aggregates (in the JVM, ``io.meterflow.batch.DailyPlan#volts``, with the
constants below; :func:`normalise` is its Python statement):

* a value at or below :data:`SCALE_SPLIT` (10) is already volts and is kept;
* a value above it is on the second scale and maps linearly onto the healthy voltage band:
  ``64 → 3.0 V`` and ``77 → 3.6 V`` (both scales top out together on a full battery, and 64 is
  where the second scale's readings stop, as 3.0 V is where a lithium meter cell is spent).

So daily_stats, monthly_stats and the LOW_BATTERY problem rule see volts only; the raw values
stay untouched in the Iceberg lake and in the speed layer.
"""

from __future__ import annotations

SCALE_SPLIT = 10.0
"""Battery values above this are on the second (64-77) scale."""

SCALE_LOW = 64.0
SCALE_SPAN = 13.0
"""The second scale's band: 64 .. 64 + 13 = 77."""

VOLTS_LOW = 3.0
VOLTS_SPAN = 0.6
"""The voltage band it maps onto: 3.0 .. 3.6 V."""


def normalise(value: float) -> float:
    """A battery reading in volts, whichever scale it came on."""
    if value > SCALE_SPLIT:
        return VOLTS_LOW + (value - SCALE_LOW) * VOLTS_SPAN / SCALE_SPAN
    return value


def is_battery(name: str) -> bool:
    """True for a battery measurement (``Battery``, ``battery_level``, ...)."""
    return "battery" in name.lower()
