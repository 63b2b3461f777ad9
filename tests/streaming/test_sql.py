"""The streaming SQL generated from a spec: exact fragments (no Flink needed)."""

from __future__ import annotations

import pytest

from flink_jobs.streaming.sql import KafkaEndpoint, _interval_ms, statements, validation_reason
from meterflow.stack.endpoints import IcebergLocation
from tests.conftest import unique_pipeline

KAFKA = KafkaEndpoint("127.0.0.1:9092", "meterflow.test")
LAKE = IcebergLocation("meterflow", "sqlite:////tmp/c.db", "file:///tmp/wh")


@pytest.mark.parametrize(
    ("ms", "literal"),
    [
        (30_000, "INTERVAL '0 00:00:30.000' DAY TO SECOND(3)"),
        (500, "INTERVAL '0 00:00:00.500' DAY TO SECOND(3)"),
        (90 * 60_000, "INTERVAL '0 01:30:00.000' DAY TO SECOND(3)"),
        (2 * 86_400_000 + 1, "INTERVAL '2 00:00:00.001' DAY TO SECOND(3)"),
    ],
)
def test_interval_literals(ms: int, literal: str) -> None:
    assert _interval_ms(ms) == literal


def test_watermark_trails_by_delay_plus_lateness() -> None:
    pipeline = unique_pipeline("water-meters")  # 30s delay + 30s lateness
    ddl, _ = statements(pipeline, KAFKA, LAKE)
    source = next(s for s in ddl if "CREATE TEMPORARY TABLE readings_source" in s)
    assert "WATERMARK FOR event_time AS event_time - INTERVAL '0 00:01:00.000' DAY TO SECOND(3)" in source
    assert "'properties.group.id' = 'meterflow.test'" in source


def test_validation_checks_every_measurement_unit_and_range() -> None:
    pipeline = unique_pipeline("water-meters")
    reason = validation_reason(pipeline)
    assert reason.startswith("CASE WHEN r.error IS NOT NULL THEN r.error ")
    assert (
        "WHEN r.measurement_type = 'Pulse1' AND r.series = 'P1' THEN CASE WHEN r.unit <> 'L' THEN 'unit_mismatch' "
        "WHEN r.reading_value < CAST(0.0 AS DOUBLE) OR r.reading_value > CAST(100000.0 AS DOUBLE) "
        "THEN 'out_of_range' END" in reason
    )
    # a register with no upper bound has only a lower-bound check
    assert (
        "WHEN r.measurement_type = 'Pulse1_Total' AND r.series = 'T1' THEN CASE WHEN r.unit <> 'L' THEN "
        "'unit_mismatch' WHEN r.reading_value < CAST(0.0 AS DOUBLE) THEN 'out_of_range' END" in reason
    )
    assert reason.endswith("ELSE 'unknown_measurement' END")


def test_tumbling_and_hopping_windows() -> None:
    water, _ = statements(unique_pipeline("water-meters"), KAFKA, LAKE)
    building, _ = statements(unique_pipeline("smart-building"), KAFKA, LAKE)
    assert "TUMBLE(TABLE level_input, DESCRIPTOR(event_time), INTERVAL '0 00:05:00.000' DAY TO SECOND(3))" in "\n".join(
        water
    )
    assert (
        "HOP(TABLE level_input, DESCRIPTOR(event_time), INTERVAL '0 00:00:05.000' DAY TO SECOND(3), "
        "INTERVAL '0 00:00:10.000' DAY TO SECOND(3))" in "\n".join(building)
    )
    # the building has no register: no LAG over an empty input
    assert "register_input" not in "\n".join(building).split("CREATE TEMPORARY VIEW windowed")[1]


def test_rules_become_filters_on_classified_readings() -> None:
    ddl, inserts = statements(unique_pipeline("water-meters"), KAFKA, LAKE)
    alerts = next(s for s in ddl if s.startswith("CREATE TEMPORARY VIEW alert_events"))
    assert alerts.count("FROM classified WHERE") == 3
    assert "measurement_type = 'Pulse1' AND reading_value > CAST(500.0 AS DOUBLE)" in alerts
    assert "measurement_type = 'Battery' AND reading_value < CAST(3.0 AS DOUBLE)" in alerts
    assert sum(1 for i in inserts if i.startswith("INSERT INTO alerts")) == 1


def test_no_rules_no_alert_insert() -> None:
    pipeline = unique_pipeline("household-power", rules=[])
    ddl, inserts = statements(pipeline, KAFKA, LAKE)
    assert not any(s.startswith("CREATE TEMPORARY VIEW alert_events") for s in ddl)
    assert [i.split("\n")[0] for i in inserts] == [
        f"INSERT INTO `meterflow`.`{pipeline.name.replace('-', '_')}`.`readings`",
        "INSERT INTO dead_letters",
        "INSERT INTO aggregates",
        "INSERT INTO ingest_counters",
    ]


def test_condition_operators_map_to_sql() -> None:
    rules = [
        {"name": f"R{i}", "measurement": "voltage", "condition": cond, "threshold": 230, "severity": "INFO"}
        for i, cond in enumerate([">", ">=", "<", "<=", "==", "!="])
    ]
    ddl, _ = statements(unique_pipeline("household-power", rules=rules), KAFKA, LAKE)
    alerts = next(s for s in ddl if s.startswith("CREATE TEMPORARY VIEW alert_events"))
    for op in (" > ", " >= ", " < ", " <= ", " = ", " <> "):
        assert f"reading_value{op}CAST(230.0 AS DOUBLE)" in alerts
