"""The JVM daily job's Python side (pure): the plan it is handed and the decoding of its row blocks."""

from __future__ import annotations

import json
import math
import struct
from datetime import date
from pathlib import Path

from flink_jobs.batch import daily
from flink_jobs.batch.daily import DAILY_COLUMNS
from flink_jobs.batch.days import day_bounds
from meterflow.stack.endpoints import IcebergLocation
from tests.conftest import unique_pipeline

LAKE = IcebergLocation("meterflow", "sqlite:///tmp/cat.db", "file:///tmp/wh")
CODES = {">i1": "b", ">i2": "h", ">i4": "i", ">i8": "q", ">f8": "d"}
"""struct's code for each of the block's numeric column types."""


def _plan(tmp_path: Path) -> dict[str, object]:
    water = unique_pipeline("water-meters")
    scan = daily.Scan(days=(date(2024, 4, 30), date(2024, 5, 1)), snapshot_id=42)
    return daily.plan(water, LAKE, "ns", scan, tmp_path / "rows.bin")


def test_the_plan_is_json_with_plain_kinds_and_local_day_bounds(tmp_path: Path) -> None:
    water = unique_pipeline("water-meters")
    plan = _plan(tmp_path)
    assert json.loads(json.dumps(plan)) == plan
    zone = water.spec.time_zone
    april_30, may_1 = day_bounds(date(2024, 4, 30), zone), day_bounds(date(2024, 5, 1), zone)
    assert plan["day_starts_ms"] == [april_30[0], may_1[0], may_1[1]]
    kinds = {m["name"]: m["kind"] for m in plan["measurements"]}  # type: ignore[attr-defined]
    assert kinds["Pulse1"] == "interval" and kinds["Pulse1_Total"] == "register" and kinds["Battery"] == "gauge"
    assert plan["snapshot_id"] == 42 and plan["scan_days"] == ["2024-04-30", "2024-05-01"]


def test_no_blocks_make_the_empty_frame(tmp_path: Path) -> None:
    out = tmp_path / "rows.bin"
    out.write_bytes(b"")
    frame = daily.read_rows(out, _plan(tmp_path))
    assert list(frame.columns) == list(DAILY_COLUMNS) and frame.empty


def _strings(values: list[str]) -> bytes:
    encoded = [v.encode() for v in values]
    return b"".join(struct.pack(">i", len(e)) for e in encoded) + b"".join(encoded)


def test_a_block_decodes_to_the_daily_columns(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    names = [m["name"] for m in plan["measurements"]]  # type: ignore[attr-defined]
    pulse, battery = names.index("Pulse1"), names.index("Battery")
    n = 2
    body = struct.pack(">ii", daily._MAGIC, n) + _strings(["m-1", "m-ü"])
    fixed = {
        "measurement": [pulse, battery], "day": [1, 0], "unit": ["P1", "V"], "readings": [96, 3],
        "sum": [814.0, 6.9], "avg": [814.0 / 96, 2.3], "min": [0.0, 2.2], "max": [40.0, 2.4],
        "consumption": [814.0, 0.0], "has_consumption": [1, 0], "first_ms": [1, 2], "last_ms": [3, 4],
        "first_value": [5.0, 2.2], "last_value": [7.0, 2.4], "unanchored": [0, 1], "resets": [0, 0],
        "negative_steps": [0, 0], "negative_total": [0.0, 0.0], "max_gap_ms": [900_000, 0], "has_gap": [1, 0],
        "late_readings": [2, 0], "duplicates": [1, 0], "clock_ahead": [0, 2], "max_ahead_ms": [-4_000, 125_000],
        "has_arrival": [1, 1], "max_flat_ms": [0, 3_600_000],
    }  # fmt: skip
    for name, dtype in daily._FIXED:
        if dtype == "str":
            body += _strings(fixed[name])  # type: ignore[arg-type]
        else:
            body += struct.pack(f">{n}{CODES[dtype]}", *fixed[name])
    out = tmp_path / "rows.bin"
    out.write_bytes(struct.pack(">i", len(body)) + body)
    frame = daily.read_rows(out, plan)
    assert list(frame.columns) == list(DAILY_COLUMNS)
    first, second = frame.to_dict("records")
    assert first["meter_id"] == "m-1" and second["meter_id"] == "m-ü"
    assert (first["measurement_type"], first["kind"], first["day"]) == ("Pulse1", "interval", date(2024, 5, 1))
    assert (second["measurement_type"], second["kind"], second["day"]) == ("Battery", "gauge", date(2024, 4, 30))
    assert first["consumption"] == 814.0 and math.isnan(second["consumption"])
    assert first["max_gap_ms"] == 900_000 and math.isnan(second["max_gap_ms"])
    assert (first["duplicates"], first["clock_ahead"], first["max_ahead_ms"], first["max_flat_ms"]) == (1, 0, -4_000, 0)
    assert (second["duplicates"], second["clock_ahead"], second["max_ahead_ms"]) == (0, 2, 125_000)
    assert second["max_flat_ms"] == 3_600_000
    assert (first["readings"], first["late_readings"], second["unanchored"]) == (96, 2, 1)
