"""Batch: recompute the loaded days from Iceberg into ClickHouse (``meterflow batch --from --to``)."""

from __future__ import annotations

import re
import time
from datetime import date, timedelta

from bench.common import Phase, monitored, start_watched, wait_or_kill
from bench.stack import METERFLOW, BenchPipeline, BenchStack


def batch_phase(phase: Phase, stack: BenchStack, pipeline: BenchPipeline, first: date, days: int) -> None:
    """Time one ``meterflow batch`` over ``days`` local days from ``first`` (snapshot expiry off)."""
    last = first + timedelta(days=days - 1)
    log = stack.home / "logs" / "bench-batch.out"
    command = [
        str(METERFLOW),
        "batch",
        "-f",
        str(pipeline.path),
        "--from",
        str(first),
        "--to",
        str(last),
        "--no-expire",
    ]
    with monitored(phase) as monitor, log.open("w") as out:
        started = time.monotonic()
        process = start_watched(monitor, command, stack.env(), out)
        code = wait_or_kill(process, 1800, "the batch", log)
        seconds = time.monotonic() - started
    output = log.read_text()
    if code != 0:
        raise RuntimeError(f"meterflow batch exited {code}: {output.strip().splitlines()[-1:]} (log {log})")
    flat = " ".join(output.split())  # rich wraps the summary line
    start = flat.find("batch 2")
    summary = flat[start:] if start >= 0 else ""
    phase.figures |= {
        "days": days,
        "from": str(first),
        "to": str(last),
        "wall_s": round(seconds, 1),
        "summary": summary,
    }
    if match := re.search(r": ([\d,]+) readings", summary):
        readings = int(match.group(1).replace(",", ""))
        phase.figures["readings"] = readings
        phase.figures["readings_per_s"] = round(readings / seconds)
    timings = r"in ([\d.]+)s \(JVM start ([\d.]+)s, Flink job ([\d.]+)s, ClickHouse writes ([\d.]+)s\)"
    if match := re.search(timings, summary):
        phase.figures["batch_seconds"] = float(match.group(1))
        phase.figures["jvm_seconds"] = float(match.group(2))
        phase.figures["flink_seconds"] = float(match.group(3))
        phase.figures["write_seconds"] = float(match.group(4))
    elif match := re.search(r"in ([\d.]+)s \(Flink ([\d.]+)s\)", summary):  # the Flink SQL batch's line
        phase.figures["batch_seconds"] = float(match.group(1))
        phase.figures["flink_seconds"] = float(match.group(2))
    phase.notes.append("wall_s includes the CLI's start (imports, JVM); batch_seconds is the job's own figure")
