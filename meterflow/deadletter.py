"""The dead-letter record: what a message that cannot become a reading turns into on ``<name>.readings.dlq``.

One JSON object per Kafka record::

    {"reason", "detail",
     "meter_id",           # the meter it belongs to, "" when nothing names a valid one (see below)
     "event_time",         # ISO 8601 UTC, the instant the reading names; null when it names none
     "payload",            # the original bytes: text when they are valid UTF-8, else base64
     "payload_encoding",   # "utf-8" or "base64"
     "payload_bytes",      # size of the original
     "payload_sha256",     # hex digest of the original (find duplicates, match a device's log)
     "payload_truncated",  # true when payload holds only the first 16 KiB
     "source",             # "mqtt" (the bridge) or "kafka" (the streaming job)
     "mqtt_topic",         # the MQTT topic the message came on (source mqtt; null or absent otherwise)
     "source_partition",   # source kafka only: where the record was in <name>.readings
     "source_offset",
     "ingest_time",        # ISO 8601 UTC, when the message was taken in
     "pipeline"}

``meter_id`` is a non-empty meter id of at most :data:`MAX_METER_ID_CHARS` characters, else
``""``. The job (``io.meterflow.stream.DeadLetter``) takes the ``meter_id`` the payload names
(none of a payload that is not UTF-8), else the record's Kafka key (producers key readings by
meter), and ``event_time`` from the payload's timestamp when it is an ISO 8601 instant with an
offset between 1900 and 2299; the bridge takes the meter id from the MQTT topic and reads no
timestamp (``event_time`` null). Both key the Kafka record by the meter id, so one meter's dead
letters keep to one partition (when it is ``""``, the job sends no key and the bridge the MQTT
topic). The serving sink copies the topic into
ClickHouse's ``dead_letters`` (migration 0005), where a meter's dead letters are counted per
local day of ``coalesce(event_time, ingest_time)``.

The MQTT bridge (:mod:`meterflow_bridge`) builds it here; the streaming job builds the same shape
in the JVM. Why a record went here is a reason word: the job's are
:class:`meterflow.reading.DlqReason`, the bridge's :class:`MqttReason` (same word for the same
problem: ``bad_json``, ``missing_field``).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from meterflow.reading import MAX_METER_ID_CHARS, format_timestamp

MAX_PAYLOAD_BYTES = 16 * 1024
"""A dead letter keeps at most this many bytes of the original payload (its size and digest are whole)."""


class DeadLetterSource(str, Enum):
    """Which stage dead-lettered the message."""

    mqtt = "mqtt"
    kafka = "kafka"


class MqttReason(str, Enum):
    """Why the MQTT bridge could not map a message to readings."""

    bad_json = "bad_json"
    """wide: the payload is not a JSON object."""
    missing_field = "missing_field"
    """wide: the timestamp field is missing (or null)."""
    no_meter_id = "no_meter_id"
    """The topic's meter-id level is empty."""
    meter_mismatch = "meter_mismatch"
    """The payload names another meter than the topic (reading: meter_id; wide: meterIdField)."""
    no_measurements = "no_measurements"
    """wide: none of the mapped fields is in the payload."""
    too_large = "too_large"
    """The message (or a reading made from it) is larger than Kafka accepts."""


@dataclass(frozen=True)
class DeadLetter:
    """One dead letter before encoding (see the module docstring for the fields)."""

    reason: str
    detail: str
    payload: bytes
    pipeline: str
    source: DeadLetterSource
    ingest_time: datetime
    mqtt_topic: str | None = None
    meter_id: str = ""
    """The meter the message belongs to ("" when unknown; a longer id than a meter id may be is dropped)."""

    def to_dict(self) -> dict[str, Any]:
        text, encoding, truncated = encode_payload(self.payload)
        return {
            "reason": self.reason,
            "detail": self.detail,
            "meter_id": self.meter_id if _meter_id_chars(self.meter_id) <= MAX_METER_ID_CHARS else "",
            "event_time": None,
            "payload": text,
            "payload_encoding": encoding,
            "payload_bytes": len(self.payload),
            "payload_sha256": hashlib.sha256(self.payload).hexdigest(),
            "payload_truncated": truncated,
            "source": DeadLetterSource(self.source).value,
            "mqtt_topic": self.mqtt_topic,
            "ingest_time": format_timestamp(self.ingest_time.astimezone(UTC)),
            "pipeline": self.pipeline,
        }

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False).encode()


def dead_letter(
    reason: str,
    detail: str,
    payload: bytes,
    *,
    pipeline: str,
    source: DeadLetterSource,
    mqtt_topic: str | None = None,
    ingest_time: datetime | None = None,
    meter_id: str = "",
) -> bytes:
    """The encoded dead letter (``ingest_time`` defaults to now; ``meter_id`` is the meter the
    message came from, when the writer knows it)."""
    if not reason:
        raise ValueError("a dead letter needs a reason word, e.g. bad_json")
    if ingest_time is not None and ingest_time.tzinfo is None:
        raise ValueError(f"ingest_time {ingest_time!r} has no UTC offset; pass an aware datetime")
    moment = ingest_time or datetime.now(UTC)
    return DeadLetter(reason, detail, payload, pipeline, source, moment, mqtt_topic, meter_id).to_json()


def _meter_id_chars(meter_id: str) -> int:
    """Its length as the job counts it (Java's UTF-16 code units)."""
    return len(meter_id.encode("utf-16-le", "surrogatepass")) // 2


def encode_payload(payload: bytes, limit: int = MAX_PAYLOAD_BYTES) -> tuple[str, str, bool]:
    """``(text, encoding, truncated)``: UTF-8 text when the whole payload is valid UTF-8, else base64.

    A payload longer than ``limit`` keeps its first ``limit`` bytes — for text cut back to the
    last whole character, so the kept part is still valid UTF-8.
    """
    truncated = len(payload) > limit
    kept = payload[:limit]
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(kept).decode("ascii"), "base64", truncated
    for cut in range(4):  # a UTF-8 character is at most 4 bytes
        try:
            return kept[: len(kept) - cut].decode("utf-8"), "utf-8", truncated
        except UnicodeDecodeError:
            continue
    raise AssertionError("a prefix of valid UTF-8 decodes once a partial character is cut")  # pragma: no cover


def decode_payload(letter: dict[str, Any]) -> bytes:
    """The (possibly truncated) original bytes of a decoded dead letter."""
    text = str(letter["payload"])
    if letter["payload_encoding"] == "base64":
        return base64.b64decode(text)
    return text.encode("utf-8")
