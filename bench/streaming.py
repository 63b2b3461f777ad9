"""meterflow streaming: the water-meters job from the earliest offset until everything is in
Iceberg and ClickHouse (``meterflow run --until-idle``), with CPU and memory per process."""

from __future__ import annotations

import threading
import time
from typing import Any

from bench.common import Phase, monitored, start_watched, wait_or_kill
from bench.profiling import Profiler
from bench.stack import METERFLOW, BenchPipeline, BenchStack


class OffsetTimeline:
    """Samples the job's committed offsets (Flink commits them on each completed checkpoint)."""

    def __init__(self, bootstrap: str, pipeline: BenchPipeline, interval_s: float = 1.0) -> None:
        from confluent_kafka import Consumer, TopicPartition

        self._consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": pipeline.names.consumer_group, "enable.auto.commit": False}
        )
        topic = pipeline.names.topics.readings
        meta = self._consumer.list_topics(topic, timeout=10).topics[topic]
        self._partitions = [TopicPartition(topic, p) for p in meta.partitions]
        self.end = sum(self._consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in self._partitions)
        self.samples: list[tuple[float, int]] = []
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.started = time.monotonic()

    def start(self) -> None:
        self.started = time.monotonic()
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                committed = self._consumer.committed(self._partitions, timeout=5)
                total = sum(max(tp.offset, 0) for tp in committed)
                self.samples.append((time.monotonic() - self.started, total))
            except Exception:  # the broker is busy; try again next interval
                pass
            self._stop.wait(self._interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._consumer.close()

    def sustained(self) -> dict[str, Any]:
        """Rate between the first and the last checkpoint commit (job start and drain excluded)."""
        changes = [(t, n) for i, (t, n) in enumerate(self.samples) if i == 0 or n != self.samples[i - 1][1]]
        moving = [(t, n) for t, n in changes if n > 0]
        if len(moving) < 2:
            return {"note": "fewer than two checkpoint commits: no sustained rate"}
        (t0, n0), (t1, n1) = moving[0], moving[-1]
        return {
            "sustained_readings_per_s": round((n1 - n0) / (t1 - t0)) if t1 > t0 else None,
            "first_commit_s": round(t0, 1),
            "first_commit_offset": n0,
            "last_commit_s": round(t1, 1),
            "commits": len(moving),
        }


def streaming_phase(
    phase: Phase, stack: BenchStack, pipeline: BenchPipeline, timeout_s: float, profile: bool = False
) -> None:
    """Run the job to idle; end-to-end and sustained readings/s, CPU and peak RSS per process
    (with ``profile``: JFR and py-spy summaries, see :mod:`bench.profiling`)."""
    timeline = OffsetTimeline(stack.bootstrap, pipeline)
    total = timeline.end
    log = stack.home / "logs" / "bench-streaming.out"
    log.parent.mkdir(parents=True, exist_ok=True)
    with monitored(phase) as monitor, log.open("w") as out:
        monitor.watch(stack.broker_pid, tree=False, label="java kafka.Kafka (broker)", existing=True)
        started = time.monotonic()
        timeline.start()
        process = start_watched(
            monitor, [str(METERFLOW), "run", "-f", str(pipeline.path), "--until-idle"], stack.env(), out
        )
        profiler = Profiler(process.pid, stack.home / "profile") if profile else None
        if profiler is not None:
            profiler.start()
        try:
            code = wait_or_kill(process, timeout_s, "the job", log)
        finally:
            timeline.stop()
            if profiler is not None:
                phase.figures["profile"] = profiler.stop()
        seconds = time.monotonic() - started
    output = log.read_text()
    if code != 0:
        raise RuntimeError(f"meterflow run exited {code}: {output.strip().splitlines()[-1:]} (log {log})")
    phase.figures |= {
        "readings": total,
        "wall_s": round(seconds, 1),
        "end_to_end_readings_per_s": round(total / seconds),
    } | timeline.sustained()
    phase.figures["job_summary"] = next((line for line in output.splitlines() if line.startswith("job ")), "")
    phase.figures["timeline"] = timeline.samples[:: max(1, len(timeline.samples) // 120)]
    phase.figures |= verify(pipeline)
    phase.notes.append(
        "wall_s: from `meterflow run` start (JVM, job submission) to its exit after the drain, the "
        "savepoint and the last ClickHouse write; sustained: committed-offset slope between the "
        "first and the last checkpoint commit."
    )


def verify(pipeline: BenchPipeline) -> dict[str, Any]:
    """What arrived: ClickHouse's ingest totals and window rows, Iceberg's row count."""
    from meterflow.stack.endpoints import clickhouse_dsn, iceberg_location
    from meterflow_clickhouse.client import session
    from meterflow_iceberg.catalog import open_catalog

    found: dict[str, Any] = {}
    with session(clickhouse_dsn(pipeline.spec), database=pipeline.names.clickhouse_database) as client:
        row = client.query("SELECT in_total, valid, dlq, on_time, late, duplicates FROM ingest_totals").result_rows[0]
        found["clickhouse_ingest_totals"] = dict(
            zip(["in", "valid", "dlq", "on_time", "late", "duplicates"], row, strict=True)
        )
        found["clickhouse_window_rows"] = client.query("SELECT count() FROM readings_agg FINAL").result_rows[0][0]
        found["clickhouse_alert_rows"] = client.query("SELECT count() FROM alerts FINAL").result_rows[0][0]
    table = open_catalog(iceberg_location(pipeline.spec)).load_table(pipeline.names.readings_table)
    snapshot = table.current_snapshot()
    if snapshot is not None and snapshot.summary is not None:
        found["iceberg_rows"] = int(snapshot.summary.get("total-records", "0"))
    return found
