"""The dead-letter record (meterflow.deadletter): every field, exactly, for text, binary and long payloads."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from meterflow.deadletter import (
    MAX_PAYLOAD_BYTES,
    DeadLetterSource,
    MqttReason,
    dead_letter,
    decode_payload,
    encode_payload,
)

AT = datetime(2026, 1, 30, 10, 30, 45, 500_000, tzinfo=UTC)


def _letter(payload: bytes, **extra: object) -> dict[str, object]:
    options: dict[str, object] = {"pipeline": "smart-building", "source": DeadLetterSource.mqtt, "ingest_time": AT}
    options |= extra
    loaded: dict[str, object] = json.loads(dead_letter("bad_json", "not valid JSON", payload, **options))  # type: ignore[arg-type]
    return loaded


def test_a_text_payload_is_kept_as_text() -> None:
    payload = b'{"room_id":"room_1","timestamp":"2026-01-30T10:30:45.500Z","temperature":19.'
    assert _letter(payload, mqtt_topic="buildings/room_1/telemetry", meter_id="room_1") == {
        "reason": "bad_json",
        "detail": "not valid JSON",
        "meter_id": "room_1",
        "event_time": None,
        "payload": payload.decode(),
        "payload_encoding": "utf-8",
        "payload_bytes": len(payload),
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
        "payload_truncated": False,
        "source": "mqtt",
        "mqtt_topic": "buildings/room_1/telemetry",
        "ingest_time": "2026-01-30T10:30:45.500Z",
        "pipeline": "smart-building",
    }


def test_bytes_that_are_not_utf8_are_base64() -> None:
    payload = bytes([0xFF, 0xFE, 0x00, 0x41, 0xC3])
    letter = _letter(payload)
    assert (letter["payload"], letter["payload_encoding"]) == (base64.b64encode(payload).decode(), "base64")
    assert (letter["payload_bytes"], letter["payload_truncated"]) == (5, False)
    assert decode_payload(letter) == payload


def test_a_long_payload_keeps_its_first_16_kib_and_its_whole_size_and_digest() -> None:
    payload = b"x" * (MAX_PAYLOAD_BYTES + 100)
    letter = _letter(payload)
    assert letter["payload"] == "x" * MAX_PAYLOAD_BYTES
    assert (letter["payload_bytes"], letter["payload_truncated"]) == (MAX_PAYLOAD_BYTES + 100, True)
    assert letter["payload_sha256"] == hashlib.sha256(payload).hexdigest()


def test_text_is_cut_at_a_whole_character() -> None:
    payload = b"a" * (MAX_PAYLOAD_BYTES - 1) + "€".encode() * 2  # the first € straddles the limit
    text, encoding, truncated = encode_payload(payload)
    assert (text, encoding, truncated) == ("a" * (MAX_PAYLOAD_BYTES - 1), "utf-8", True)


def test_a_long_binary_payload_keeps_its_first_16_kib_in_base64() -> None:
    payload = b"\xff" * (MAX_PAYLOAD_BYTES * 2)
    letter = _letter(payload)
    assert decode_payload(letter) == b"\xff" * MAX_PAYLOAD_BYTES
    assert (letter["payload_encoding"], letter["payload_truncated"]) == ("base64", True)


def test_the_job_source_has_no_mqtt_topic_and_times_are_utc() -> None:
    brisbane = timezone(timedelta(hours=10))
    letter = _letter(b"{}", source=DeadLetterSource.kafka, ingest_time=AT.astimezone(brisbane))
    assert (letter["source"], letter["mqtt_topic"], letter["ingest_time"]) == (
        "kafka",
        None,
        "2026-01-30T10:30:45.500Z",
    )


def test_a_meter_id_is_kept_when_it_could_be_one() -> None:
    """Empty unless given; longer than the job allows (128 UTF-16 units, as Java counts): empty."""
    assert (_letter(b"{}")["meter_id"], _letter(b"{}")["event_time"]) == ("", None)
    assert _letter(b"{}", meter_id="m" * 128)["meter_id"] == "m" * 128
    assert _letter(b"{}", meter_id="m" * 129)["meter_id"] == ""
    assert _letter(b"{}", meter_id="\U0001f4a7" * 64)["meter_id"] == "\U0001f4a7" * 64  # 2 units each
    assert _letter(b"{}", meter_id="\U0001f4a7" * 65)["meter_id"] == ""


def test_bad_arguments_are_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="needs a reason word"):
        dead_letter("", "x", b"", pipeline="p", source=DeadLetterSource.mqtt)
    with pytest.raises(ValueError, match="no UTC offset"):
        dead_letter("bad_json", "x", b"", pipeline="p", source=DeadLetterSource.mqtt, ingest_time=datetime(2026, 1, 1))


def test_reason_words_shared_with_the_job_are_the_same_words() -> None:
    from meterflow.reading import DlqReason

    assert MqttReason.bad_json.value == DlqReason.bad_json.value
    assert MqttReason.missing_field.value == DlqReason.missing_field.value
