"""The ClickHouse side in the embedded engine: days and months replaced exactly, and the serving views."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flink_jobs.batch import store
from meterflow.spec import MeterPipeline, names_for
from meterflow.stack.endpoints import clickhouse_dsn
from meterflow_clickhouse.client import session
from meterflow_clickhouse.schema import ensure_schema
from tests.batch.rows import daily, day
from tests.conftest import unique_pipeline

pytestmark = pytest.mark.integration


@pytest.fixture
def water(meterflow_home: Path) -> Iterator[tuple[MeterPipeline, Any]]:
    """A fresh database with the batch schema (views in Australia/Brisbane) and an open session."""
    pipeline = unique_pipeline("water-meters")
    with session(clickhouse_dsn(pipeline)) as client:
        ensure_schema(client, pipeline)
        yield pipeline, client
        client.command(f"DROP DATABASE IF EXISTS {names_for(pipeline).clickhouse_database}")


def _replace(client: Any, db: str, frame: Any, days: list[date], run: str = "r1") -> None:
    store.replace_days(
        client, db, "daily_stats", column="day", columns=store.DAILY_COLUMNS, rows=store.daily_rows(frame),
        days=days, run_id=run,
    )  # fmt: skip
    store.record_days(
        client, db, days, run_id=run, snapshot_id=1, snapshot_time=store.from_ms(0), computed_at=datetime.now(UTC)
    )


def test_a_recompute_replaces_exactly_its_days(water: tuple[MeterPipeline, Any]) -> None:
    pipeline, client = water
    db = names_for(pipeline).clickhouse_database
    first = daily(
        {"meter_id": "a", "day": day(1), "consumption": 1.0},
        {"meter_id": "a", "day": day(2), "consumption": 2.0},
        {"meter_id": "b", "day": day(2), "consumption": 3.0},
        {"meter_id": "a", "day": date(2024, 4, 30), "consumption": 4.0},
    )
    _replace(client, db, first, [date(2024, 4, 30), day(1), day(2)])
    # recompute 2 May only: b disappeared, a changed; 30 April and 1 May untouched
    _replace(client, db, daily({"meter_id": "a", "day": day(2), "consumption": 20.0}), [day(2)], run="r2")
    rows = client.query(f"SELECT day, meter_id, consumption FROM {db}.daily_stats ORDER BY day, meter_id").result_rows
    assert rows == [(date(2024, 4, 30), "a", 4.0), (day(1), "a", 1.0), (day(2), "a", 20.0)]
    # a recompute that finds nothing empties its days; an emptied month loses its partition
    _replace(client, db, daily(), [date(2024, 4, 30), day(2)], run="r3")
    rows = client.query(f"SELECT day, meter_id, consumption FROM {db}.daily_stats ORDER BY day").result_rows
    assert rows == [(day(1), "a", 1.0)]
    partitions = client.query(
        f"SELECT DISTINCT partition FROM system.parts WHERE database = '{db}' AND table = 'daily_stats' AND active"
    ).result_rows
    assert partitions == [("202405",)]
    assert client.query(f"SELECT count() FROM {db}.batch_days").result_rows == [(3,)]  # one row per day, merged
    tables = {r[0] for r in client.query(f"SHOW TABLES FROM {db}").result_rows}
    assert not [t for t in tables if t.startswith("_stage")]


def test_months_add_up_their_days(water: tuple[MeterPipeline, Any]) -> None:
    pipeline, client = water
    db = names_for(pipeline).clickhouse_database
    frame = daily(
        {"meter_id": "a", "day": day(1), "consumption": 10.0, "readings": 96, "sum": 10.0, "min": 0.0, "max": 4.0},
        {"meter_id": "a", "day": day(2), "consumption": 30.0, "readings": 48, "sum": 30.0, "min": 1.0, "max": 9.0,
         "resets": 1, "suburb": "KULUIN"},
        {"meter_id": "a", "measurement_type": "Battery", "series": "V", "kind": "gauge", "day": day(2),
         "consumption": None, "readings": 1, "sum": 3.3, "min": 3.3, "max": 3.3},
    )  # fmt: skip
    _replace(client, db, frame, [day(1), day(2)])
    assert store.rebuild_months(client, db, [day(1), day(2)], "r1") == 2
    rows = client.query(
        f"""SELECT month, measurement_type, readings, days_active, days_recomputed, consumption, avg_daily_consumption,
                   max_daily_consumption, avg, min, max, resets, suburb
            FROM {db}.monthly_stats ORDER BY measurement_type"""
    ).result_rows
    assert rows == [
        (date(2024, 5, 1), "Battery", 1, 1, 2, None, None, None, 3.3, 3.3, 3.3, 0, "BUDERIM"),
        (date(2024, 5, 1), "Pulse1", 144, 2, 2, 40.0, 20.0, 30.0, 40.0 / 144, 0.0, 9.0, 1, "KULUIN"),
    ]
    # rebuilding again writes the same rows
    store.rebuild_months(client, db, [day(2)], "r2")
    assert client.query(f"SELECT count(), sum(consumption) FROM {db}.monthly_stats").result_rows == [(2, 40.0)]


AGG_COLUMNS = (
    "meter_id", "measurement_type", "series", "unit", "window_start", "window_end", "readings", "sum", "avg", "min",
    "max", "stddev", "consumption", "meter_type", "suburb", "postcode", "usage_type",
)  # fmt: skip
"""readings_agg's columns before version and is_deleted (migration 0001)."""


def _window(
    meter: str, start: str, minutes: int, consumption: float | None, *, readings: int = 1,
    measurement: tuple[str, str, str] = ("Pulse1", "P1", "L"),
) -> list[Any]:  # fmt: skip
    """One readings_agg row (as the serving sink writes it)."""
    begin = datetime.fromisoformat(start).astimezone(UTC)

    row = {
        "meter_id": meter, "measurement_type": measurement[0], "series": measurement[1], "unit": measurement[2],
        "window_start": begin, "window_end": begin + timedelta(minutes=minutes), "readings": readings,
        "sum": consumption or 0.0, "avg": 0.0, "min": 0.0, "max": 0.0, "stddev": 0.0, "consumption": consumption,
        "meter_type": "t", "suburb": "S", "postcode": "1", "usage_type": "Residential",
    }  # fmt: skip
    return [row[c] for c in AGG_COLUMNS] + [1, 0]


def test_serving_views_put_batch_over_speed_by_local_day(water: tuple[MeterPipeline, Any]) -> None:
    pipeline, client = water
    db = names_for(pipeline).clickhouse_database
    windows = [
        _window("a", "2024-05-01T23:55:00+10:00", 5, 5.0),  # Brisbane 1 May
        _window("a", "2024-05-02T00:00:00+10:00", 5, 7.0),  # Brisbane 2 May (13:00Z on 1 May... still 2 May here)
        _window("a", "2024-05-02T00:05:00+10:00", 5, 1.0),
        _window("a", "2024-05-02T00:02:30+10:00", 5, 100.0),  # an overlapping (hopping) window: not added
        _window("b", "2024-05-02T08:00:00+10:00", 5, 2.0),
        _window("a", "2024-05-02T08:00:00+10:00", 5, None, measurement=("Battery", "V", "V")),
    ]
    client.insert(f"{db}.readings_agg", windows, column_names=[*AGG_COLUMNS, "version", "is_deleted"])
    speed = client.query(
        f"SELECT day, meter_id, measurement_type, readings, consumption, source FROM {db}.consumption_daily "
        "ORDER BY day, meter_id, measurement_type"
    ).result_rows
    assert speed == [
        (day(1), "a", "Pulse1", 1, 5.0, "speed"),
        (day(2), "a", "Battery", 1, None, "speed"),
        (day(2), "a", "Pulse1", 2, 8.0, "speed"),
        (day(2), "b", "Pulse1", 1, 2.0, "speed"),
    ]
    # the batch recomputes 2 May: it saw one more (late) reading of a, and meter c the speed layer never saw
    batch = daily(
        {"meter_id": "a", "day": day(2), "consumption": 20.0, "readings": 3, "late_readings": 1},
        {"meter_id": "b", "day": day(2), "consumption": 2.0, "readings": 1},
        {"meter_id": "c", "day": day(2), "consumption": 4.0, "readings": 2},
        {"meter_id": "a", "measurement_type": "Battery", "series": "V", "kind": "gauge", "day": day(2),
         "consumption": None, "readings": 1},
    )  # fmt: skip
    _replace(client, db, batch, [day(2)])
    served = client.query(
        f"SELECT day, meter_id, measurement_type, consumption, source FROM {db}.consumption_daily "
        "ORDER BY day, meter_id, measurement_type"
    ).result_rows
    assert served == [
        (day(1), "a", "Pulse1", 5.0, "speed"),
        (day(2), "a", "Battery", None, "batch"),
        (day(2), "a", "Pulse1", 20.0, "batch"),
        (day(2), "b", "Pulse1", 2.0, "batch"),
        (day(2), "c", "Pulse1", 4.0, "batch"),
    ]
    drift = client.query(
        f"""SELECT day, meter_id, measurement_type, kind, speed_readings, batch_readings, readings_drift,
                   speed_consumption, batch_consumption, drift, late_readings
            FROM {db}.speed_vs_batch ORDER BY day, meter_id, measurement_type"""
    ).result_rows
    assert drift == [
        (day(2), "a", "Battery", "gauge", 1, 1, 0, None, None, None, 0),
        (day(2), "a", "Pulse1", "interval", 2, 3, -1, 8.0, 20.0, -12.0, 1),
        (day(2), "b", "Pulse1", "interval", 1, 1, 0, 2.0, 2.0, 0.0, 0),
        (day(2), "c", "Pulse1", "interval", 0, 2, -2, None, 4.0, -4.0, 0),
    ]


def _rows_read(client: Any, sql: str) -> dict[str, int]:
    """The rows each table's selected parts hold (EXPLAIN ESTIMATE: what the query will read)."""
    return {str(table): int(rows) for _, table, _, rows, _ in client.query(f"EXPLAIN ESTIMATE {sql}").result_rows}


def test_the_speed_branch_reads_only_the_days_the_batch_has_not_recomputed(water: tuple[MeterPipeline, Any]) -> None:
    pipeline, client = water
    db = names_for(pipeline).clickhouse_database
    # noon in Brisbane is 02:00 UTC the same date: each local day lands in its own day partition
    windows = [_window("a", f"2024-05-0{d}T12:00:00+10:00", 5, float(d)) for d in (1, 2, 3, 4)]
    client.insert(f"{db}.readings_agg", windows, column_names=[*AGG_COLUMNS, "version", "is_deleted"])
    served = f"SELECT day, consumption, source FROM {db}.consumption_daily WHERE meter_id = 'a' ORDER BY day"
    assert _rows_read(client, served)["readings_agg"] == 4  # nothing recomputed: every day is the speed layer's

    # the batch recomputes 1, 2 and 4 May: 3 May stays the speed layer's, in the hole between them
    batch = [{"meter_id": "a", "day": day(d), "consumption": 10.0 * d} for d in (1, 2, 4)]
    _replace(client, db, daily(*batch), [day(1), day(2), day(4)])
    assert client.query(served).result_rows == [
        (day(1), 10.0, "batch"),
        (day(2), 20.0, "batch"),
        (day(3), 3.0, "speed"),
        (day(4), 40.0, "batch"),
    ]
    # 3 May's partition only: those before the first un-recomputed day are out of the range, and 4 May's
    # holds (min to max) only a recomputed day
    assert _rows_read(client, served)["readings_agg"] == 1

    _replace(client, db, daily({"meter_id": "a", "day": day(3), "consumption": 30.0}), [day(3)], run="r2")
    assert [source for _, _, source in client.query(served).result_rows] == ["batch"] * 4
    assert _rows_read(client, served).get("readings_agg", 0) == 0  # caught up: the speed branch reads nothing

    partition_key = client.query(
        f"SELECT partition_key FROM system.tables WHERE database = '{db}' AND name = 'readings_agg'"
    ).result_rows
    assert partition_key == [("toDate(window_start)",)]  # migration 0004
