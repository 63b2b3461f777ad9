"""Daily rows for the pure tests, in the shape the Flink query returns (plus enrichment)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd

from flink_jobs.batch.daily import DAILY_COLUMNS

DEFAULTS: dict[str, Any] = {
    "meter_id": "m1", "measurement_type": "Pulse1", "series": "P1", "day": date(2024, 5, 2), "unit": "L",
    "kind": "interval", "readings": 96, "sum": 100.0, "avg": 1.0, "min": 0.0, "max": 10.0, "consumption": 100.0,
    "first_ms": 1714572000000, "last_ms": 1714657500000, "first_value": 0.0, "last_value": 0.0, "unanchored": 0,
    "resets": 0, "negative_steps": 0, "negative_total": 0.0, "max_gap_ms": 900_000.0, "late_readings": 0,
    "duplicates": 0, "clock_ahead": 0, "max_ahead_ms": -2_000.0, "max_flat_ms": 0,
    "meter_type": "captis_pulse", "suburb": "BUDERIM", "postcode": "4556", "usage_type": "Residential",
}  # fmt: skip


def daily(*rows: dict[str, Any]) -> pd.DataFrame:
    """A daily frame: each row is DEFAULTS updated with the given values."""
    columns = [*DAILY_COLUMNS, "meter_type", "suburb", "postcode", "usage_type"]
    return pd.DataFrame([DEFAULTS | row for row in rows], columns=columns)


def day(n: int) -> date:
    """``day(2)`` → 2 May 2024."""
    return date(2024, 5, n)
