"""Pre-encoded reading payloads: the reading contract's JSON, built from cached pieces.

Each record is ``{"meter_id", "timestamp", "measurement_type", "series", "unit", "value"}`` in
that order, byte-identical to :meth:`meterflow.reading.Reading.to_json`, but assembled from a
cached head per meter and tail per measurement so a run spends its time in Kafka, not in
``json.dumps``. Used by :mod:`simulator.engine` and :mod:`simulator.replay.runner`.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta, timezone

from meterflow.reading import format_timestamp
from meterflow.spec.model import MeasurementSpec

OFFSETS = (UTC, timezone(timedelta(hours=10)), timezone(timedelta(hours=11)))
"""The offsets real Unity Water readings carry: Z, +10:00 and +11:00 (same instant)."""

OFFSET_WEIGHTS = (0.90, 0.07, 0.03)
"""Share of readings written with each offset of :data:`OFFSETS`."""

_CACHE_LIMIT = 200_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Encoder:
    """Encodes readings; caches JSON pieces per meter, per measurement and per timestamp."""

    def __init__(self) -> None:
        self._heads: dict[str, str] = {}
        self._tails: dict[tuple[str, str, str], str] = {}
        self._stamps: dict[tuple[int, int], str] = {}

    def payload(self, meter_id: str, stamp: str, measurement: MeasurementSpec, value: float | str | None) -> bytes:
        """The JSON of one reading of ``measurement`` (``stamp`` already formatted); a replayed
        cell that holds no number is written as it is (``null``, or a string) for the job to judge."""
        head = self._heads.get(meter_id)
        if head is None:
            head = self._heads[meter_id] = '{"meter_id":' + json.dumps(meter_id) + ',"timestamp":'
        key = (measurement.name, measurement.series, measurement.unit)
        tail = self._tails.get(key)
        if tail is None:
            tail = self._tails[key] = (
                ',"measurement_type":'
                + json.dumps(measurement.name)
                + ',"series":'
                + json.dumps(measurement.series)
                + ',"unit":'
                + json.dumps(measurement.unit)
                + ',"value":'
            )
        text = repr(value) if isinstance(value, float | int) else json.dumps(value)
        return (head + '"' + stamp + '"' + tail + text + "}").encode()

    def stamp(self, millis: int, offset: int = 0) -> str:
        """``millis`` since the epoch as ISO 8601 with offset ``OFFSETS[offset]``."""
        key = (millis, offset)
        text = self._stamps.get(key)
        if text is None:
            if len(self._stamps) >= _CACHE_LIMIT:
                self._stamps.clear()
            moment = (EPOCH + timedelta(milliseconds=millis)).astimezone(OFFSETS[offset])
            text = self._stamps[key] = format_timestamp(moment)
        return text


def pick_offset(rng: random.Random) -> int:
    """An index into :data:`OFFSETS`, mostly 0 (``Z``)."""
    r = rng.random()
    if r < OFFSET_WEIGHTS[0]:
        return 0
    return 1 if r < OFFSET_WEIGHTS[0] + OFFSET_WEIGHTS[1] else 2
