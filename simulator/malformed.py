"""Malformed reading payloads, one defect each, with the dead-letter reason the job must give.

The variants run through every :class:`~meterflow.reading.DlqReason` in their first twelve
entries (so a run with at least twelve malformed records has one of each), then through more
shapes of the same defects: not an object, trailing garbage, empty value, nulls, a boolean
meter id, a day-first timestamp, infinities, an unknown measurement name. Used by
:mod:`simulator.injections`.

The hostile ones (issue 11) are among the first twelve: bytes that are not UTF-8 in the meter id
(``bad_encoding``), a meter id of 160 characters (``bad_meter_id``), a clock in 2096
(``future_timestamp``, whatever the run's start: real time is far behind) and in 1972
(``too_old``: older than ``spec.source.maxReadingAge`` allows, 30 years by default). Leap years
both, so every simulated day exists in them. A payload that is not UTF-8 is carried as base64
(``encoding``), exactly as the dead-letter topic keeps it.
"""

from __future__ import annotations

import base64
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
    encoding: str = "utf-8"
    """``base64``: ``payload`` is the base64 of bytes that are not UTF-8 (as the dead letter keeps them)."""

    @property
    def data(self) -> bytes:
        """The bytes sent."""
        return base64.b64decode(self.payload) if self.encoding == "base64" else self.payload.encode()


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


def _not_utf8(base: Base) -> str:
    """The reading with a meter id that ends in bytes no UTF-8 decoder accepts (0xFF 0xFE, as the
    surrogate escapes that :func:`malformed` turns back into those bytes)."""
    quoted = json.dumps(base.meter_id)
    return _dump(base.fields()).replace(quoted, quoted[:-1] + "\udcff\udcfe" + '"', 1)


def _year(base: Base, year: int) -> str:
    return _with(base, timestamp=f"{year:04d}{base.timestamp[4:]}")


def _named(payload: str, meter_id: str) -> str | None:
    """The other meter id (a string) a payload names: its device sends it under that key (so over
    MQTT it is on that meter's topic, and the bridge passes it on to the job)."""
    try:
        named = json.loads(payload).get("meter_id")
    except (ValueError, AttributeError):
        return None
    return named if isinstance(named, str) and named != meter_id else None


LONG_METER_ID = 160
"""Characters of the ``bad_meter_id`` variant's meter id (the job allows 128)."""


VARIANTS: tuple[tuple[str, DlqReason, Callable[[Base], str | None]], ...] = (
    ("truncated", DlqReason.bad_json, lambda b: _dump(b.fields())[:-6]),
    ("no_value", DlqReason.missing_field, lambda b: _without(b, "value")),
    ("null_value", DlqReason.missing_value, lambda b: _with(b, value=None)),
    ("value_string", DlqReason.wrong_type, lambda b: _with(b, value=repr(b.value))),
    ("no_offset", DlqReason.bad_timestamp, _no_offset),
    ("nan", DlqReason.not_finite, lambda b: _with(b, value=float("nan"))),
    ("unknown_series", DlqReason.unknown_measurement, _unknown_series),
    ("wrong_unit", DlqReason.unit_mismatch, lambda b: _with(b, unit="k" + b.measurement.unit)),
    ("out_of_range", DlqReason.out_of_range, _out_of_range),
    ("not_utf8", DlqReason.bad_encoding, _not_utf8),
    (
        "long_meter_id",
        DlqReason.bad_meter_id,
        lambda b: _with(b, meter_id=(b.meter_id * LONG_METER_ID)[:LONG_METER_ID]),
    ),
    ("year_2096", DlqReason.future_timestamp, lambda b: _year(b, 2096)),
    ("year_1972", DlqReason.too_old, lambda b: _year(b, 1972)),
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
        if payload is None:
            continue
        try:
            text = payload.encode().decode()
        except UnicodeEncodeError:  # surrogate escapes stand for bytes that are not UTF-8
            data = payload.encode("utf-8", "surrogateescape")
            return Malformed(name, base64.b64encode(data).decode(), reason.value, encoding="base64")
        return Malformed(name, text, reason.value, key=_named(text, base.meter_id))
    raise AssertionError("every variant but out_of_range always applies")  # pragma: no cover
