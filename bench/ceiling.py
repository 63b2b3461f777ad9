"""The ceiling: Kafka's own ``org.apache.kafka.tools.ConsumerPerformance`` on the readings topic."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from typing import Any

from bench.common import Phase, ProcessMonitor, monitored
from meterflow.paths import jar_dir


def consumer_performance(
    bootstrap: str, topic: str, records: int, monitor: ProcessMonitor | None = None, timeout_s: float = 300
) -> dict[str, Any]:
    """Consume ``records`` from the start of ``topic`` with a fresh group; the tool's own figures."""
    java = shutil.which("java") or "java"
    command = [
        java,
        "-Xmx512m",
        "-cp",
        f"{jar_dir('kafka-broker')}/*",
        "org.apache.kafka.tools.ConsumerPerformance",
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
        "--num-records",
        str(records),
        "--group",
        f"bench-ceiling-{uuid.uuid4().hex[:8]}",
        "--timeout",
        "60000",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if monitor is not None:
        monitor.watch(process.pid, label="java ConsumerPerformance")
    stdout, stderr = process.communicate(timeout=timeout_s)
    lines = [line for line in stdout.splitlines() if line.strip()]
    header = next((i for i, line in enumerate(lines) if line.startswith("start.time")), None)
    if process.returncode != 0 or header is None or header + 1 >= len(lines):
        tail = (stderr or stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"ConsumerPerformance exited {process.returncode}: {' | '.join(tail)}")
    names = [n.strip() for n in lines[header].split(",")]
    values = [v.strip() for v in lines[header + 1].split(",")]
    row = dict(zip(names, values, strict=False))
    return {
        "records": int(float(row["data.consumed.in.nMsg"])),
        "mb": float(row["data.consumed.in.MB"]),
        "records_per_s": round(float(row["nMsg.sec"])),
        "fetch_records_per_s": round(float(row["fetch.nMsg.sec"])),
        "mb_per_s": float(row["MB.sec"]),
        "rebalance_ms": int(float(row["rebalance.time.ms"])),
        "fetch_ms": int(float(row["fetch.time.ms"])),
    }


def ceiling_phase(phase: Phase, bootstrap: str, topic: str, records: int) -> None:
    """Run the tool once; ``records_per_s`` includes its group join, ``fetch_records_per_s`` not."""
    with monitored(phase) as monitor:
        phase.figures |= consumer_performance(bootstrap, topic, records, monitor)
    phase.notes.append("Kafka ConsumerPerformance 4.3.1, one consumer, all partitions, fresh group")
