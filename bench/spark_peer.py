"""The Spark peer: run :mod:`bench.spark_job` in the bench virtualenv (``make bench-deps``) on the
same topic, and compare its readings/s with meterflow's."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.common import Phase, monitored, start_watched, wait_or_kill
from bench.stack import BenchStack
from meterflow.paths import cache_home

JOB = Path(__file__).resolve().parent / "spark_job.py"


def _artifact(jar: Path) -> str:
    """``kafka-clients-3.9.2.jar`` → ``kafka-clients`` (name without version)."""
    return re.sub(r"-\d[\w.\-]*\.jar$", "", jar.name)


def connector_jars(python: Path, folder: Path | None = None) -> list[Path]:
    """The jars in ``folder`` (default: spark-sql-kafka and its dependencies), minus what ``python``'s
    pyspark already ships (scala, hadoop, ...)."""
    folder = folder or cache_home() / "jars" / "spark"
    jars = sorted(folder.glob("*.jar"))
    if not jars:
        raise RuntimeError(f"no Spark connector jars in {folder}; run `make bench-deps`")
    site = subprocess.run(
        [str(python), "-c", "import pyspark, os; print(os.path.dirname(pyspark.__file__))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    shipped = {_artifact(j) for j in Path(site, "jars").glob("*.jar")}
    return [j for j in jars if _artifact(j) not in shipped]


def run_spark_job(
    phase: Phase, stack: BenchStack, command: list[str], env: dict[str, str], log: Path, timeout_s: float, what: str
) -> tuple[dict[str, Any], float]:
    """Run a Spark peer's script with the broker watched too; its ``BENCH-RESULT`` JSON and the wall
    seconds (a RuntimeError naming ``what`` and the log when it fails)."""
    with monitored(phase) as monitor, log.open("w") as handle:
        monitor.watch(stack.broker_pid, tree=False, label="java kafka.Kafka (broker)", existing=True)
        started = time.monotonic()
        process = start_watched(monitor, command, env, handle)
        code = wait_or_kill(process, timeout_s, what, log)
        wall = time.monotonic() - started
    output = log.read_text()
    line = next((x for x in output.splitlines() if x.startswith("BENCH-RESULT ")), None)
    if code != 0 or line is None:
        errors = [x for x in output.splitlines() if "Error" in x or "Exception" in x][:2]
        raise RuntimeError(f"{what} exited {code}: {' | '.join(errors) or output[-300:]} (log {log})")
    result: dict[str, Any] = json.loads(line.removeprefix("BENCH-RESULT "))
    return result, wall


def spark_phase(phase: Phase, stack: BenchStack, topic: str, readings: int, max_offsets: int, timeout_s: float) -> None:
    """Run the Spark peer once; readings/s over the streaming part (session start reported apart)."""
    venv = cache_home() / "bench-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        raise RuntimeError(f"no bench virtualenv at {venv}; run `make bench-deps` (pyspark)")
    jars = connector_jars(python)
    out = stack.home / "spark"
    log = stack.home / "logs" / "bench-spark.out"
    log.parent.mkdir(parents=True, exist_ok=True)  # absent when the streaming phase did not run
    env = dict(os.environ, PYSPARK_PYTHON=str(python), PYSPARK_SUBMIT_ARGS="--driver-memory 3g pyspark-shell")
    command = [
        str(python),
        str(JOB),
        "--bootstrap",
        stack.bootstrap,
        "--topic",
        topic,
        "--out",
        str(out),
        "--jars",
        ",".join(str(j) for j in jars),
        "--max-offsets",
        str(max_offsets),
    ]
    result, wall = run_spark_job(phase, stack, command, env, log, timeout_s, "the Spark peer")
    phase.figures |= result | {
        "readings": readings,
        "wall_s": round(wall, 1),
        "readings_per_s": round(readings / result["seconds"]),
        "end_to_end_readings_per_s": round(readings / wall),
        "jars": [j.name for j in jars],
    }
    phase.notes.append(
        "local[2], shuffle partitions 2, maxOffsetsPerTrigger bounded, Trigger.AvailableNow; the two "
        "queries (windows, alerts) each read the topic, as seed 000's job does; readings_per_s "
        "excludes the Spark session start (session_s), end_to_end includes it"
    )
