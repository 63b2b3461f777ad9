"""The reading contract (DESIGN.md) and the meter metadata record, as producers write them.

A reading is one JSON object per Kafka record on ``<pipeline>.readings``, keyed by meter id:
``{"meter_id", "timestamp" (ISO 8601 with offset), "measurement_type", "series", "unit",
"value"}``. Meter metadata is one JSON object per meter on the compacted ``<pipeline>.meters``
topic. The streaming job's dead-letter reasons are listed here so the simulator's ground truth,
the job and the tests speak the same words.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum

UNKNOWN = "unknown"
"""The enrichment label of a meter with no metadata."""

MAX_METER_ID_CHARS = 128
"""A longer meter id is dead-lettered (bad_meter_id): it would be a key in every table. Counted in
UTF-16 code units, as the job's JVM counts them."""


class DlqReason(str, Enum):
    """Why a record went to the dead-letter topic (the streaming job's JVM parser uses the same codes)."""

    bad_encoding = "bad_encoding"
    bad_json = "bad_json"
    missing_field = "missing_field"
    missing_value = "missing_value"
    """``"value": null``: the reading names no value (a meter's gap, a replayed file's empty cell)."""
    wrong_type = "wrong_type"
    bad_timestamp = "bad_timestamp"
    not_finite = "not_finite"
    unknown_measurement = "unknown_measurement"
    unit_mismatch = "unit_mismatch"
    out_of_range = "out_of_range"
    bad_meter_id = "bad_meter_id"
    future_timestamp = "future_timestamp"
    too_old = "too_old"


@dataclass(frozen=True, slots=True)
class Reading:
    """One measurement of one meter at one instant."""

    meter_id: str
    timestamp: datetime
    measurement_type: str
    series: str
    unit: str
    value: float

    def to_dict(self) -> dict[str, object]:
        return {
            "meter_id": self.meter_id,
            "timestamp": format_timestamp(self.timestamp),
            "measurement_type": self.measurement_type,
            "series": self.series,
            "unit": self.unit,
            "value": self.value,
        }

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class MeterInfo:
    """Metadata of one meter, the enrichment of its window results and alerts."""

    meter_id: str
    meter_type: str
    suburb: str
    postcode: str
    usage_type: str

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()


def format_timestamp(moment: datetime) -> str:
    """ISO 8601 with milliseconds and the moment's own offset (``Z`` for UTC).

    Real meters send ``Z``, ``+10:00`` and ``+11:00``; a naive datetime is a bug upstream.
    """
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} has no UTC offset; readings need an aware datetime")
    offset = moment.utcoffset() or timedelta(0)
    text = moment.isoformat(timespec="milliseconds")
    return text[: -len("+00:00")] + "Z" if offset == timedelta(0) else text


def parse_timestamp(text: str) -> datetime:
    """The inverse of :func:`format_timestamp` (offset required)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return moment.astimezone(UTC)
