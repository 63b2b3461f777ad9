"""The batch job on Flink over a lake written by hand: exact daily figures on the trickiest day.

Readings go straight into the Iceberg table with pyiceberg (no broker, no streaming job), on and
around 30 October 2016 in Europe/Madrid — a 25-hour day whose 02:00-03:00 happens twice — with
a duplicate, a reset, a negative step, a late reading, both battery scales and a meter silent for
days. daily_stats is seeded as if 25-29 Oct had been recomputed (m2's reading of 25 Oct); one
batch run then recomputes 30-31 Oct, whose first register steps are anchored on the margin day
(m1) and on daily_stats (m2).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from flink_jobs.batch import store
from meterflow.spec import MeterPipeline, names_for
from meterflow.stack.broker import BrokerInfo
from meterflow.stack.endpoints import clickhouse_dsn, iceberg_location
from meterflow_clickhouse.client import session
from meterflow_clickhouse.schema import ensure_schema
from meterflow_iceberg.catalog import open_catalog
from meterflow_iceberg.maintenance import newest_event_ms
from meterflow_iceberg.tables import ensure_readings_table
from tests.batch.rows import daily
from tests.batch.support import meterflow, rows
from tests.conftest import unique_pipeline, write_manifest

pytestmark = [pytest.mark.integration, pytest.mark.flink]

ZONE = "Europe/Madrid"


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


READINGS: list[tuple[str, str, str, str, float, str, bool, int]] = [
    # meter, measurement, series, unit, value, event time, late, kafka offset (arrival order)
    ("m1", "Pulse1_Total", "T1", "L", 1000.0, "2016-10-29T23:30:00+02:00", False, 1),  # the margin day
    ("m1", "Pulse1_Total", "T1", "L", 1010.0, "2016-10-30T02:30:00+02:00", False, 2),  # 02:30 summer time
    ("m1", "Pulse1_Total", "T1", "L", 1010.0, "2016-10-30T02:30:00+01:00", False, 3),  # 02:30 again, winter time
    ("m1", "Pulse1_Total", "T1", "L", 1100.0, "2016-10-30T23:30:00+01:00", False, 4),
    ("m1", "Pulse1_Total", "T1", "L", 9999.0, "2016-10-30T23:30:00+01:00", False, 9),  # a duplicate, later: dropped
    ("m1", "Pulse1_Total", "T1", "L", 50.0, "2016-10-31T08:00:00+01:00", False, 5),  # reset (<= 10 % of 1100)
    ("m1", "Pulse1_Total", "T1", "L", 45.0, "2016-10-31T09:00:00+01:00", False, 6),  # negative step
    ("m1", "Pulse1_Total", "T1", "L", 60.0, "2016-10-31T10:00:00+01:00", True, 7),  # late: the batch counts it
    ("m1", "Pulse1", "P1", "L", 5.0, "2016-10-30T10:00:00+01:00", False, 10),
    ("m1", "Pulse1", "P1", "L", 7.0, "2016-10-30T11:00:00+01:00", False, 11),
    ("m1", "Battery", "V", "V", 64.0, "2016-10-30T12:00:00+01:00", False, 12),  # second scale: 3.0 V
    ("m1", "Battery", "V", "V", 3.5, "2016-10-30T13:00:00+01:00", False, 13),
    ("m1", "Battery", "V", "V", 1.9, "2016-10-31T12:00:00+01:00", False, 14),  # low
    ("m1", "DeviceTemperature", "T", "C", 20.0, "2016-10-30T00:00:00+02:00", False, 15),  # first instant of the day
    ("m2", "Pulse1_Total", "T1", "L", 500.0, "2016-10-25T12:00:00+02:00", False, 20),
    ("m2", "Pulse1_Total", "T1", "L", 520.0, "2016-10-31T12:00:00+01:00", False, 21),  # 6 days later
]


def _write(manifest: Path, folder: Path) -> None:
    """Append READINGS to the lake in one Flink batch job (one Iceberg commit)."""
    ingest_ms = int(datetime(2016, 11, 1, tzinfo=UTC).timestamp()) * 1000
    data = [
        [meter, measurement, series, unit, value, _ms(at), ingest_ms + offset, 0, offset, late]
        for meter, measurement, series, unit, value, at, late, offset in READINGS
    ]
    rows_file = folder / "readings.json"
    rows_file.write_text(json.dumps(data))
    subprocess.run(
        [sys.executable, "-m", "tests.batch.lakewriter", str(manifest), str(rows_file)],
        check=True, timeout=300, env=os.environ.copy(), capture_output=True,
    )  # fmt: skip


def _seed(pipeline: MeterPipeline) -> None:
    """daily_stats as a recompute of 25-29 Oct would leave it: m2's only reading, on 25 Oct."""
    db = names_for(pipeline).clickhouse_database
    seeded = [date(2016, 10, d) for d in range(25, 30)]
    m2 = daily(
        {"meter_id": "m2", "measurement_type": "Pulse1_Total", "series": "T1", "kind": "register",
         "day": date(2016, 10, 25), "readings": 1, "consumption": 0.0, "first_value": 500.0, "last_value": 500.0,
         "first_ms": _ms("2016-10-25T12:00:00+02:00"), "last_ms": _ms("2016-10-25T12:00:00+02:00")}
    )  # fmt: skip
    with session(clickhouse_dsn(pipeline)) as client:
        ensure_schema(client, pipeline)
        store.replace_days(
            client, db, "daily_stats", column="day", columns=store.DAILY_COLUMNS, rows=store.daily_rows(m2),
            days=seeded, run_id="seed",
        )  # fmt: skip
        store.record_days(
            client, db, seeded, run_id="seed", snapshot_id=1, snapshot_time=store.from_ms(0),
            computed_at=datetime.now(UTC),
        )  # fmt: skip


@pytest.fixture(scope="module")
def lake(broker: BrokerInfo, tmp_path_factory: pytest.TempPathFactory) -> MeterPipeline:
    pipeline = unique_pipeline("water-meters", timeZone=ZONE, batch={"noDataHours": 48})
    folder = tmp_path_factory.mktemp("lake")
    manifest = write_manifest(pipeline, folder)
    _write(manifest, folder)
    _seed(pipeline)
    meterflow("batch", "-f", str(manifest), "--from", "2016-10-30", "--to", "2016-10-31")
    return pipeline


def _daily(pipeline: MeterPipeline, day: str) -> dict[tuple[str, str], tuple[Any, ...]]:
    got = rows(
        pipeline,
        f"""SELECT meter_id, measurement_type, readings, consumption, round(min, 6), round(max, 6), round(avg, 6),
                   resets, negative_steps, negative_total, late_readings, first_value, last_value,
                   toUnixTimestamp64Milli(first_time), toUnixTimestamp64Milli(last_time)
            FROM daily_stats WHERE day = '{day}'""",
    )
    return {(r[0], r[1]): r[2:] for r in got}


def _ms(text: str) -> int:
    return int(_at(text).timestamp()) * 1000


def test_the_25_hour_day(lake: MeterPipeline) -> None:
    day = _daily(lake, "2016-10-30")
    assert day == {
        # 1000 (29 Oct, the margin) -> 1010 -> 1010 -> 1100; the later duplicate is dropped
        ("m1", "Pulse1_Total"): (3, 100.0, 1010.0, 1100.0, 1040.0, 0, 0, 0.0, 0, 1010.0, 1100.0,
                                 _ms("2016-10-30T02:30:00+02:00"), _ms("2016-10-30T23:30:00+01:00")),
        ("m1", "Pulse1"): (2, 12.0, 5.0, 7.0, 6.0, 0, 0, 0.0, 0, 5.0, 7.0,
                           _ms("2016-10-30T10:00:00+01:00"), _ms("2016-10-30T11:00:00+01:00")),
        # 64 on the second scale is 3.0 V
        ("m1", "Battery"): (2, None, 3.0, 3.5, 3.25, 0, 0, 0.0, 0, 64.0, 3.5,
                            _ms("2016-10-30T12:00:00+01:00"), _ms("2016-10-30T13:00:00+01:00")),
        ("m1", "DeviceTemperature"): (1, None, 20.0, 20.0, 20.0, 0, 0, 0.0, 0, 20.0, 20.0,
                                      _ms("2016-10-30T00:00:00+02:00"), _ms("2016-10-30T00:00:00+02:00")),
    }  # fmt: skip


def test_reset_negative_step_late_reading_and_an_anchor_from_daily_stats(lake: MeterPipeline) -> None:
    day = _daily(lake, "2016-10-31")
    # 1100 -> 50 is a reset (+50), 50 -> 45 a negative step (-5), 45 -> 60 the late reading (+15)
    assert day[("m1", "Pulse1_Total")][:9] == (3, 60.0, 45.0, 60.0, 51.666667, 1, 1, -5.0, 1)
    # m2 was silent for six days: its step from 500 (25 Oct, in daily_stats) counts on 31 Oct
    assert day[("m2", "Pulse1_Total")][:2] == (1, 20.0)
    assert _daily(lake, "2016-10-25")[("m2", "Pulse1_Total")][:2] == (1, 0.0)  # the seeded day is untouched
    assert rows(lake, "SELECT count() FROM batch_days") == [(7,)]


def test_problem_meters_of_those_days(lake: MeterPipeline) -> None:
    got = rows(
        lake,
        "SELECT day, meter_id, rule, severity, measurement_type, round(value, 3) FROM problem_meters "
        "ORDER BY day, meter_id, rule",
    )
    assert got == [
        (date(2016, 10, 30), "m1", "LOW_QUALITY", "WARNING", "", 49.8),  # test_meter_health_of_those_days
        (date(2016, 10, 30), "m2", "LOW_QUALITY", "CRITICAL", "", 0.0),
        (date(2016, 10, 30), "m2", "NO_DATA", "WARNING", "", 133.0),  # since 25 Oct 12:00; a 25-hour day
        (date(2016, 10, 31), "m1", "LOW_BATTERY", "CRITICAL", "Battery", 1.9),
        (date(2016, 10, 31), "m1", "LOW_QUALITY", "WARNING", "", 49.8),
        (date(2016, 10, 31), "m1", "NEGATIVE_STEP", "WARNING", "Pulse1_Total", -5.0),
        (date(2016, 10, 31), "m1", "REGISTER_RESET", "INFO", "Pulse1_Total", 1.0),
        (date(2016, 10, 31), "m2", "LOW_QUALITY", "WARNING", "", 37.7),
        (date(2016, 10, 31), "m2", "NO_DATA", "WARNING", "", 145.0),  # ended at 12:00: 6 days and the extra hour
    ]


def test_meter_health_of_those_days(lake: MeterPipeline) -> None:
    """Every component by hand. m1 owes 4 + 4 + 1/24 + 1/24 readings an hour (Pulse1 and the
    register every 15 min, battery and temperature daily); the data reach 31 Oct 12:00 (11:00 UTC);
    the manifest has no stuck rule, so that component has no evidence (the others weigh 95)."""
    got = rows(
        lake,
        """SELECT day, meter_id, score, round(completeness, 6), readings, round(expected_readings, 3),
                  longest_silence_h, duplicates, late_readings, dead_letters, clock_ahead, max_clock_ahead_s,
                  stuck_series, reason
           FROM meter_health ORDER BY day, meter_id""",
    )
    per_hour = 4 + 4 + 2 / 24
    # m1, 30 Oct (25 h): 8 readings of 202.083; silent 10.5 h (13:00 to 23:30), 10.25 h over its 15 min;
    # the later copy of 23:30 is a duplicate (8 of 9 kept)
    m1_30 = (40 * 8 / (25 * per_hour) + 20 * (1 - 10.25 / 25) + 10 * 8 / 9 + 10 + 10 + 5) / 95
    # m1, 31 Oct up to 11:00 UTC (12 h): 4 readings of 97; silent 8.5 h (23:30 to 08:00); 1 of 4 late
    m1_31 = (40 * 4 / (12 * per_hour) + 20 * (1 - 8.25 / 24) + 10 + 10 * 3 / 4 + 10 + 5) / 95
    # m2 (register only, 4 an hour): nothing on the 30th, silent since 25 Oct; on the 31st 1 of 48
    m2_31 = (40 * 1 / 48 + 20 * 0 + 10 + 10 + 10 + 5) / 95
    assert [round(100 * s, 1) for s in (m1_30, m1_31, m2_31)] == [49.8, 49.8, 37.7]
    assert got == [
        (date(2016, 10, 30), "m1", 49.8, round(8 / (25 * per_hour), 6), 8, 202.083, 10.5, 1, 0, 0, 0, None, 0,
         "8 of 202 expected readings; silent for 10.5 h; 1 duplicate"),
        (date(2016, 10, 30), "m2", 0.0, 0.0, 0, 100.0, 133.0, 0, 0, 0, 0, None, 0,
         "0 of 100 expected readings; silent for 133.0 h"),
        (date(2016, 10, 31), "m1", 49.8, round(4 / (12 * per_hour), 6), 4, 97.0, 8.5, 0, 1, 0, 0, None, 0,
         "4 of 97 expected readings; silent for 8.5 h; 1 late reading"),
        (date(2016, 10, 31), "m2", 37.7, round(1 / 48, 6), 1, 48.0, 145.0, 0, 0, 0, 0, None, 0,
         "1 of 48 expected readings; silent for 145.0 h"),
    ]  # fmt: skip


def test_the_data_reach_the_newest_reading_by_file_metadata(lake: MeterPipeline) -> None:
    table = ensure_readings_table(open_catalog(iceberg_location(lake)), names_for(lake).iceberg_namespace)
    assert newest_event_ms(table) == _ms("2016-10-31T12:00:00+01:00")  # NO_DATA counts silence up to here


def test_monthly_figures_add_up_the_days(lake: MeterPipeline) -> None:
    got = rows(
        lake,
        "SELECT meter_id, measurement_type, readings, days_active, days_recomputed, consumption "
        "FROM monthly_stats WHERE kind != 'gauge' ORDER BY meter_id, measurement_type",
    )
    assert got == [
        ("m1", "Pulse1", 2, 1, 7, 12.0),
        ("m1", "Pulse1_Total", 6, 2, 7, 160.0),  # 100 + 60
        ("m2", "Pulse1_Total", 2, 2, 7, 20.0),  # the seeded 25 Oct (0) and 31 Oct
    ]
    assert rows(lake, "SELECT count() FROM batch_runs WHERE status = 'ok'") == [(1,)]
