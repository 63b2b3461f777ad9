"""Alert latency: readings at a fixed rate with HIGH_FLOW triggers among them, while ``meterflow run``
runs continuously; time from produce to the alert row being queryable in ClickHouse."""

from __future__ import annotations

import functools
import itertools
import json
import os
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime
from typing import Any

from bench.common import Phase, kill_group, monitored, percentile, start_watched
from bench.load import DAY_MS, producer_config, publish_meters
from bench.stack import METERFLOW, BenchPipeline, BenchStack
from meterflow import kafka_clients
from meterflow.stack.endpoints import clickhouse_dsn
from meterflow_clickhouse.client import session
from simulator.engine import Settings, Simulation

TRIGGER_BASE = 1000.0
"""Trigger values are TRIGGER_BASE + n (inside Pulse1's max, above the 500 L threshold): the value names the trigger."""
PROBE_VALUE = TRIGGER_BASE - 1
"""The value of the one trigger sent before the load, to see that the pipeline answers."""


class _Producer(threading.Thread):
    """Sends ``records`` at ``rate``/s for ``seconds``, a trigger every ``trigger_every_s``.

    The records are made before the clock starts: the simulator costs more CPU per reading than
    the pipeline, and on 2 cores a load generator that shares them measures its own cost."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        records: list[tuple[bytes, bytes, int]],
        rate: float,
        seconds: float,
        trigger_every_s: float,
    ) -> None:
        super().__init__(daemon=True)
        from confluent_kafka import Producer

        self.producer = Producer(producer_config(bootstrap, linger_ms=5))
        self.topic, self.records, self.rate, self.seconds = topic, records, rate, seconds
        self.trigger_every_s = trigger_every_s
        self.sent_at: dict[float, float] = {}
        self.acked_at: dict[float, float] = {}
        self.sent = 0
        self.elapsed = 0.0
        self.error: str | None = None

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"

    def _run(self) -> None:
        records = iter(self.records)
        started = time.monotonic()
        next_trigger = started
        normal = n = 0
        while (elapsed := time.monotonic() - started) < self.seconds:
            due = int(self.rate * elapsed)
            while normal < due:
                key, value, event_ms = next(records)
                self._send(key, value)
                normal += 1
                if time.monotonic() >= next_trigger:
                    trigger = TRIGGER_BASE + n
                    payload = _trigger(key, event_ms + 1 + n % 400, trigger)
                    self.sent_at[trigger] = time.time()
                    acked = functools.partial(self._acked, trigger)
                    self._send(key, payload, acked)
                    n += 1
                    next_trigger += self.trigger_every_s
            self.producer.poll(0)
            time.sleep(0.005)
        self.producer.flush(30)
        self.elapsed = time.monotonic() - started

    def _acked(self, trigger: float, error: Any, _message: Any) -> None:
        """The broker has the trigger (delivery reports are served by ``poll``, every 5 ms)."""
        if error is None:
            self.acked_at[trigger] = time.time()

    def _send(self, key: bytes, value: bytes, on_delivery: Any = None) -> None:
        while True:
            try:
                self.producer.produce(self.topic, value=value, key=key, on_delivery=on_delivery)
                self.sent += 1
                return
            except BufferError:
                self.producer.poll(0.01)


def _trigger(key: bytes, event_ms: int, value: float) -> bytes:
    """A Pulse1 reading of ``value`` litres (over the HIGH_FLOW threshold) at ``event_ms``."""
    stamp = datetime.fromtimestamp(event_ms / 1000, UTC)
    payload = {
        "meter_id": key.decode(),
        "timestamp": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "measurement_type": "Pulse1",
        "series": "P1",
        "unit": "L",
        "value": value,
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def _await_first_alert(
    bootstrap: str, topic: str, first: tuple[bytes, bytes, int], dsn: str, database: str, timeout_s: float
) -> float:
    """Send one trigger (``PROBE_VALUE``) ahead of the load and wait until its alert is queryable:
    the whole pipeline has started (a job reported running may still be starting its tasks, and
    readings sent then would queue). Seconds it took."""
    from confluent_kafka import Producer

    key, _, event_ms = first
    producer = Producer(producer_config(bootstrap, linger_ms=0))
    producer.produce(topic, value=_trigger(key, event_ms - 1, PROBE_VALUE), key=key)
    producer.flush(30)
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        with session(dsn, database=database) as client:
            found = client.query(f"SELECT count() FROM alert_events WHERE value = {PROBE_VALUE}").result_rows[0][0]
        if found:
            return time.monotonic() - started
        time.sleep(0.2)
    raise RuntimeError(f"the probe alert was not queryable within {timeout_s:.0f}s")


class _AlertWatcher(threading.Thread):
    """Reads the alerts topic as a downstream system would: when each trigger's transition reached
    Kafka (the job's share of the latency; the rest is the serving sink's)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.consumer = kafka_clients.native_consumer(
            bootstrap,
            "bench-latency-alerts",
            f"bench-latency-alerts-{time.time_ns()}",
            {"auto.offset.reset": "earliest", "enable.auto.commit": False},
        )
        self.consumer.subscribe([topic])
        self.seen_at: dict[float, float] = {}
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.is_set():
                for message in self.consumer.consume(num_messages=1000, timeout=0.05):
                    value_bytes = message.value()
                    if message.error() is not None or not value_bytes:
                        continue
                    alert = json.loads(value_bytes)
                    value = float(alert.get("transition_value", 0.0))
                    if alert.get("transition") in ("OPENED", "UPDATED") and value >= TRIGGER_BASE:
                        self.seen_at.setdefault(value, time.time())
        finally:
            self.consumer.close()


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
    needed = int(rate * (warmup_s + measure_s) * 1.05) + 1000
    records = [(r.key, r.value, r.event_ms or 0) for r in itertools.islice(simulation.records(), needed)]
    dsn, database = clickhouse_dsn(pipeline.spec), pipeline.names.clickhouse_database
    log = stack.home / "logs" / "bench-latency.out"
    log.parent.mkdir(parents=True, exist_ok=True)
    seen: dict[float, tuple[float, float]] = {}
    polls: list[float] = []
    with monitored(phase) as monitor, log.open("w") as out:
        monitor.watch(stack.broker_pid, tree=False, label="java kafka.Kafka (broker)", existing=True)
        monitor.watch(os.getpid(), tree=False, label="python harness (producer, polls, alerts reader)", existing=True)
        process = start_watched(
            monitor, [str(METERFLOW), "run", "-f", str(pipeline.path), "--duration", "60m"], stack.env(), out
        )
        watcher: _AlertWatcher | None = None
        try:
            _wait_for(log, "running", process, 180)
            ready_s = _await_first_alert(
                stack.bootstrap, pipeline.names.topics.readings, records[0], dsn, database, timeout_s=180
            )
            producer = _Producer(
                stack.bootstrap, pipeline.names.topics.readings, records, rate, warmup_s + measure_s, trigger_every_s
            )
            watcher = _AlertWatcher(stack.bootstrap, pipeline.names.topics.alerts)
            watcher.start()
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
            if watcher is not None:
                watcher.stopped.set()
                watcher.join(timeout=10)
            if process.poll() is None:
                process.send_signal(signal.SIGINT)  # a savepoint, then exit
                try:
                    process.wait(timeout=180)
                except subprocess.TimeoutExpired:
                    kill_group(process)
    if producer.error:
        raise RuntimeError(f"the producer failed: {producer.error}")
    measured = {v: s for v, s in producer.sent_at.items() if s - started >= warmup_s}
    acked_ms = _delays_ms(producer.sent_at, producer.acked_at)
    in_kafka_ms = _delays_ms(producer.sent_at, watcher.seen_at if watcher is not None else {})
    queryable_ms = _delays_ms(producer.sent_at, {v: done for v, (_, done) in seen.items()})
    latencies = [queryable_ms[v] for v in measured if v in queryable_ms]
    in_kafka = [in_kafka_ms[v] for v in measured if v in in_kafka_ms]
    acked = [acked_ms[v] for v in measured if v in acked_ms]
    lower = [max(0.0, seen[v][0] - s) * 1000 for v, s in measured.items() if v in seen]
    phase.figures |= {
        "first_alert_s": round(ready_s, 1),
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
        "alerts_topic_p50_ms": _ms(percentile(in_kafka, 50)),
        "alerts_topic_p99_ms": _ms(percentile(in_kafka, 99)),
        "alerts_topic_max_ms": _ms(max(in_kafka) if in_kafka else None),
        "acked_p50_ms": _ms(percentile(acked, 50)),
        "acked_p99_ms": _ms(percentile(acked, 99)),
        # every trigger, the warm-up's too: [seconds after the producer started, ms until the broker
        # acknowledged it, ms until it was in the alerts topic, ms until queryable]
        "samples": [
            [round(s - started, 3), _ms(acked_ms.get(v)), _ms(in_kafka_ms.get(v)), _ms(queryable_ms.get(v))]
            for v, s in sorted(producer.sent_at.items(), key=lambda item: item[1])
        ],
        "poll_interval_ms": round(poll_s * 1000 + 1000 * (percentile(polls, 50) or 0)),
        "poll_p50_ms": _ms(1000 * (percentile(polls, 50) or 0)),
        "checkpoint_interval": pipeline.spec.spec.flink.checkpoint_interval,
    }
    phase.notes.append(
        "p50/p95/p99: end of the first ClickHouse poll (lock, chDB open, query) that returns the alert "
        "row - produce() call time: an upper bound. lower_bound_*: end of the poll before it (the row "
        "was not visible yet). A poll every poll_interval_ms. alerts_topic_*: produce() call time - "
        "when a consumer of the alerts topic (read_uncommitted; the broker answers its fetch on arrival) read the "
        "transition: the job's share."
    )


def _delays_ms(sent_at: dict[float, float], reached_at: dict[float, float]) -> dict[float, float]:
    """Milliseconds from each trigger's sending to when it reached a place (the triggers that did)."""
    return {v: (reached_at[v] - s) * 1000 for v, s in sent_at.items() if v in reached_at}


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
