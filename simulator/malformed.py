"""Malformed reading payloads, one defect each, with the dead-letter reason the job must give.

The variants run through every :class:`~meterflow.reading.DlqReason` in their first eight
entries (so a run with at least eight malformed records has one of each), then through more
shapes of the same defects: not an object, trailing garbage, empty value, nulls, a boolean
meter id, a day-first timestamp, infinities, an unknown measurement name. Used by
:mod:`simulator.injections`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from meterflow.reading import DlqReason
from meterflow.spec.model import MeasurementSpec


@dataclass(frozen=True)
class Base:
    """The valid reading a malformed record is made from (its timestamp is already unique)."""

    meter_id: str
    timestamp: str
    measurement: MeasurementSpec
    value: float
    declared: tuple[MeasurementSpec, ...]

    def fields(self) -> dict[str, object]:
        m = self.measurement
        return {
            "meter_id": self.meter_id,
            "timestamp": self.timestamp,
            "measurement_type": m.name,
            "series": m.series,
            "unit": m.unit,
            "value": self.value,
        }


@dataclass(frozen=True)
class Malformed:
    """One malformed record: the exact payload, the reason it gets, and who dead-letters it.

    ``stage`` is ``job`` (the streaming job) or ``bridge`` (the MQTT bridge, wide payloads);
    ``key`` overrides the meter id it is sent under (``""``: an empty meter-id level).
    """

    variant: str
    payload: str
    reason: str
    stage: str = "job"
    key: str | None = None


def _dump(fields: dict[str, object]) -> str:
    return json.dumps(fields, separators=(",", ":"))


def _with(base: Base, **changes: object) -> str:
    return _dump(base.fields() | changes)


def _without(base: Base, field: str) -> str:
    fields = base.fields()
    del fields[field]
    return _dump(fields)


def _out_of_range(base: Base) -> str | None:
    """A value beyond a declared bound, preferring the base's own measurement."""
    for m in (base.measurement, *base.declared):
        if m.max is not None:
            value = m.max + max(1.0, abs(m.max) * 0.5)
        elif m.min is not None:
            value = m.min - max(1.0, abs(m.min) * 0.5)
        else:
            continue
        return _with(base, measurement_type=m.name, series=m.series, unit=m.unit, value=value)
    return None


def _unknown_series(base: Base) -> str:
    pairs = {(m.name, m.series) for m in base.declared}
    series = base.measurement.series + "_X"
    while (base.measurement.name, series) in pairs:
        series += "X"
    return _with(base, series=series)


def _unknown_name(base: Base) -> str:
    names = {m.name for m in base.declared}
    name = base.measurement.name + "_unknown"
    while name in names:
        name += "_"
    return _with(base, measurement_type=name)


def _no_offset(base: Base) -> str:
    text = base.timestamp.removesuffix("Z")
    if text[-6] in "+-":
        text = text[:-6]
    return _with(base, timestamp=text)


def _day_first(base: Base) -> str:
    date, time = base.timestamp[:10], base.timestamp[11:19]
    year, month, day = date.split("-")
    return _with(base, timestamp=f"{day}/{month}/{year} {time}")


VARIANTS: tuple[tuple[str, DlqReason, Callable[[Base], str | None]], ...] = (
    ("truncated", DlqReason.bad_json, lambda b: _dump(b.fields())[:-6]),
    ("no_value", DlqReason.missing_field, lambda b: _without(b, "value")),
    ("value_string", DlqReason.wrong_type, lambda b: _with(b, value=repr(b.value))),
    ("no_offset", DlqReason.bad_timestamp, _no_offset),
    ("nan", DlqReason.not_finite, lambda b: _with(b, value=float("nan"))),
    ("unknown_series", DlqReason.unknown_measurement, _unknown_series),
    ("wrong_unit", DlqReason.unit_mismatch, lambda b: _with(b, unit="k" + b.measurement.unit)),
    ("out_of_range", DlqReason.out_of_range, _out_of_range),
    ("not_object", DlqReason.bad_json, lambda b: json.dumps(list(b.fields().values()), separators=(",", ":"))),
    ("null_meter_id", DlqReason.missing_field, lambda b: _with(b, meter_id=None)),
    ("meter_id_bool", DlqReason.wrong_type, lambda b: _with(b, meter_id=True)),
    ("day_first", DlqReason.bad_timestamp, _day_first),
    ("infinity", DlqReason.not_finite, lambda b: _with(b, value=float("inf"))),
    ("trailing_garbage", DlqReason.bad_json, lambda b: _dump(b.fields()) + " trailing"),
    ("empty", DlqReason.bad_json, lambda b: ""),
    ("no_timestamp", DlqReason.missing_field, lambda b: _without(b, "timestamp")),
    ("timestamp_number", DlqReason.wrong_type, lambda b: _with(b, timestamp=1_657_697_401_000)),
    ("minus_infinity", DlqReason.not_finite, lambda b: _with(b, value=float("-inf"))),
    ("unit_number", DlqReason.wrong_type, lambda b: _with(b, unit=1)),
    ("unknown_name", DlqReason.unknown_measurement, _unknown_name),
    ("null_unit", DlqReason.missing_field, lambda b: _with(b, unit=None)),
    ("null_value", DlqReason.missing_field, lambda b: _with(b, value=None)),
)


class ReadingMalformed:
    """The malformed reading-contract records (the default of :class:`simulator.injections.Injector`)."""

    reasons = len({reason for _, reason, _ in VARIANTS})

    def __call__(self, index: int, base: Base) -> Malformed:
        return malformed(index, base)


def malformed(index: int, base: Base) -> Malformed:
    """The ``index``-th malformed record (variants in turn; a variant that cannot apply is passed)."""
    for step in range(len(VARIANTS)):
        name, reason, build = VARIANTS[(index + step) % len(VARIANTS)]
        payload = build(base)
        if payload is not None:
            return Malformed(name, payload, reason.value)
    raise AssertionError("every variant but out_of_range always applies")  # pragma: no cover
