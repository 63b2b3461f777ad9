"""Anomaly scoring throughput on the loaded fleet: training, the batch's re-scoring and the speed
layer's scorer, each in this process, in windows per second and CPU seconds per window.

The bench's water meters get a ``spec.anomalies`` on ``Pulse1`` (its 15-minute windows' four
statistics): the same lake, ClickHouse database and windows as the streaming and batch phases.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from bench.common import Phase
from bench.stack import BenchPipeline
from flink_jobs.batch.anomalies import score_days, train_from_lake
from meterflow.spec import parse_manifest
from meterflow.stack.endpoints import clickhouse_dsn, iceberg_location
from meterflow_clickhouse.anomalies import WindowScorer
from meterflow_clickhouse.client import session
from meterflow_clickhouse.schema import ensure_schema
from meterflow_iceberg.catalog import open_catalog
from meterflow_iceberg.tables import ensure_readings_table


def _timed(work: Callable[[], Any]) -> tuple[Any, float, float]:
    """``work()``, its wall seconds and this process's CPU seconds (every thread, chDB's too)."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = work()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def anomalies_phase(phase: Phase, pipeline: BenchPipeline, first: date, days: int) -> None:
    manifest = pipeline.spec.to_manifest()
    manifest["spec"]["anomalies"] = {"measurements": ["Pulse1"], "contamination": 0.01}
    scored = parse_manifest(manifest)
    table = ensure_readings_table(open_catalog(iceberg_location(scored)), pipeline.names.iceberg_namespace)
    model, wall, cpu = _timed(lambda: train_from_lake(scored, table))
    phase.figures["train"] = {"windows": model.card.samples, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2)}

    day_list = [first + timedelta(days=i) for i in range(days)]
    snapshot = table.current_snapshot()
    (rows, _), wall, cpu = _timed(
        lambda: score_days(scored, table, day_list, snapshot.snapshot_id if snapshot else None)
    )
    phase.figures["batch"] = _rate(len(rows), wall, cpu) | {"anomalous": int(rows["anomalous"].sum())}

    with session(clickhouse_dsn(scored)) as client:
        ensure_schema(client, scored)
        scorer = WindowScorer(scored, lambda: model)
        windows, wall, cpu = _timed(lambda: scorer(client))
        phase.figures["speed"] = _rate(windows, wall, cpu) | {
            "anomalous": scorer.stats.anomalous,
            "alert_transitions": scorer.stats.transitions,
            "scoring_s": round(scorer.stats.scoring_seconds, 2),
            "scoring_windows_per_s": (
                round(windows / scorer.stats.scoring_seconds) if scorer.stats.scoring_seconds else None
            ),
        }
        _, idle_wall, _ = _timed(lambda: scorer(client))
        phase.figures["speed"]["call_with_nothing_new_ms"] = round(idle_wall * 1000, 1)
    phase.notes.append(
        "speed: the sink's scorer in one call over every window of readings_agg (a live run calls it after each "
        "write of window results, with the windows of a few seconds); batch: windows recomputed from the lake "
        "with Arrow, then scored; CPU is this process's, every thread"
    )


def _rate(windows: int, wall: float, cpu: float) -> dict[str, Any]:
    return {
        "windows": windows,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "windows_per_s": round(windows / wall) if wall else None,
        "cpu_us_per_window": round(cpu / windows * 1e6, 2) if windows else None,
    }
