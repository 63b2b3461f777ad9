"""The equal-work Spark peer: run :mod:`bench.spark_equal_job` in the bench virtualenv on the same
topic, then check what it wrote against the load's ground truth.

Where :mod:`bench.spark_peer` runs seed 000's speed layer (parse, windows, alerts, Parquet), this
peer does meterflow's work (dead letters with a reason, de-duplication, every unique reading into
Iceberg, windows with register consumption, alerts, Kafka and ClickHouse outputs), so
``meterflow_vs_spark_equal_*`` compares like with like. The job prints its own counts; the phase
counts the three output topics and the ClickHouse tables again from outside, and compares the dead
letters by reason with the malformed records the simulator injected.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import Phase
from bench.spark_peer import connector_jars, run_spark_job
from bench.stack import BenchPipeline, BenchStack
from meterflow.consumption import REGISTER_RESET_RATIO, consumption_factor
from meterflow.paths import cache_home
from meterflow.spec.topics import TopicPlan
from meterflow.stack.topics import ensure_topics
from simulator.malformed import VARIANTS

JOB = Path(__file__).resolve().parent / "spark_equal_job.py"
SPARK_EQUAL_VERSION = "4.1.1"
"""pyspark of the peer's own virtualenv: the Makefile's SPARK_EQUAL_VERSION (jars/spark-equal/pom.xml
says why not the 4.2.0 of the seed-logic peer)."""
DATABASE = "spark_equal"
"""The chDB database the job writes (its own chDB folder under the bench home)."""


def peer_spec(pipeline: BenchPipeline) -> dict[str, Any]:
    """What the job needs of the manifest (it imports nothing from meterflow)."""
    spec = pipeline.spec.spec
    if spec.windows.type != "tumbling":
        raise ValueError(f"the equal-work Spark peer does tumbling windows only, not {spec.windows.type!r}")
    return {
        "pipeline": pipeline.names.pipeline,
        "measurements": [
            {
                "name": m.name,
                "series": m.series,
                "unit": m.unit,
                "kind": m.kind,
                "consumption_factor": consumption_factor(m),
                "min": m.min,
                "max": m.max,
            }
            for m in spec.measurements
        ],
        "rules": [
            {
                "name": r.name,
                "measurement": r.measurement,
                "condition": r.condition,
                "threshold": r.threshold,
                "severity": r.severity,
            }
            for r in spec.threshold_rules()
        ],
        "window_ms": spec.windows.size_ms,
        "grace_ms": spec.windows.grace_ms,
        "reset_ratio": REGISTER_RESET_RATIO,
    }


def topics(pipeline: BenchPipeline) -> dict[str, str]:
    """The peer's own output topics (never meterflow's: the streaming phase writes those)."""
    base = f"{pipeline.names.pipeline}-spark-equal"
    return {"dlq": f"{base}.readings.dlq", "aggregates": f"{base}.aggregates", "alerts": f"{base}.alerts"}


def expected_dead_letters(malformed: int) -> dict[str, int]:
    """Dead letters by reason for ``malformed`` injected records: the simulator cycles through
    :data:`simulator.malformed.VARIANTS` (every variant applies to the water manifest)."""
    counts: Counter[str] = Counter()
    for i in range(malformed):
        counts[VARIANTS[i % len(VARIANTS)][1].value] += 1
    return dict(sorted(counts.items()))


def _check_venv(python: Path) -> None:
    """pandas, pyarrow (register steps) and chdb (the ClickHouse sink) must be in the bench venv."""
    probe = subprocess.run(
        [str(python), "-c", "import chdb, pandas, pyarrow"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        missing = (probe.stderr.strip().splitlines() or ["?"])[-1]
        raise RuntimeError(
            f"the bench virtualenv {python.parent.parent} lacks a module ({missing}); run `make bench-deps`"
        )


def count_topics(bootstrap: str, names: list[str]) -> dict[str, int]:
    """Records in each topic (end minus beginning offsets over its partitions)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-spark-equal-count"})
    try:
        found: dict[str, int] = {}
        for name in names:
            meta = consumer.list_topics(name, timeout=10).topics[name]
            total = 0
            for p in meta.partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)
                total += high - low
            found[name] = total
        return found
    finally:
        consumer.close()


def count_clickhouse(folder: Path) -> dict[str, Any]:
    """Rows in the peer's chDB tables, read after the job has exited (one owner at a time)."""
    import chdb.session

    session = chdb.session.Session(str(folder))
    try:

        def rows(sql: str) -> list[list[Any]]:
            data: list[list[Any]] = json.loads(str(session.query(sql, "JSONCompact")))["data"]
            return data

        return {
            "window_rows": int(rows(f"SELECT count() FROM {DATABASE}.readings_agg FINAL")[0][0]),
            "alert_rows": int(rows(f"SELECT count() FROM {DATABASE}.alerts FINAL")[0][0]),
            "alerts_by_rule": {
                str(r[0]): int(r[1]) for r in rows(f"SELECT rule, count() FROM {DATABASE}.alerts FINAL GROUP BY rule")
            },
            "consumption_by_measurement": {
                str(r[0]): r[1]
                for r in rows(
                    f"SELECT measurement_type, round(sum(consumption), 1) FROM {DATABASE}.readings_agg FINAL "
                    "GROUP BY measurement_type ORDER BY measurement_type"
                )
            },
        }
    finally:
        session.close()


def spark_equal_phase(
    phase: Phase,
    stack: BenchStack,
    pipeline: BenchPipeline,
    readings: int,
    kinds: dict[str, int],
    max_offsets: int,
    timeout_s: float,
    budget_s: float = 0,
) -> None:
    """Run the equal-work peer once; readings/s over the streaming part, outputs checked (with
    ``budget_s``, the queries stop after that long and the rate counts what both read by then)."""
    venv = cache_home() / f"bench-venv-spark-{SPARK_EQUAL_VERSION}"
    python = venv / "bin" / "python"
    if not python.exists():
        raise RuntimeError(f"no virtualenv at {venv}; run `make bench-deps` (pyspark {SPARK_EQUAL_VERSION}, chdb)")
    _check_venv(python)
    jars = connector_jars(python, cache_home() / "jars" / "spark-equal")
    if not any(j.name.startswith("iceberg-spark-runtime") for j in jars):
        raise RuntimeError(
            f"no Iceberg Spark runtime in {cache_home() / 'jars' / 'spark-equal'}; run `make bench-deps`"
        )
    out = stack.home / "spark-equal"
    out.mkdir(parents=True, exist_ok=True)
    spec_file = out / "spec.json"
    spec_file.write_text(json.dumps(peer_spec(pipeline), indent=1))
    names = topics(pipeline)
    partitions = pipeline.spec.spec.source.partitions
    ensure_topics(stack.bootstrap, [TopicPlan(name, role, partitions, 1) for role, name in names.items()])
    log = stack.home / "logs" / "bench-spark-equal.out"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYSPARK_PYTHON=str(python), PYSPARK_SUBMIT_ARGS="--driver-memory 3g pyspark-shell")
    command = [
        str(python),
        str(JOB),
        "--bootstrap",
        stack.bootstrap,
        "--topic",
        pipeline.names.topics.readings,
        "--spec",
        str(spec_file),
        "--dlq-topic",
        names["dlq"],
        "--aggregates-topic",
        names["aggregates"],
        "--alerts-topic",
        names["alerts"],
        "--out",
        str(out),
        "--jars",
        ",".join(str(j) for j in jars),
        "--max-offsets",
        str(max_offsets),
        "--max-seconds",
        str(budget_s),
    ]
    result, wall = run_spark_job(phase, stack, command, env, log, timeout_s, "the equal-work Spark peer")
    processed = min(result["input_rows_per_query"].values()) if result["stopped_at_budget"] else readings
    phase.figures |= result | {
        "readings": processed,
        "readings_in_topic": readings,
        "wall_s": round(wall, 1),
        "readings_per_s": round(processed / result["seconds"]),
        "end_to_end_readings_per_s": round(processed / wall),
        "jars": [j.name for j in jars],
    }
    if result["stopped_at_budget"]:
        phase.notes.append(
            f"stopped after the {budget_s:.0f} s budget: both queries had read at least {processed:,} of the "
            f"{readings:,} readings; the rate counts those (outputs are not checked against the whole load)"
        )
    else:
        phase.figures["verify"] = verify(stack.bootstrap, names, out / "clickhouse", result, kinds, readings)
    phase.notes.append(
        "local[2], shuffle partitions 2, maxOffsetsPerTrigger bounded, Trigger.AvailableNow, RocksDB state; two "
        "queries each read the topic (ingest: dead letters, Iceberg, alerts; windows: de-duplication within the "
        "watermark, register steps in applyInPandasWithState, windows); readings_per_s excludes the Spark "
        "session start (session_s), end_to_end includes it"
    )


def verify(
    bootstrap: str,
    names: dict[str, str],
    clickhouse: Path,
    result: dict[str, Any],
    kinds: dict[str, int],
    readings: int,
) -> dict[str, Any]:
    """Outputs counted from outside the job, and compared with the load's ground truth."""
    in_topics = count_topics(bootstrap, list(names.values()))
    tables = count_clickhouse(clickhouse)
    dlq = result["dlq_by_reason"]
    found: dict[str, Any] = {
        "kafka_records": {role: in_topics[name] for role, name in names.items()},
        "clickhouse": tables,
        "checks": {},
    }
    checks = found["checks"]
    if "malformed" in kinds:
        expected = expected_dead_letters(kinds["malformed"])
        found["expected_dlq_by_reason"] = expected
        checks["dead letters by reason = injected malformed"] = dlq == expected
        valid = readings - kinds["malformed"]
        checks["unique valid = valid - duplicates"] = result["unique_valid"] == valid - kinds.get("duplicate", 0)
    checks["dead-letter topic = dead letters"] = in_topics[names["dlq"]] == sum(dlq.values())
    checks["Iceberg rows = unique valid"] = result["iceberg_rows"] == result["unique_valid"]
    checks["Iceberg snapshot total = rows"] = result["iceberg_snapshot_total_records"] == result["iceberg_rows"]
    checks["aggregates topic = window rows"] = in_topics[names["aggregates"]] == result["window_rows"]
    checks["ClickHouse windows = window rows"] = tables["window_rows"] == result["window_rows"]
    checks["alerts topic = alert rows"] = in_topics[names["alerts"]] == result["alert_rows"]
    checks["ClickHouse alerts = alert rows"] = tables["alert_rows"] == result["alert_rows"]
    if "trigger" in kinds:
        checks["alert rows = injected triggers"] = result["alert_rows"] == kinds["trigger"]
    found["all_checks_pass"] = all(checks.values())
    return found
