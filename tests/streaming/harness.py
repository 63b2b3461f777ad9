"""Run meterflow's CLI as a user would, and read back every output (ClickHouse, Iceberg, Kafka).

Waiting: a test waits for the event it needs (:func:`await_event`, :meth:`Process.wait_for`) for
as long as the process that makes it happen lives — never against a wall-clock deadline, which a
loaded machine can exceed without anything being wrong. A producer that exits fails the test at
once with its output; one that hangs is stopped by pytest-timeout.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from kafka import KafkaConsumer

from meterflow.spec import MeterPipeline, names_for
from meterflow.stack.endpoints import clickhouse_dsn, iceberg_location
from meterflow_clickhouse.client import session
from meterflow_iceberg.catalog import open_catalog

METERFLOW = [sys.executable, "-m", "meterflow_cli.app"]


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
    return [letter for _, letter in keyed_dead_letters(pipeline, bootstrap)]


def keyed_dead_letters(pipeline: MeterPipeline, bootstrap: str) -> list[tuple[bytes | None, dict[str, Any]]]:
    """Every committed record of the dead-letter topic: (Kafka key, the decoded dead letter)."""
    consumer = KafkaConsumer(
        names_for(pipeline).topics.dlq,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        consumer_timeout_ms=5000,
    )
    try:
        return [(r.key, json.loads(r.value)) for r in consumer]
    finally:
        consumer.close()


def topic_records(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes]]:
    """Every (key, value) of ``topic``, in partition order (one partition: send order)."""
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=5000)
    try:
        return [(r.key, r.value) for r in consumer]
    finally:
        consumer.close()


def topic_size(bootstrap: str, topic: str) -> int:
    """How many records ``topic`` holds (end offsets summed; nothing is compacted or expired here)."""
    from kafka import TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(partitions).values())
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


class Process:
    """A ``meterflow`` subprocess (harness.start) whose output is collected by a thread."""

    def __init__(self, *args: str) -> None:
        self.args = args
        self.popen = start(*args)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    @property
    def flat(self) -> str:
        """The output without line breaks (rich folds a long path over lines)."""
        return flatten(self.output)

    def running(self) -> bool:
        return self.popen.poll() is None

    def wait_for(self, pattern: str, timeout: float | None = None) -> None:
        """Until ``pattern`` appears in the output, while the process runs (``timeout``: a deadline
        besides, for a line that must come soon)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not re.search(pattern, self.output):
            assert self.running(), f"meterflow {' '.join(self.args)} exited {self.popen.returncode}:\n{self.output}"
            late = deadline is not None and time.monotonic() >= deadline
            assert not late, f"no {pattern!r} after {timeout}s:\n{self.output}"
            time.sleep(0.5)

    def wait(self, timeout: float | None = None) -> int:
        code = self.popen.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code

    def kill_group(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the whole process group (the CLI and the Flink JVM it started)."""
        os.killpg(self.popen.pid, sig)

    def stop(self) -> None:
        """Kill whatever is left (test clean-up)."""
        if self.running():
            self.kill_group(signal.SIGKILL)
            self.wait(timeout=60)


def flatten(text: str) -> str:
    return text.replace("\n", "")


def group_gone(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def poll(what: Any, until: Any, timeout: float, every: float = 2.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if until(value) or time.monotonic() >= deadline:
            return value
        time.sleep(every)


T = TypeVar("T")


def await_event(
    what: str,
    probe: Callable[[], T],
    done: Callable[[T], bool],
    producers: Sequence[Process | subprocess.Popen[Any]],
    every: float = 0.5,
) -> T:
    """Poll ``probe`` until ``done`` holds for its value, for as long as every one of ``producers``
    (the processes that make it happen) runs; the value. No wall-clock deadline (module docstring)."""
    while True:
        value = probe()
        if done(value):
            return value
        for producer in producers:
            popen = producer.popen if isinstance(producer, Process) else producer
            if popen.poll() is not None:
                output = producer.output if isinstance(producer, Process) else ""
                raise AssertionError(
                    f"waiting for {what} (last seen: {value!r}), but {popen.args} exited {popen.returncode}:\n{output}"
                )
        time.sleep(every)
