"""Migrations on a database that already holds data: real chDB."""

from __future__ import annotations

from pathlib import Path

import pytest

from meterflow_clickhouse import migrate
from meterflow_clickhouse.client import session
from meterflow_clickhouse.migrate import apply_migrations

WINDOW = (
    "meter_id, measurement_type, series, unit, window_start, window_end, readings, sum, avg, min, max, stddev, "
    "consumption, version"
)


def test_readings_agg_moves_to_day_partitions_with_its_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dsn = f"chdb://{tmp_path / 'clickhouse'}"
    shipped = migrate.migrations()
    monkeypatch.setattr(migrate, "migrations", lambda: [m for m in shipped if m.version < 4])
    assert apply_migrations(dsn, "wm") == ["0001_speed_layer", "0002_batch_layer", "0003_alert_lifecycle"]
    with session(dsn, database="wm") as client:
        client.command(
            f"INSERT INTO readings_agg_queue ({WINDOW}) VALUES "
            "('m1', 'Pulse1', 'P1', 'L', '2024-04-30 23:55:00', '2024-05-01 00:00:00', 1, 4, 4, 4, 4, 0, 4, 1), "
            "('m1', 'Pulse1', 'P1', 'L', '2024-05-01 00:00:00', '2024-05-01 00:05:00', 1, 5, 5, 5, 5, 0, 5, 2), "
            "('m1', 'Pulse1', 'P1', 'L', '2024-05-01 00:00:00', '2024-05-01 00:05:00', 1, 6, 6, 6, 6, 0, 6, 3)"
        )  # the last replaces the one before it (a newer version of the window)

    monkeypatch.setattr(migrate, "migrations", lambda: [m for m in shipped if m.version <= 4])
    assert apply_migrations(dsn, "wm") == ["0004_readings_agg_by_day"]
    assert apply_migrations(dsn, "wm") == []  # its staging table is gone, not an object to re-create
    with session(dsn, database="wm") as client:
        client.command(
            f"INSERT INTO readings_agg_queue ({WINDOW}) VALUES "
            "('m1', 'Pulse1', 'P1', 'L', '2024-05-02 00:00:00', '2024-05-02 00:05:00', 1, 7, 7, 7, 7, 0, 7, 4)"
        )  # through the enrichment view, into the table that now has the name
        windows = client.query(
            "SELECT toString(window_start), consumption, _partition_id FROM readings_agg FINAL ORDER BY window_start"
        ).result_rows
        tables = client.query(
            "SELECT name, partition_key FROM system.tables "
            "WHERE database = 'wm' AND name LIKE 'readings_agg%' ORDER BY name"
        ).result_rows
    assert [tuple(w) for w in windows] == [
        ("2024-04-30 23:55:00.000", 4.0, "20240430"),
        ("2024-05-01 00:00:00.000", 6.0, "20240501"),
        ("2024-05-02 00:00:00.000", 7.0, "20240502"),
    ]
    assert [tuple(t) for t in tables] == [
        ("readings_agg", "toDate(window_start)"),
        ("readings_agg_enrich", ""),
        ("readings_agg_queue", ""),
    ]
