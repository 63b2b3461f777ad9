"""What the speed layer must produce, computed independently in plain Python.

From the simulator's record file (every record sent, in order) and ground truth — never from the
job's code: windows by flooring instants, register steps by walking each meter's readings in
event-time order, alerts by comparing values with the rules, duplicates by first arrival.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from meterflow.spec import MeterPipeline

RESET_RATIO = 0.1  # restated here on purpose: the test does not import the rule it checks

Key = tuple[str, str, str, datetime]  # meter, measurement, series, window start (naive UTC)


@dataclass
class Window:
    readings: int = 0
    total: float = 0.0
    lowest: float = float("inf")
    highest: float = float("-inf")
    consumption: float | None = None


@dataclass
class Expected:
    """Every figure the speed layer should produce for one simulation."""

    records: int = 0
    dlq_by_reason: dict[str, int] = field(default_factory=dict)
    unique: int = 0
    duplicates: int = 0
    late: list[dict[str, Any]] = field(default_factory=list)
    windows: dict[Key, Window] = field(default_factory=dict)
    alerts: set[tuple[str, str, str, datetime]] = field(default_factory=set)


def instant(text: str) -> datetime:
    """ISO 8601 with offset → naive UTC (how ClickHouse returns DateTime64 'UTC')."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).replace(tzinfo=None)


def compute(pipeline: MeterPipeline, record_file: Path, truth: dict[str, Any]) -> Expected:
    out = Expected()
    malformed = {m["payload"]: m["reason"] for m in truth["malformed"]}
    seen: set[tuple[str, str, str, datetime]] = set()
    unique: list[dict[str, Any]] = []
    late_payloads = set()
    lines = record_file.read_text().splitlines()
    for line in lines:
        record = json.loads(line)
        out.records += 1
        if record["kind"] == "malformed":
            reason = malformed[record["value"]]
            out.dlq_by_reason[reason] = out.dlq_by_reason.get(reason, 0) + 1
            continue
        reading = json.loads(record["value"])
        reading["at"] = instant(reading["timestamp"])
        identity = (reading["meter_id"], reading["measurement_type"], reading["series"], reading["at"])
        if identity in seen:
            out.duplicates += 1
            continue
        seen.add(identity)
        unique.append(reading)
        if record["kind"] == "late":
            late_payloads.add(record["value"])
            out.late.append(reading)
    out.unique = len(unique)
    late_ids = {id(r) for r in out.late}
    on_time = [r for r in unique if id(r) not in late_ids]
    out.windows = _windows(pipeline, on_time)
    out.alerts = _alerts(pipeline, unique)
    return out


def _window_starts(pipeline: MeterPipeline, at: datetime) -> list[datetime]:
    w = pipeline.spec.windows
    epoch_ms = int(at.replace(tzinfo=UTC).timestamp() * 1000)
    last = epoch_ms - epoch_ms % w.slide_ms
    starts = []
    start = last
    while start > epoch_ms - w.size_ms:
        starts.append(datetime.fromtimestamp(start / 1000, UTC).replace(tzinfo=None))
        start -= w.slide_ms
    return starts


def _windows(pipeline: MeterPipeline, readings: list[dict[str, Any]]) -> dict[Key, Window]:
    kinds = {(m.name, m.series): m.kind for m in pipeline.spec.measurements}
    step: dict[int, float] = {}
    by_series: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in readings:
        by_series[(r["meter_id"], r["measurement_type"], r["series"])].append(r)
    for (_, name, series), rows in by_series.items():
        if kinds[(name, series)] != "register":
            continue
        previous = None
        for r in sorted(rows, key=lambda x: x["at"]):
            value = float(r["value"])
            if previous is None:
                step[id(r)] = 0.0
            elif value < previous and value <= previous * RESET_RATIO:
                step[id(r)] = value
            else:
                step[id(r)] = value - previous
            previous = value
    windows: dict[Key, Window] = {}
    for r in readings:
        kind = kinds[(r["measurement_type"], r["series"])]
        value = float(r["value"])
        for start in _window_starts(pipeline, r["at"]):
            w = windows.setdefault((r["meter_id"], r["measurement_type"], r["series"], start), Window())
            w.readings += 1
            w.total += value
            w.lowest = min(w.lowest, value)
            w.highest = max(w.highest, value)
            part = value if kind == "interval" else step.get(id(r)) if kind == "register" else None
            if part is not None:
                w.consumption = (w.consumption or 0.0) + part
    return windows


def _alerts(pipeline: MeterPipeline, readings: list[dict[str, Any]]) -> set[tuple[str, str, str, datetime]]:
    """The threshold alerts' episodes, by the time each opened: walking every unique reading in
    arrival order, a breach opens an episode unless one is open, a reading that does not breach
    closes it (no clearThreshold in these manifests)."""
    compare = {
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        "==": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
    }
    rules = [r for r in pipeline.spec.rules if r.kind == "threshold"]
    open_since: dict[tuple[str, str, str], datetime] = {}
    alerts = set()
    for r in readings:
        for rule in rules:
            if r["measurement_type"] != rule.measurement:
                continue
            key = (r["meter_id"], rule.name, r["series"])
            if compare[rule.condition](float(r["value"]), rule.threshold):
                if key not in open_since:
                    open_since[key] = r["at"]
                    alerts.add((*key, r["at"]))
            else:
                open_since.pop(key, None)
    return alerts


ONE_PARTITION = {"partitions": 1}
"""The readings topic of a pipeline whose late readings a test predicts exactly.

Late means behind the watermark when read, and the watermark is the slowest partition's: with
several partitions, which injected reading is late depends on how far the source has read each
partition (Flink's semantics, not a fault). One partition makes the reading order the record file's.
"""
