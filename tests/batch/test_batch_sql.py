"""The batch job's SQL (generated, pure), battery normalisation, and the serving views' rendering."""

from __future__ import annotations

import pytest

from flink_jobs.batch import battery
from flink_jobs.batch.sql import DAILY_COLUMNS, Scan, daily_query, job_config, kind_case, level_expression
from flink_jobs.batch.sql import register_step as register_step_sql
from meterflow.stack.endpoints import IcebergLocation
from meterflow_clickhouse.views import kind_expression, view_statements
from tests.conftest import unique_pipeline

LAKE = IcebergLocation("meterflow", "sqlite:///tmp/cat.db", "file:///tmp/wh")


@pytest.mark.parametrize(
    ("raw", "volts"),
    [(64.0, 3.0), (77.0, 3.6), (70.5, 3.3), (3.3, 3.3), (1.6, 1.6), (10.0, 10.0), (10.5, 0.5307692307692307)],
)
def test_battery_readings_on_either_scale_become_volts(raw: float, volts: float) -> None:
    assert battery.normalise(raw) == volts


def test_battery_sql_does_what_the_python_twin_does() -> None:
    assert battery.sql_expression("v") == (
        "CASE WHEN v > CAST(10.0 AS DOUBLE) THEN CAST(3.0 AS DOUBLE) + (v - CAST(64.0 AS DOUBLE)) "
        "* CAST(0.6 AS DOUBLE) / CAST(13.0 AS DOUBLE) ELSE v END"
    )
    assert battery.is_battery("Battery") and battery.is_battery("battery_level") and not battery.is_battery("Pulse1")


def test_only_battery_measurements_are_normalised() -> None:
    water = unique_pipeline("water-meters")
    assert level_expression(water) == (
        f"CASE WHEN (measurement_type = 'Battery' AND series = 'V') THEN {battery.sql_expression('`value`')} "
        "ELSE `value` END"
    )
    assert level_expression(unique_pipeline("household-power")) == "`value`"


def test_kinds_and_the_register_rule_in_sql() -> None:
    water = unique_pipeline("water-meters")
    assert kind_case(water) == (
        "CASE WHEN measurement_type = 'Pulse1' AND series = 'P1' THEN 'interval' "
        "WHEN measurement_type = 'Pulse1_Total' AND series = 'T1' THEN 'register' "
        "WHEN measurement_type = 'Battery' AND series = 'V' THEN 'gauge' "
        "WHEN measurement_type = 'DeviceTemperature' AND series = 'T' THEN 'gauge' END"
    )
    assert register_step_sql() == (
        "CASE WHEN previous IS NULL THEN CAST(0 AS DOUBLE) "
        "WHEN `value` < previous AND `value` <= previous * 0.1 THEN `value` ELSE `value` - previous END"
    )


def test_daily_query_reads_one_snapshot_and_the_scan_window() -> None:
    water = unique_pipeline("water-meters")
    query = daily_query(water, LAKE, "ns", Scan(1714485600000, 1714572000000, snapshot_id=42))
    assert "FROM `meterflow`.`ns`.`readings` /*+ OPTIONS('snapshot-id'='42') */" in query
    assert (
        "WHERE event_time >= TO_TIMESTAMP_LTZ(1714485600000, 3) AND event_time < TO_TIMESTAMP_LTZ(1714572000000, 3)"
        in query
    )
    assert "PARTITION BY meter_id, measurement_type, series, event_time" in query  # first arrival wins
    assert "CAST(CAST(event_time AS TIMESTAMP(6)) AS DATE) AS `day`" in query  # the local day
    assert query.rstrip().endswith("GROUP BY meter_id, measurement_type, series, `day`")
    no_hint = daily_query(water, LAKE, "ns", Scan(0, 1))
    assert "/*+" not in no_hint
    for column in DAILY_COLUMNS[4:]:
        assert f"AS `{column}`" in query, column


def test_the_job_runs_in_the_pipeline_time_zone() -> None:
    water = unique_pipeline("water-meters")
    assert job_config(water) == {
        "pipeline.name": f"meterflow-batch-{water.name}",
        "parallelism.default": "1",
        "table.local-time-zone": "Australia/Brisbane",
    }


def test_serving_views_are_rendered_with_the_zone_and_kinds() -> None:
    kinds = [("Pulse1", "P1", "interval"), ("it's", "x", "gauge")]
    assert kind_expression(kinds) == (
        "multiIf(measurement_type = 'Pulse1' AND series = 'P1', 'interval', "
        "measurement_type = 'it\\'s' AND series = 'x', 'gauge', '')"
    )
    assert kind_expression([]) == "''"
    statements = view_statements("db1", "Europe/Madrid", kinds)
    assert [s.split(" AS", 1)[0] for s in statements] == [
        "CREATE OR REPLACE VIEW db1.speed_daily",
        "CREATE OR REPLACE VIEW db1.consumption_daily",
        "CREATE OR REPLACE VIEW db1.speed_vs_batch",
    ]
    assert "toDate(a.window_start, 'Europe/Madrid')" in statements[0]
    assert not any("{" in s for s in statements)
