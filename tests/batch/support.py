"""Helpers of the batch tests: run the CLI as a user would, read ClickHouse, fingerprint tables, open a browser."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from meterflow.spec import MeterPipeline, names_for
from meterflow.stack.endpoints import clickhouse_dsn
from meterflow_clickhouse.client import session

METERFLOW = [sys.executable, "-m", "meterflow_cli.app"]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def meterflow(*args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``meterflow ARGS`` in a subprocess (same METERFLOW_HOME); fail with its output unless ``check=False``."""
    result = subprocess.run(
        [*METERFLOW, *args], capture_output=True, text=True, timeout=timeout, env=os.environ.copy(), check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"meterflow {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


def replay_and_serve(manifest: Path, dataset: str, files: Sequence[Path], first: str, last: str) -> None:
    """A real-data test's both layers: replay ``files`` (days ``first`` .. ``last``) into the pipeline,
    run the streaming job until idle, then recompute those days with the batch."""
    for path in files:
        meterflow("replay", "-f", str(manifest), "--dataset", dataset, str(path), "--from", first, "--to", last,
                  "--no-progress")  # fmt: skip
    meterflow("run", "-f", str(manifest), "--until-idle")
    meterflow("batch", "-f", str(manifest), "--from", first, "--to", last)


def rows(pipeline: MeterPipeline, query: str) -> list[tuple[Any, ...]]:
    with session(clickhouse_dsn(pipeline), database=names_for(pipeline).clickhouse_database) as client:
        return [tuple(r) for r in client.query(query).result_rows]


FINGERPRINTED = ("daily_stats", "monthly_stats", "problem_meters", "meter_health", "meters")


def fingerprint(pipeline: MeterPipeline) -> dict[str, tuple[Any, ...]]:
    """Per batch table: row count, a hash of every row (order-free), and the sum of each numeric column.

    Floats are added in sorted order: ClickHouse's ``sum`` adds them in whatever order its threads
    and parts meet, so two sums of the same rows may differ in the last digit (seen once in CI)."""
    out: dict[str, tuple[Any, ...]] = {}
    for table in FINGERPRINTED:
        [(count, digest)] = rows(pipeline, f"SELECT count(), sum(cityHash64(*)) FROM {table}")
        columns = rows(
            pipeline,
            f"SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = '{table}' "
            "AND (type LIKE '%Int%' OR type LIKE '%Float%')",
        )
        sums = rows(pipeline, f"SELECT {', '.join(_sum(c, t) for c, t in columns)} FROM {table}")[0] if columns else ()
        out[table] = (count, digest, *sums)
    [(days, snapshots)] = rows(pipeline, "SELECT count(), sum(snapshot_id) FROM batch_days")
    out["batch_days"] = (days, snapshots)
    return out


def _sum(column: str, column_type: str) -> str:
    """SQL: the sum of ``column``, the same whatever order the rows are read in."""
    return f"arraySum(arraySort(groupArray({column})))" if "Float" in column_type else f"sum({column})"


def chromium_dom(html_file: Path, timeout: float = 120) -> str | None:
    """The DOM of ``html_file`` after headless Chromium ran its scripts; None when Chromium is absent."""
    if not Path(CHROMIUM).exists():
        return None
    profile = tempfile.mkdtemp(prefix="meterflow-chromium-")
    try:
        result = subprocess.run(
            [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=15000", "--dump-dom",
             html_file.resolve().as_uri()],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    if result.returncode != 0:
        raise AssertionError(f"chromium exited {result.returncode}: {result.stderr[-2000:]}")
    return result.stdout
