"""One MQTT message in, the Kafka records it becomes out (pure; no I/O).

The meter id is the topic level ``spec.source.mqtt`` points at (the first ``+`` of the filter by
default); it is the Kafka key of every record the message becomes. Two payload formats:

* ``reading`` — the message is one reading in the reading contract; its bytes go to
  ``<name>.readings`` unchanged (the streaming job validates them, as for any producer). Only a
  ``meter_id`` that contradicts the topic is refused here (``meter_mismatch``): the record would
  be keyed, and so partitioned, by another meter than it names.
* ``wide`` — one JSON object per meter and instant, one field per metric (seed 002's rooms:
  ``{"room_id", "timestamp", "temperature", "co2_ppm", ...}``), exploded into one reading per
  mapped field present: ``timestamp`` copied as it is, unit from the measurement, value as sent
  (``true``/``false`` become 1/0; a ``null`` field is a metric the device did not report and is
  left out). Values and timestamps are validated by the job, like any reading; what cannot make
  readings at all is refused here: not a JSON object (``bad_json``), no timestamp
  (``missing_field``), another meter named in ``meterIdField`` (``meter_mismatch``), none of the
  mapped fields present (``no_measurements``).

A topic whose meter level is empty (``buildings//telemetry``) is refused as ``no_meter_id``.
Refusals become dead letters (:mod:`meterflow.deadletter`) in :mod:`meterflow_bridge.runtime`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from meterflow.deadletter import MqttReason
from meterflow.spec.model import MeterPipeline, MqttPayloadFormat, MqttSource


@dataclass(frozen=True, slots=True)
class Mapped:
    """The records one message becomes: all keyed by its meter id."""

    key: bytes
    values: list[bytes]


@dataclass(frozen=True, slots=True)
class Refused:
    """A message that cannot become readings, and why."""

    key: bytes
    reason: MqttReason
    detail: str


class Mapper:
    """Maps the messages of one pipeline (field templates are built once)."""

    def __init__(self, pipeline: MeterPipeline) -> None:
        source = pipeline.spec.source.mqtt
        if source is None:
            raise ValueError(f"MeterPipeline {pipeline.name} has no spec.source.mqtt; nothing to bridge")
        self.source: MqttSource = source
        self._level = source.meter_level
        payload = source.payload
        self._wide = payload.format == MqttPayloadFormat.wide.value
        self._timestamp_field = payload.timestamp_field
        self._meter_field = payload.meter_id_field
        # ',"measurement_type":"co2","series":"room","unit":"ppm","value":' per mapped field
        self._fields = [
            (
                key,
                ',"measurement_type":'
                + json.dumps(m.name)
                + ',"series":'
                + json.dumps(m.series)
                + ',"unit":'
                + json.dumps(m.unit)
                + ',"value":',
            )
            for key, m in pipeline.spec.wide_targets()
        ]
        self._field_names = ", ".join(key for key, _ in self._fields)
        self._heads: dict[str, str] = {}

    def meter_id(self, topic: str) -> str:
        """The meter id the topic carries ('' when its level is empty)."""
        levels = topic.split("/")
        return levels[self._level] if self._level < len(levels) else ""

    def map(self, topic: str, payload: bytes) -> Mapped | Refused:
        meter = self.meter_id(topic)
        if not meter:
            return Refused(topic.encode(), MqttReason.no_meter_id, f"level {self._level} of topic {topic!r} is empty")
        key = meter.encode()
        if not self._wide:
            named = _named_meter(payload, meter)
            if named is not None and named != meter:
                return Refused(key, MqttReason.meter_mismatch, f"meter_id {named!r} in a message on {topic!r}")
            return Mapped(key, [payload])
        try:
            document = json.loads(payload)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            return Refused(key, MqttReason.bad_json, f"not valid JSON: {exc}")
        if not isinstance(document, dict):
            return Refused(key, MqttReason.bad_json, f"a JSON {type(document).__name__}, not an object")
        if self._meter_field is not None:
            named = _meter_text(document.get(self._meter_field))
            if named is not None and named != meter:
                return Refused(
                    key, MqttReason.meter_mismatch, f"{self._meter_field} {named!r} in a message on {topic!r}"
                )
        stamp = document.get(self._timestamp_field)
        if stamp is None:
            return Refused(key, MqttReason.missing_field, f"no {self._timestamp_field!r} in the payload")
        head = self._heads.get(meter)
        if head is None:
            if len(self._heads) > 100_000:
                self._heads.clear()
            head = self._heads[meter] = '{"meter_id":' + json.dumps(meter) + ',"timestamp":'
        head += json.dumps(stamp)
        values = []
        for name, middle in self._fields:
            value = document.get(name)
            if value is None:
                continue
            if isinstance(value, bool):
                value = int(value)
            values.append((head + middle + json.dumps(value) + "}").encode())
        if not values:
            return Refused(key, MqttReason.no_measurements, f"none of the mapped fields ({self._field_names}) is there")
        return Mapped(key, values)


def _named_meter(payload: bytes, meter: str) -> str | None:
    """The meter a reading-contract payload names, when it is a JSON object naming one.

    Fast path (no parse): ``"meter_id"`` appears once, written ``"meter_id":"<the topic's meter>"``.
    """
    found = payload.count(b'"meter_id"')
    if found == 0:
        return None
    if found == 1 and b'"meter_id":' + json.dumps(meter).encode() in payload:
        return meter
    try:
        document = json.loads(payload)
    except ValueError:
        return None  # the job dead-letters it as bad_json
    return _meter_text(document.get("meter_id")) if isinstance(document, dict) else None


def _meter_text(value: object) -> str | None:
    """A meter id written as a string or an integer; None for anything else (the job judges it)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None
