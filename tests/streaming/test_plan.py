"""The optimized Flink plan of the streaming job: one parse and one de-duplication per record.

Guards two measured traps: Flink does not reuse a function call in generated code (a parse per
field read: 6x slower), and sub-plans are shared between the INSERTs only when their optimize
blocks are built by digest. Needs the JVM (PyFlink) but no running services.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flink_jobs.runtime import prepare_local_jvm, table_environment
from flink_jobs.streaming.job import explain, job_config
from flink_jobs.streaming.sql import KafkaEndpoint
from meterflow.spec import names_for
from meterflow.stack.endpoints import IcebergLocation
from meterflow_iceberg.catalog import open_catalog
from meterflow_iceberg.tables import ensure_readings_table
from tests.conftest import unique_pipeline

pytestmark = [pytest.mark.integration, pytest.mark.flink]


@pytest.fixture(scope="module")
def water_plan(meterflow_home: Path) -> str:
    pipeline = unique_pipeline("water-meters")
    prepare_local_jvm("plan-test")
    t_env = table_environment(streaming=True, config=job_config(pipeline))
    lake = IcebergLocation("meterflow", f"sqlite:///{meterflow_home}/plan-catalog.db", f"file://{meterflow_home}/wh")
    ensure_readings_table(open_catalog(lake), names_for(pipeline).iceberg_namespace)
    plan = explain(t_env, pipeline, KafkaEndpoint("127.0.0.1:9", "g"), lake)
    return plan.split("== Optimized Execution Plan ==")[1]


def test_each_record_is_parsed_once(water_plan: str) -> None:
    assert len(re.findall(r"parse_reading\(payload\)", water_plan)) == 1


def test_one_insert_only_deduplication_shared_by_every_sink(water_plan: str) -> None:
    dedups = re.findall(r"Deduplicate\(keep=\[FirstRow\].*outputInsertOnly=\[(\w+)\]\)", water_plan)
    assert dedups == ["true"]


def test_register_steps_use_one_over_aggregate(water_plan: str) -> None:
    assert len(re.findall(r"OverAggregate\(partitionBy=", water_plan)) == 1
    assert water_plan.count("LAG(reading_value)") == 1
