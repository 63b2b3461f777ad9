"""The bridge's mapping (meterflow_bridge.mapping) and the MQTT part of the spec, without any broker:
exact records for each payload format, and the reason for each message that cannot be mapped."""

from __future__ import annotations

import json
from typing import Any

import pytest

from meterflow.deadletter import MqttReason
from meterflow.errors import SpecError
from meterflow.spec import MeterPipeline, parse_manifest
from meterflow_bridge.mapping import Mapped, Mapper, Refused
from tests.conftest import example_manifest

SEED_002 = {
    "room_id": "room_1",
    "timestamp": "2026-01-30T10:30:45.500Z",
    "temperature": 19.2,
    "humidity": 35.5,
    "co2_ppm": 450,
    "light_lux": 0,
    "occupancy_count": 0,
    "motion_detected": False,
    "energy_kwh": 2.3,
    "air_quality_index": 95,
}


def building(**mqtt: Any) -> MeterPipeline:
    document = example_manifest("smart-building-mqtt")
    document["spec"]["source"]["mqtt"] |= mqtt
    return parse_manifest(document)


def reading_pipeline(**mqtt: Any) -> MeterPipeline:
    document = example_manifest("water-meters")
    document["spec"]["source"]["mqtt"] = {"topic": "meters/+/up"} | mqtt
    return parse_manifest(document)


def test_seed_002_wide_message_becomes_one_reading_per_metric() -> None:
    mapped = Mapper(building()).map("buildings/room_1/telemetry", json.dumps(SEED_002).encode())
    assert isinstance(mapped, Mapped)
    assert mapped.key == b"room_1"
    head = '{"meter_id":"room_1","timestamp":"2026-01-30T10:30:45.500Z","measurement_type":'
    assert [v.decode() for v in mapped.values] == [
        head + '"temperature","series":"room","unit":"C","value":19.2}',
        head + '"humidity","series":"room","unit":"%","value":35.5}',
        head + '"co2","series":"room","unit":"ppm","value":450}',
        head + '"light","series":"room","unit":"lx","value":0}',
        head + '"occupancy","series":"room","unit":"people","value":0}',
        head + '"motion","series":"room","unit":"event","value":0}',
        head + '"energy","series":"room","unit":"kWh","value":2.3}',
        head + '"air_quality","series":"room","unit":"AQI","value":95}',
    ]


def test_wide_fields_missing_or_null_are_left_out_and_values_pass_as_sent() -> None:
    payload = {"timestamp": "2026-01-30T20:30:45.500+10:00", "co2_ppm": "450", "humidity": None, "extra": 1,
               "motion_detected": True, "temperature": float("nan")}  # fmt: skip
    mapped = Mapper(building()).map("buildings/room_2/telemetry", json.dumps(payload).encode())
    assert isinstance(mapped, Mapped)
    assert [json.loads(v.replace(b"NaN", b'"NaN"')) for v in mapped.values] == [
        {"meter_id": "room_2", "timestamp": "2026-01-30T20:30:45.500+10:00", "measurement_type": "temperature",
         "series": "room", "unit": "C", "value": "NaN"},
        {"meter_id": "room_2", "timestamp": "2026-01-30T20:30:45.500+10:00", "measurement_type": "co2",
         "series": "room", "unit": "ppm", "value": "450"},  # a string: the job dead-letters it (wrong_type)
        {"meter_id": "room_2", "timestamp": "2026-01-30T20:30:45.500+10:00", "measurement_type": "motion",
         "series": "room", "unit": "event", "value": 1},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("topic", "payload", "reason", "detail"),
    [
        ("buildings/room_1/telemetry", b'{"timestamp": "2026', MqttReason.bad_json, "not valid JSON: "),
        ("buildings/room_1/telemetry", b"\xff\xfe", MqttReason.bad_json, "not valid JSON: "),
        ("buildings/room_1/telemetry", b"[1, 2]", MqttReason.bad_json, "a JSON list, not an object"),
        ("buildings/room_1/telemetry", b'{"temperature": 1}', MqttReason.missing_field, "no 'timestamp' in"),
        ("buildings/room_1/telemetry", b'{"timestamp": "t", "x": 1}', MqttReason.no_measurements,
         "none of the mapped fields (temperature, humidity, co2_ppm"),
        ("buildings/room_1/telemetry", b'{"room_id": "room_9", "timestamp": "t", "co2_ppm": 1}',
         MqttReason.meter_mismatch, "room_id 'room_9' in a message on 'buildings/room_1/telemetry'"),
        ("buildings//telemetry", b"{}", MqttReason.no_meter_id, "level 1 of topic 'buildings//telemetry' is empty"),
    ],
)  # fmt: skip
def test_wide_messages_that_cannot_be_mapped(topic: str, payload: bytes, reason: MqttReason, detail: str) -> None:
    refused = Mapper(building()).map(topic, payload)
    assert isinstance(refused, Refused)
    assert refused.reason == reason
    assert refused.detail.startswith(detail), refused.detail


def test_reading_format_forwards_the_bytes_keyed_by_the_topic_meter() -> None:
    mapper = Mapper(reading_pipeline())
    payload = b'{"meter_id":"83008","timestamp":"2022-07-13T07:30:01.000Z","measurement_type":"Pulse1"}'
    assert mapper.map("meters/83008/up", payload) == Mapped(b"83008", [payload])
    numeric = b'{"meter_id":83008,"value":1}'
    assert mapper.map("meters/83008/up", numeric) == Mapped(b"83008", [numeric])
    broken = b'{"meter_id":"83008", "val'  # the job dead-letters it as bad_json
    assert mapper.map("meters/83008/up", broken) == Mapped(b"83008", [broken])
    twice = b'{"meter_id":"83008","meter_id":"99"}'  # JSON keeps the last: not the topic's meter
    assert mapper.map("meters/83008/up", twice) == Refused(
        b"83008", MqttReason.meter_mismatch, "meter_id '99' in a message on 'meters/83008/up'"
    )
    other = mapper.map("meters/83008/up", b'{"meter_id":"99","value":1}')
    assert other == Refused(b"83008", MqttReason.meter_mismatch, "meter_id '99' in a message on 'meters/83008/up'")


def test_the_meter_level_can_be_any_plus_level() -> None:
    pipeline = reading_pipeline(topic="site/+/meter/+/#", meterIdLevel=3)
    source = pipeline.spec.source.mqtt
    assert source is not None
    assert source.topic_for("m-7") == "site/x/meter/m-7/x"
    assert Mapper(pipeline).map("site/a/meter/m-7/up/v1", b"{}") == Mapped(b"m-7", [b"{}"])


@pytest.mark.parametrize(
    ("mqtt", "message"),
    [
        ({"topic": "meters/up"}, "spec.source.mqtt.topic: 'meters/up' has no + level for the meter id"),
        ({"topic": "meters/m+/up"}, "has a wildcard inside level 'm+'"),
        ({"topic": "meters/#/+"}, "has # before its last level"),
        ({"topic": "a/+/b", "meterIdLevel": 2}, "spec.source.mqtt.meterIdLevel: 2 is not a + level of 'a/+/b'"),
        ({"topic": "a/+", "qos": 2}, "spec.source.mqtt.qos: 2: input should be less than or equal to 1"),
        ({"topic": "a/+", "url": "http://broker"}, "spec.source.mqtt.url: 'http://broker' does not match"),
        ({"topic": "a/+", "payload": {"format": "wide"}}, "spec.source.mqtt.payload.fields: is required when"),
        ({"topic": "a/+", "payload": {"fields": [{"field": "a", "measurement": "Pulse1"}]}},
         "spec.source.mqtt.payload.fields: is only for payload.format wide"),
        ({"topic": "a/+", "payload": {"format": "wide", "fields": [{"field": "a", "measurement": "Flow"}]}},
         "spec.source.mqtt.payload.fields[0].measurement: Flow is not a measurement of this pipeline"),
        ({"topic": "a/+", "payload": {"format": "wide", "fields": [{"field": "a", "measurement": "Battery"},
                                                                  {"field": "a", "measurement": "Pulse1"}]}},
         "spec.source.mqtt.payload.fields[1].field: 'a' is mapped twice"),
    ],
)  # fmt: skip
def test_bad_mqtt_specs_name_the_field_and_the_fix(mqtt: dict[str, Any], message: str) -> None:
    document = example_manifest("water-meters")
    document["spec"]["source"]["mqtt"] = mqtt
    with pytest.raises(SpecError) as error:
        parse_manifest(document)
    assert message in str(error.value), str(error.value)
