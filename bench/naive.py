"""The naive baseline a user might write: a kafka-python poll loop doing the same 5-minute windows
and threshold alerts in Python (dicts, a watermark, closed windows written as Parquet)."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.common import Phase, monitored

WINDOW_MS = 300_000
GRACE_MS = 60_000
RULES = {
    "Pulse1": (">", 500.0, "HIGH_FLOW"),
    "Battery": ("<", 3.0, "LOW_BATTERY"),
    "DeviceTemperature": (">", 50.0, "HIGH_TEMPERATURE"),
}


def _flush(rows: list[dict[str, Any]], folder: Path, part: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if rows:
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows), folder / f"part-{part:05d}.parquet")


def naive_loop(bootstrap: str, topic: str, out: Path, limit: int, max_seconds: float) -> dict[str, Any]:
    """Consume up to ``limit`` readings (or ``max_seconds``); counts and readings/s."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-naive-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=10_000,
        fetch_max_bytes=64 << 20,
        max_partition_fetch_bytes=16 << 20,
    )
    windows: dict[tuple[str, str, str, int], list[float]] = {}
    closed: list[dict[str, Any]] = []
    alerts: list[dict[str, Any]] = []
    consumed = bad = parts = 0
    watermark = -(1 << 62)
    newest = watermark
    started = time.monotonic()
    idle_polls = 0
    while consumed < limit and time.monotonic() - started < max_seconds and idle_polls < 10:
        batch = consumer.poll(timeout_ms=500)
        if not batch:
            idle_polls += 1
            continue
        idle_polls = 0
        for records in batch.values():
            for record in records:
                consumed += 1
                try:
                    r = json.loads(record.value)
                    event = int(datetime.fromisoformat(r["timestamp"]).timestamp() * 1000)
                    value = float(r["value"])
                    key = (str(r["meter_id"]), r["measurement_type"], r["series"], event - event % WINDOW_MS)
                except (ValueError, KeyError, TypeError, AttributeError):
                    bad += 1
                    continue
                newest = max(newest, event)
                if event <= watermark:
                    continue  # late: its window has closed
                acc = windows.get(key)
                if acc is None:
                    windows[key] = [1, value, value, value]
                else:
                    acc[0] += 1
                    acc[1] += value
                    acc[2] = min(acc[2], value)
                    acc[3] = max(acc[3], value)
                rule = RULES.get(key[1])
                if rule and (value > rule[1] if rule[0] == ">" else value < rule[1]):
                    alerts.append({"rule": rule[2], "meter_id": key[0], "event_ms": event, "value": value})
        watermark = newest - GRACE_MS
        for key in [k for k in windows if k[3] + WINDOW_MS <= watermark]:
            n, total, low, high = windows.pop(key)
            closed.append(
                {
                    "meter_id": key[0],
                    "measurement_type": key[1],
                    "series": key[2],
                    "window_start_ms": key[3],
                    "readings": n,
                    "sum": total,
                    "avg": total / n,
                    "min": low,
                    "max": high,
                }
            )
        if len(closed) >= 200_000:
            _flush(closed, out / "windows", parts)
            parts += 1
            closed = []
    seconds = time.monotonic() - started
    _flush(closed, out / "windows", parts)
    _flush(alerts, out / "alerts", 0)
    consumer.close()
    return {
        "readings": consumed,
        "unparseable": bad,
        "seconds": round(seconds, 2),
        "readings_per_s": round(consumed / seconds) if seconds else 0,
        "alerts": len(alerts),
        "open_windows_at_end": len(windows),
    }


def naive_phase(
    phase: Phase, out: Path, bootstrap: str, topic: str, limit: int, max_seconds: float, broker_pid: int = 0
) -> None:
    """Run the loop in this process (its CPU is the harness's own)."""
    import os

    with monitored(phase) as monitor:
        monitor.watch(os.getpid(), tree=False, label="python naive loop (harness)", existing=True)
        if broker_pid:
            monitor.watch(broker_pid, tree=False, label="java kafka.Kafka (broker)", existing=True)
        phase.figures |= naive_loop(bootstrap, topic, out, limit, max_seconds)
    phase.notes.append(f"stops after {limit:,} readings or {max_seconds:.0f}s; kafka-python, json, one thread")
