"""Alert latency: readings at a fixed rate with HIGH_FLOW triggers among them, while ``meterflow run``
runs continuously; time from produce to the alert row being queryable in ClickHouse."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime
from typing import Any

from bench.common import Phase, kill_group, monitored, percentile, start_watched
from bench.load import DAY_MS, producer_config, publish_meters
from bench.stack import METERFLOW, BenchPipeline, BenchStack
from meterflow.stack.endpoints import clickhouse_dsn
from meterflow_clickhouse.client import session
from simulator.engine import Settings, Simulation

TRIGGER_BASE = 1000.0
"""Trigger values are TRIGGER_BASE + n (inside Pulse1's max, above the 500 L threshold): the value names the trigger."""


class _Producer(threading.Thread):
    """Sends simulated readings at ``rate``/s for ``seconds``, a trigger every ``trigger_every_s``."""

    def __init__(
        self, bootstrap: str, topic: str, simulation: Simulation, rate: float, seconds: float, trigger_every_s: float
    ) -> None:
        super().__init__(daemon=True)
        from confluent_kafka import Producer

        self.producer = Producer(producer_config(bootstrap, linger_ms=5))
        self.topic, self.simulation, self.rate, self.seconds = topic, simulation, rate, seconds
        self.trigger_every_s = trigger_every_s
        self.sent_at: dict[float, float] = {}
        self.sent = 0
        self.elapsed = 0.0
        self.error: str | None = None

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"

    def _run(self) -> None:
        records = self.simulation.records()
        started = time.monotonic()
        next_trigger = started
        normal = n = 0
        while (elapsed := time.monotonic() - started) < self.seconds:
            due = int(self.rate * elapsed)
            while normal < due:
                record = next(records)
                self._send(record.key, record.value)
                normal += 1
                if time.monotonic() >= next_trigger:
                    value = TRIGGER_BASE + n
                    stamp = datetime.fromtimestamp((record.event_ms or 0) / 1000 + 0.001 + n % 400 / 1000, UTC)
                    payload = {
                        "meter_id": record.key.decode(),
                        "timestamp": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                        "measurement_type": "Pulse1",
                        "series": "P1",
                        "unit": "L",
                        "value": value,
                    }
                    self.sent_at[value] = time.time()
                    self._send(record.key, json.dumps(payload, separators=(",", ":")).encode())
                    n += 1
                    next_trigger += self.trigger_every_s
            self.producer.poll(0)
            time.sleep(0.005)
        self.producer.flush(30)
        self.elapsed = time.monotonic() - started

    def _send(self, key: bytes, value: bytes) -> None:
        while True:
            try:
                self.producer.produce(self.topic, value=value, key=key)
                self.sent += 1
                return
            except BufferError:
                self.producer.poll(0.01)


def _wait_for(log: Any, text: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if text in log.read_text():
            return
        if process.poll() is not None:
            raise RuntimeError(f"meterflow run exited {process.returncode}: {log.read_text()[-300:]}")
        time.sleep(0.5)
    raise RuntimeError(f"the job did not start within {timeout_s:.0f}s")


def latency_phase(
    phase: Phase,
    stack: BenchStack,
    pipeline: BenchPipeline,
    meters: int,
    rate: float,
    warmup_s: float,
    measure_s: float,
    trigger_every_s: float,
    poll_s: float = 0.1,
) -> None:
    """Produce ``warmup_s + measure_s`` seconds at ``rate``; p50/p95/p99 of the measured triggers."""
    days = max(1, int((warmup_s + measure_s) * rate / (meters * 194)) + 1)
    simulation = Simulation(
        pipeline.spec,
        Settings(meters=meters, duration_ms=days * DAY_MS, start=datetime(2024, 6, 1, tzinfo=UTC), seed=11),
    )
    publish_meters(stack.bootstrap, pipeline, simulation.meter_records())
    dsn, database = clickhouse_dsn(pipeline.spec), pipeline.names.clickhouse_database
    log = stack.home / "logs" / "bench-latency.out"
    log.parent.mkdir(parents=True, exist_ok=True)
    seen: dict[float, tuple[float, float]] = {}
    polls: list[float] = []
    with monitored(phase) as monitor, log.open("w") as out:
        monitor.watch(stack.broker_pid, tree=False, label="java kafka.Kafka (broker)", existing=True)
        process = start_watched(
            monitor, [str(METERFLOW), "run", "-f", str(pipeline.path), "--duration", "60m"], stack.env(), out
        )
        try:
            _wait_for(log, "running", process, 180)
            producer = _Producer(
                stack.bootstrap, pipeline.names.topics.readings, simulation, rate, warmup_s + measure_s, trigger_every_s
            )
            started = time.time()
            producer.start()
            deadline = None
            previous = time.time()
            while True:
                t = time.time()
                with session(dsn, database=database) as client:
                    # every breach is a transition (an alert already open for the meter is updated)
                    values = client.query(
                        "SELECT value FROM alert_events WHERE rule = 'HIGH_FLOW' AND transition IN ('OPENED', "
                        f"'UPDATED') AND value >= {TRIGGER_BASE}"
                    ).result_rows
                done = time.time()
                polls.append(done - t)
                for (value,) in values:
                    seen.setdefault(float(value), (previous, done))
                previous = done
                if not producer.is_alive():
                    deadline = deadline or time.time() + 60
                    if len(seen) >= len(producer.sent_at) or time.time() > deadline:
                        break
                time.sleep(poll_s)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)  # a savepoint, then exit
                try:
                    process.wait(timeout=180)
                except subprocess.TimeoutExpired:
                    kill_group(process)
    if producer.error:
        raise RuntimeError(f"the producer failed: {producer.error}")
    measured = {v: s for v, s in producer.sent_at.items() if s - started >= warmup_s}
    latencies = [(seen[v][1] - s) * 1000 for v, s in measured.items() if v in seen]
    lower = [max(0.0, seen[v][0] - s) * 1000 for v, s in measured.items() if v in seen]
    phase.figures |= {
        "rate_target": rate,
        "rate_achieved": round(producer.sent / producer.elapsed) if producer.elapsed else 0,
        "readings_sent": producer.sent,
        "warmup_s": warmup_s,
        "measure_s": measure_s,
        "triggers_measured": len(measured),
        "alerts_seen": len(latencies),
        "alerts_missing": len(measured) - len(latencies),
        "p50_ms": _ms(percentile(latencies, 50)),
        "p95_ms": _ms(percentile(latencies, 95)),
        "p99_ms": _ms(percentile(latencies, 99)),
        "max_ms": _ms(max(latencies) if latencies else None),
        "lower_bound_p50_ms": _ms(percentile(lower, 50)),
        "lower_bound_p99_ms": _ms(percentile(lower, 99)),
        "min_ms": _ms(min(latencies) if latencies else None),
        "poll_interval_ms": round(poll_s * 1000 + 1000 * (percentile(polls, 50) or 0)),
        "poll_p50_ms": _ms(1000 * (percentile(polls, 50) or 0)),
        "checkpoint_interval": pipeline.spec.spec.flink.checkpoint_interval,
    }
    phase.notes.append(
        "p50/p95/p99: end of the first ClickHouse poll (lock, chDB open, query) that returns the alert "
        "row - produce() call time: an upper bound. lower_bound_*: end of the poll before it (the row "
        "was not visible yet). A poll every poll_interval_ms."
    )


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
