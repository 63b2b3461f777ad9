"""Seed 002's wide MQTT payloads: one JSON object per meter and instant, one field per metric.

``meterflow simulate --via mqtt`` on a manifest whose ``spec.source.mqtt.payload.format`` is
``wide`` publishes these instead of single readings (:mod:`simulator.mqtt`):

* the readings of one meter's reporting slot (same meter, same timestamp, sent one after the
  other by :class:`simulator.engine.Simulation`) become one message
  ``{"<meterIdField>": "room_1", "<timestampField>": "...", "<field>": value, ...}``;
* an injected duplicate, late or unknown-meter reading is a message of its own carrying just that
  field (a device may send part of its metrics);
* malformed messages come from :func:`malformed_wide`, one defect each: some are refused by the
  bridge (``stage: bridge``), the others become one bad reading the job dead-letters
  (``stage: job``). Every one carries a single mapped field at most, so one malformed message is
  exactly one dead letter.

The mapping read here is the manifest's (``payload.fields``); the bridge's own code is not used,
so the simulator stays an independent producer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from meterflow.deadletter import MqttReason
from meterflow.reading import DlqReason
from meterflow.spec.model import MeterPipeline, MqttSource
from simulator.errors import SimulatorError
from simulator.malformed import Base, Malformed
from simulator.profiles.base import ANOMALY, EPISODE, NORMAL, RESET, TRIGGER
from simulator.record import Record

GROUPED = frozenset({NORMAL, TRIGGER, RESET, EPISODE, ANOMALY})
"""Kinds of readings merged into their slot's wide message."""


@dataclass(frozen=True, slots=True)
class Message:
    """One MQTT message: topic, the meter id it carries (the record key), payload, kind, event time."""

    topic: str
    key: str
    payload: bytes
    kind: str
    event_ms: int | None


def source_of(pipeline: MeterPipeline) -> MqttSource:
    source = pipeline.spec.source.mqtt
    if source is None:
        raise SimulatorError(f"--via mqtt: {pipeline.name} has no spec.source.mqtt; add it (docs/mqtt.md)")
    return source


class WideEncoder:
    """Merges a simulation's reading records into wide messages (see the module docstring)."""

    def __init__(self, pipeline: MeterPipeline) -> None:
        self.source = source_of(pipeline)
        payload = self.source.payload
        self.meter_field = payload.meter_id_field
        self.timestamp_field = payload.timestamp_field
        self.fields = {(m.name, m.series): key for key, m in pipeline.spec.wide_targets()}
        missing = sorted(
            {f"{m.name}/{m.series}" for m in pipeline.spec.measurements} - {f"{n}/{s}" for n, s in self.fields}
        )
        if missing:
            raise SimulatorError(
                f"--via mqtt: spec.source.mqtt.payload.fields maps no field to {', '.join(missing)}; "
                "map every measurement the simulator sends"
            )

    def head(self, meter_id: str, stamp: object) -> dict[str, object]:
        out: dict[str, object] = {}
        if self.meter_field is not None:
            out[self.meter_field] = meter_id
        out[self.timestamp_field] = stamp
        return out

    def messages(self, records: Iterator[Record]) -> Iterator[Message]:
        group: dict[str, object] | None = None
        slot: tuple[str, str] | None = None
        first: Record | None = None
        kind = NORMAL
        for r in records:
            if r.kind in GROUPED:
                reading = json.loads(r.value)
                meter, stamp = reading["meter_id"], reading["timestamp"]
                field = self.fields[(reading["measurement_type"], reading["series"])]
                if group is not None and slot == (meter, stamp) and field not in group:
                    group[field] = reading["value"]
                    continue
                if group is not None and first is not None:
                    yield self._message(first, group, kind)
                group, slot, first, kind = self.head(meter, stamp), (meter, stamp), r, r.kind
                group[field] = reading["value"]
                continue
            if group is not None and first is not None:
                yield self._message(first, group, kind)
                group = slot = first = None
            if r.kind == "malformed":  # already a wide payload (malformed_wide)
                key = r.key.decode()
                yield Message(self.source.topic_for(key), key, r.value, r.kind, r.event_ms)
                continue
            reading = json.loads(r.value)
            single = self.head(reading["meter_id"], reading["timestamp"])
            single[self.fields[(reading["measurement_type"], reading["series"])]] = reading["value"]
            yield self._message(r, single, r.kind)
        if group is not None and first is not None:
            yield self._message(first, group, kind)

    def _message(self, first: Record, document: dict[str, object], kind: str) -> Message:
        key = first.key.decode()
        payload = json.dumps(document, separators=(",", ":")).encode()
        return Message(self.source.topic_for(key), key, payload, NORMAL if kind == RESET else kind, first.event_ms)


class WideMalformed:
    """The wide counterpart of :data:`simulator.malformed.READING_MALFORMED` for one pipeline's mapping."""

    def __init__(self, pipeline: MeterPipeline) -> None:
        self.variants = _variants(WideEncoder(pipeline))
        self.reasons = len({(reason, stage) for _, reason, stage, _ in self.variants})

    def __call__(self, index: int, base: Base) -> Malformed:
        variants = self.variants
        for step in range(len(variants)):
            name, reason, stage, make = variants[(index + step) % len(variants)]
            payload = make(base)
            if payload is not None:
                key = "" if name == "empty_meter_level" else None
                return Malformed(name, payload, reason, stage=stage, key=key)
        raise AssertionError("truncated always applies")  # pragma: no cover


Variant = tuple[str, str, str, Callable[[Base], str | None]]


def _variants(encoder: WideEncoder) -> tuple[Variant, ...]:

    def one(base: Base, value: object, stamp: object = None) -> dict[str, object]:
        doc = encoder.head(base.meter_id, base.timestamp if stamp is None else stamp)
        doc[encoder.fields[(base.measurement.name, base.measurement.series)]] = value
        return doc

    def dump(doc: object) -> str:
        return json.dumps(doc, separators=(",", ":"))

    def out_of_range(base: Base) -> str | None:
        m = base.measurement
        if m.max is not None:
            return dump(one(base, m.max + max(1.0, abs(m.max) * 0.5)))
        if m.min is not None:
            return dump(one(base, m.min - max(1.0, abs(m.min) * 0.5)))
        return None

    def no_offset(base: Base) -> str:
        text = base.timestamp.removesuffix("Z")
        return dump(one(base, base.value, text[:-6] if text[-6] in "+-" else text))

    def no_timestamp(base: Base) -> str:
        doc = one(base, base.value)
        del doc[encoder.timestamp_field]
        return dump(doc)

    def unmapped(base: Base) -> str:
        doc = encoder.head(base.meter_id, base.timestamp)
        doc["firmware_note"] = "reboot"
        return dump(doc)

    def other_meter(base: Base) -> str | None:
        if encoder.meter_field is None:
            return None
        doc = one(base, base.value)
        doc[encoder.meter_field] = base.meter_id + "-other"
        return dump(doc)

    return (
        ("truncated", MqttReason.bad_json, "bridge", lambda b: dump(one(b, b.value))[:-4]),
        ("no_timestamp", MqttReason.missing_field, "bridge", no_timestamp),
        ("no_mapped_field", MqttReason.no_measurements, "bridge", unmapped),
        ("other_meter", MqttReason.meter_mismatch, "bridge", other_meter),
        ("empty_meter_level", MqttReason.no_meter_id, "bridge", lambda b: dump(one(b, b.value))),
        ("value_string", DlqReason.wrong_type, "job", lambda b: dump(one(b, repr(b.value)))),
        ("nan", DlqReason.not_finite, "job", lambda b: dump(one(b, math.nan))),
        ("out_of_range", DlqReason.out_of_range, "job", out_of_range),
        ("no_offset", DlqReason.bad_timestamp, "job", no_offset),
        ("array", MqttReason.bad_json, "bridge", lambda b: dump(list(one(b, b.value).values()))),
    )
