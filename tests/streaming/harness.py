"""Run meterflow's CLI as a user would, and read back every output (ClickHouse, Iceberg, Kafka)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer

from meterflow.spec import MeterPipeline, names_for
from meterflow.stack.endpoints import clickhouse_dsn, iceberg_location
from meterflow_clickhouse.client import session
from meterflow_iceberg.catalog import open_catalog

METERFLOW = [sys.executable, "-m", "meterflow.cli.app"]


def meterflow(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run ``meterflow ARGS`` in a subprocess (same METERFLOW_HOME); fail with its output."""
    result = subprocess.run(
        [*METERFLOW, *args], capture_output=True, text=True, timeout=timeout, env=os.environ.copy(), check=False
    )
    if result.returncode != 0:
        raise AssertionError(
            f"meterflow {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


def start(*args: str) -> subprocess.Popen[str]:
    """Start ``meterflow ARGS`` in its own process group (so a test can kill it and its JVM)."""
    return subprocess.Popen(
        [*METERFLOW, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ.copy(),
        start_new_session=True,
    )


def rows(pipeline: MeterPipeline, query: str) -> list[tuple[Any, ...]]:
    with session(clickhouse_dsn(pipeline), database=names_for(pipeline).clickhouse_database) as client:
        return [tuple(r) for r in client.query(query).result_rows]


def lake(pipeline: MeterPipeline) -> Any:
    """The Iceberg readings table as a pyarrow Table."""
    catalog = open_catalog(iceberg_location(pipeline))
    return catalog.load_table(names_for(pipeline).readings_table).scan().to_arrow()


def dead_letters(pipeline: MeterPipeline, bootstrap: str) -> list[dict[str, Any]]:
    consumer = KafkaConsumer(
        names_for(pipeline).topics.dlq,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        consumer_timeout_ms=5000,
    )
    try:
        return [json.loads(r.value) for r in consumer]
    finally:
        consumer.close()


def simulate(manifest: Path, out: Path, *options: str) -> dict[str, Any]:
    """Seeded water/building/household simulation with injections; returns the ground truth."""
    truth, record = out / "truth.json", out / "records.jsonl"
    meterflow(
        "simulate", "-f", str(manifest), "--inject", "--truth", str(truth), "--record", str(record),
        "--no-progress", *options,
    )  # fmt: skip
    loaded: dict[str, Any] = json.loads(truth.read_text())
    return loaded
