"""The streaming job's graph, built by the JVM builder from a plan: one parse in the source's
chain, one shuffle by meter, every output chained behind the operator that makes it.

Needs the JVM (PyFlink) and the lake table the builder reads its schema from, but no broker.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from flink_jobs.runtime import prepare_local_jvm, stream_environment
from flink_jobs.streaming.job import explain, job_config
from flink_jobs.streaming.plan import KafkaEndpoint, job_plan
from meterflow.spec import names_for
from meterflow.stack.endpoints import IcebergLocation
from meterflow_iceberg.catalog import open_catalog
from meterflow_iceberg.tables import ensure_readings_table
from tests.conftest import unique_pipeline

pytestmark = [pytest.mark.integration, pytest.mark.flink]


@pytest.fixture(scope="module")
def graph(meterflow_home: Path) -> dict[str, dict[str, Any]]:
    """The water pipeline's nodes by name."""
    pipeline = unique_pipeline("water-meters")
    prepare_local_jvm("graph-test")
    env = stream_environment(job_config(pipeline))
    lake = IcebergLocation("meterflow", f"sqlite:///{meterflow_home}/graph-catalog.db", f"file://{meterflow_home}/wh")
    ensure_readings_table(open_catalog(lake), names_for(pipeline).iceberg_namespace)
    plan = json.loads(explain(env, job_plan(pipeline, KafkaEndpoint("127.0.0.1:9", "g"), lake, idle_timeout_ms=0)))
    return {node["contents"]: node for node in plan["nodes"]}


def _inputs(node: dict[str, Any], graph: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    by_id = {n["id"]: name for name, n in graph.items()}
    return [(by_id[p["id"]], p["ship_strategy"]) for p in node.get("predecessors", [])]


def test_parsing_and_validation_stay_in_the_source_chain(graph: dict[str, dict[str, Any]]) -> None:
    assert _inputs(graph["validate"], graph) == [("Source: readings", "FORWARD")]
    assert _inputs(graph["dead letters: Writer"], graph) == [("validate", "FORWARD")]


def test_one_shuffle_by_meter_then_everything_chained(graph: dict[str, dict[str, Any]]) -> None:
    # the readings, and the alert commands (ack, resolve) keyed by the same meter
    assert sorted(_inputs(graph["meters"], graph)) == [("Source: alert commands", "HASH"), ("validate", "HASH")]
    assert _inputs(graph["lake-IcebergStreamWriter"], graph) == [("meters", "FORWARD")]
    assert _inputs(graph["rowbinary blocks"], graph) == [("meters", "FORWARD")]
    assert _inputs(graph["aggregates: Writer"], graph) == [("rowbinary blocks", "FORWARD")]
    assert _inputs(graph["alerts: Writer"], graph) == [("meters", "FORWARD")]


def test_counters_gather_both_operators(graph: dict[str, dict[str, Any]]) -> None:
    assert sorted(_inputs(graph["counters"], graph)) == [("meters", "HASH"), ("validate", "HASH")]
    assert _inputs(graph["counters: Writer"], graph) == [("counters", "FORWARD")]
