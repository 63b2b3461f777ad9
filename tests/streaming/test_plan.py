"""The streaming job's plan, derived from a spec: exact values, no JVM needed."""

from __future__ import annotations

import json

from flink_jobs.streaming.job import job_config
from flink_jobs.streaming.plan import (
    DEAD_LETTER_PAYLOAD_BYTES,
    DEDUP_TTL_MS,
    KafkaEndpoint,
    job_plan,
    plan_json,
)
from meterflow.stack.endpoints import IcebergLocation
from meterflow_clickhouse.sink import AGGREGATE_COLUMNS
from tests.conftest import unique_pipeline

KAFKA = KafkaEndpoint("127.0.0.1:9092", "meterflow.test")
LAKE = IcebergLocation("meterflow", "sqlite:////tmp/c.db", "file:///tmp/wh")


def test_measurements_carry_what_validation_and_windows_need() -> None:
    plan = job_plan(unique_pipeline("water-meters"), KAFKA, LAKE, idle_timeout_ms=0)
    by_name = {m["name"]: m for m in plan["measurements"]}
    assert by_name["Pulse1"] == {
        "name": "Pulse1",
        "series": "P1",
        "unit": "L",
        "kind": "interval",
        "interval_ms": 900_000,
        "consumption_factor": 1.0,
        "min": 0.0,
        "max": 100_000.0,
        "range_text": "[0.0, 100000.0]",
    }
    # a register with no upper bound
    assert (by_name["Pulse1_Total"]["kind"], by_name["Pulse1_Total"]["max"]) == ("register", None)
    assert by_name["Pulse1_Total"]["range_text"] == "[0.0, inf]"
    assert [m["name"] for m in plan["measurements"]] == ["Pulse1", "Pulse1_Total", "Battery", "DeviceTemperature"]
    assert [m["consumption_factor"] for m in plan["measurements"]] == [1.0, 0.0, 0.0, 0.0]
    household = job_plan(unique_pipeline("household-power"), KAFKA, LAKE, idle_timeout_ms=0)
    active = household["measurements"][0]
    assert (active["kind"], active["consumption_factor"]) == ("power", 1 / 60)  # a minute's mean kW: kW/60 kWh


def test_windows_and_the_watermark_grace() -> None:
    water = job_plan(unique_pipeline("water-meters"), KAFKA, LAKE, idle_timeout_ms=0)
    building = job_plan(unique_pipeline("smart-building"), KAFKA, LAKE, idle_timeout_ms=30_000)
    # 5-minute tumbling windows; the watermark trails by watermarkDelay + allowedLateness
    assert water["windows"] == {"size_ms": 300_000, "slide_ms": 300_000, "grace_ms": 60_000}
    # hopping: 10 s windows every 5 s
    assert (building["windows"]["size_ms"], building["windows"]["slide_ms"]) == (10_000, 5_000)
    assert (water["idle_timeout_ms"], building["idle_timeout_ms"]) == (0, 30_000)


def test_rules_are_data() -> None:
    plan = job_plan(unique_pipeline("water-meters"), KAFKA, LAKE, idle_timeout_ms=0)
    none = {"clear_threshold": None, "for_ms": 0, "every_ms": 0, "count": 0, "from_minute": 0, "to_minute": 0}
    none |= {"nights": 0, "escalate_after_ms": 0}
    assert plan["rules"][:3] == [
        {"name": "HIGH_FLOW", "kind": "threshold", "measurement": "Pulse1", "condition": ">", "threshold": 500.0}
        | none
        | {"severity": "WARNING"},
        {"name": "LOW_BATTERY", "kind": "threshold", "measurement": "Battery", "condition": "<", "threshold": 3.0}
        | none
        | {"severity": "CRITICAL"},
        {
            "name": "HIGH_TEMPERATURE",
            "kind": "threshold",
            "measurement": "DeviceTemperature",
            "condition": ">",
            "threshold": 50.0,
        }
        | none
        | {"severity": "WARNING"},
    ]
    assert plan["time_zone"] == "Australia/Brisbane"


def test_stateful_rules_in_milliseconds_and_minutes() -> None:
    rules = [
        {"name": "SILENT", "kind": "noData", "for": "26h", "escalateAfter": "2d"},
        {"name": "LEAK", "kind": "continuousFlow", "measurement": "Pulse1", "every": "1h", "count": 24},
        {"name": "NIGHT", "kind": "nightFlow", "measurement": "Pulse1", "from": "23:30", "to": "05:00"}
        | {"threshold": 0, "nights": 3},
        {"name": "STUCK", "kind": "stuck", "measurement": "Pulse1_Total", "for": "48h", "severity": "CRITICAL"},
    ]
    plan = job_plan(unique_pipeline("water-meters", rules=rules), KAFKA, LAKE, idle_timeout_ms=0)
    silent, leak, night, stuck = plan["rules"]
    assert (silent["kind"], silent["measurement"], silent["for_ms"], silent["escalate_after_ms"]) == (
        "noData",
        None,
        26 * 3_600_000,
        2 * 86_400_000,
    )
    assert (leak["every_ms"], leak["count"]) == (3_600_000, 24)
    assert (night["from_minute"], night["to_minute"], night["nights"], night["threshold"]) == (23 * 60 + 30, 300, 3, 0)
    assert (stuck["for_ms"], stuck["severity"]) == (48 * 3_600_000, "CRITICAL")


def test_names_limits_and_the_lake() -> None:
    pipeline = unique_pipeline("water-meters")
    plan = job_plan(pipeline, KAFKA, LAKE, idle_timeout_ms=0)
    name = pipeline.name
    assert plan["kafka"]["topics"] == {
        "readings": f"{name}.readings",
        "dlq": f"{name}.readings.dlq",
        "aggregates": f"{name}.aggregates",
        "alerts": f"{name}.alerts",
        "counters": f"{name}.counters",
        "alert_commands": f"{name}.alert-commands",
    }
    assert (plan["kafka"]["group_id"], plan["kafka"]["transactional_id_prefix"]) == (
        "meterflow.test",
        f"meterflow-{name}",
    )
    assert plan["kafka"]["source_properties"]["isolation.level"] == "read_committed"
    assert plan["lake"] == {
        "catalog_name": "meterflow",
        "catalog_properties": {
            "type": "iceberg",
            "catalog-impl": "org.apache.iceberg.jdbc.JdbcCatalog",
            "warehouse": "file:///tmp/wh",
            "jdbc.schema-version": "V1",
            "uri": "jdbc:sqlite:/tmp/c.db",
        },
        "namespace": name.replace("-", "_"),
        "table": "readings",
    }
    assert (plan["dedup_ttl_ms"], plan["dead_letter_payload_bytes"]) == (DEDUP_TTL_MS, DEAD_LETTER_PAYLOAD_BYTES)
    assert plan["register_reset_ratio"] == 0.1
    # clocks: an hour ahead of arrival at most, 30 years behind (replays of old data pass)
    assert (plan["max_clock_skew_ms"], plan["max_reading_age_ms"]) == (3_600_000, 10_950 * 86_400_000)
    assert plan["max_meter_id_chars"] == 128
    # the JVM writes window rows in the column order the serving sink inserts them
    assert plan["aggregate_columns"] == list(AGGREGATE_COLUMNS)
    assert json.loads(plan_json(plan)) == plan


def test_flink_settings() -> None:
    config = job_config(unique_pipeline("water-meters"))
    assert config["execution.checkpointing.interval"] == "10000 ms"
    assert config["pipeline.object-reuse"] == "true"
    assert config["state.backend.type"] == "hashmap"
    assert config["restart-strategy.type"] == "failure-rate"
