"""Independent checks for the simulator tests: the reading contract, rules, and reading a topic back.

:func:`classify` re-states the job's validation (docs/simulator.md, meterflow/reading.py) without
using the simulator's code, so the tests compare the simulator's ground truth with a second
opinion. Imported by the test modules of tests/simulator.
"""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime, timedelta

from kafka import KafkaConsumer

from meterflow.spec.durations import to_millis
from meterflow.spec.model import MeterPipeline

FIELDS = ("meter_id", "timestamp", "measurement_type", "series", "unit", "value")


def _id_like(value: object) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


MAX_METER_ID = 128  # restated: the job's limit (flink_jobs/streaming/plan.py), not imported


def classify(data: bytes, pipeline: MeterPipeline, arrival: datetime | None = None) -> str | None:
    """The dead-letter reason of the payload ``data`` arriving at ``arrival`` (default: now) under
    ``pipeline``, or None for a valid reading."""
    try:
        payload = data.decode()
    except UnicodeDecodeError:
        return "bad_encoding"
    if not payload:
        return "bad_json"
    try:
        obj = json.loads(payload)
    except ValueError:
        return "bad_json"
    if not isinstance(obj, dict):
        return "bad_json"
    for name in ("meter_id", "measurement_type", "series"):
        if obj.get(name) is not None and not _id_like(obj[name]):
            return "wrong_type"
    for name in ("timestamp", "unit"):
        if obj.get(name) is not None and not isinstance(obj[name], str):
            return "wrong_type"
    value = obj.get("value")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        return "wrong_type"
    if any(obj.get(name) in (None, "") for name in FIELDS if name != "value"):
        return "missing_field"
    if value is None:
        return "missing_value" if "value" in obj else "missing_field"
    value = float(value)
    if not math.isfinite(value):
        return "not_finite"
    stamp = obj["timestamp"]
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return "bad_timestamp"
    if moment.tzinfo is None or "T" not in stamp:
        return "bad_timestamp"
    spec = next(
        (m for m in pipeline.spec.measurements if (m.name, m.series) == (obj["measurement_type"], obj["series"])), None
    )
    if spec is None:
        return "unknown_measurement"
    if spec.unit != obj["unit"]:
        return "unit_mismatch"
    if (spec.min is not None and value < spec.min) or (spec.max is not None and value > spec.max):
        return "out_of_range"
    if len(str(obj["meter_id"])) > MAX_METER_ID:
        return "bad_meter_id"
    now = arrival or datetime.now(UTC)
    if moment > now + timedelta(milliseconds=to_millis(pipeline.spec.source.max_clock_skew)):
        return "future_timestamp"
    if moment < now - timedelta(milliseconds=to_millis(pipeline.spec.source.max_reading_age)):
        return "too_old"
    return None


def fired(pipeline: MeterPipeline, measurement: str, value: float) -> list[str]:
    """Names of the threshold rules a valid reading of ``measurement`` triggers."""
    ops = {
        ">": value.__gt__,
        ">=": value.__ge__,
        "<": value.__lt__,
        "<=": value.__le__,
        "==": value.__eq__,
        "!=": value.__ne__,
    }
    return [
        r.name
        for r in pipeline.spec.threshold_rules()
        if r.measurement == measurement and r.condition is not None and ops[r.condition](r.threshold or 0.0)
    ]


def consume(bootstrap: str, topic: str, expected: int, timeout_s: float = 60.0) -> list[tuple[bytes, bytes]]:
    """Every record of ``topic`` from the start: waits for ``expected``, then 2 s more for extras."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    out: list[tuple[bytes, bytes]] = []
    try:
        deadline = time.monotonic() + timeout_s
        settle: float | None = None
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=500, max_records=100_000)
            for records in batch.values():
                out.extend((r.key, r.value) for r in records)
            if len(out) >= expected:
                settle = settle or time.monotonic() + 2.0
                if time.monotonic() >= settle:
                    break
    finally:
        consumer.close()
    return out
