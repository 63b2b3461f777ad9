"""``--profile``: where the streaming job's CPU goes, by JFR (the Flink JVM) and py-spy (Python).

FACTS.md's recipe, automated: once ``meterflow run`` has started its Flink JVM, a JFR recording
with the ``profile`` settings is started on it (dumped when the JVM exits) and py-spy samples the
Python process; afterwards the samples are summed by thread (each Flink task chain is a thread, so
its name says which operators cost what) and by top frame. py-spy is optional: install it into
the bench virtualenv (``make bench-deps`` does) or it is skipped with a note.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import descendants

JAVA_MARKER = "org.apache.flink.client.python.PythonGatewayServer"


def _flink_jvm(root: int) -> int | None:
    for pid in descendants(root):
        try:
            if JAVA_MARKER in Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
                return pid
        except OSError:
            continue
    return None


def _py_spy() -> str | None:
    venv = Path.home() / ".cache" / "meterflow" / "bench-venv" / "bin" / "py-spy"
    return str(venv) if venv.exists() else shutil.which("py-spy")


class Profiler:
    """Profiles the process tree of one ``meterflow run`` (start it right after the process)."""

    def __init__(self, root: int, folder: Path) -> None:
        self.root = root
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.jfr = folder / "flink.jfr"
        self.spy = folder / "python.txt"
        self.notes: list[str] = []
        self._spy: subprocess.Popen[bytes] | None = None
        self._jvm: int | None = None
        self._thread = threading.Thread(target=self._attach, daemon=True)

    def start(self) -> None:
        self._thread.start()
        spy = _py_spy()
        if spy is None:
            self.notes.append("py-spy not installed: no Python profile")
            return
        self._spy = subprocess.Popen(
            [
                spy,
                "record",
                "--pid",
                str(self.root),
                "--format",
                "raw",
                "--rate",
                "50",
                "-o",
                str(self.spy),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def _attach(self) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            pid = _flink_jvm(self.root)
            if pid is not None:
                self._jvm = pid
                result = subprocess.run(
                    [
                        "jcmd",
                        str(pid),
                        "JFR.start",
                        "name=meterflow",
                        "settings=profile",
                        f"filename={self.jfr}",
                        "dumponexit=true",
                    ],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if result.returncode != 0:
                    self.notes.append(f"JFR.start failed: {result.stdout.strip()[-200:]}")
                return
            time.sleep(0.2)
        self.notes.append("the Flink JVM did not appear: no JVM profile")

    def stop(self) -> dict[str, Any]:
        """Wait for the outputs and summarise them."""
        self._thread.join(timeout=5)
        if self._spy is not None:
            try:
                self._spy.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._spy.terminate()
        deadline = time.monotonic() + 60
        while self._jvm is not None and Path(f"/proc/{self._jvm}").exists() and time.monotonic() < deadline:
            time.sleep(0.2)  # the recording is written when the JVM exits
        out: dict[str, Any] = {"folder": str(self.folder), "notes": self.notes}
        if self.jfr.exists():
            try:
                out["jvm"] = summarise_jfr(self.jfr)
            except (subprocess.CalledProcessError, ValueError, KeyError) as exc:
                self.notes.append(f"the JFR recording could not be read: {exc}")
        if self.spy.exists():
            out["python"] = summarise_py_spy(self.spy)
        return out


INCLUSIVE = {
    "lake writer (Iceberg, Parquet)": "org.apache.iceberg.",
    "parse and validate": "io.meterflow.stream.ReadingDeserializer",
    "meter operator (all it calls)": "io.meterflow.stream.MeterOperator.",
    "keyed state": "org.apache.flink.runtime.state.heap.CopyOnWriteStateMap",
    "event-time timers": "org.apache.flink.streaming.api.operators.InternalTimerServiceImpl",
    "window blocks (RowBinary)": "io.meterflow.stream.RowBinaryBlocks",
    "exchange (serialize, network)": "org.apache.flink.runtime.io.network",
    "checkpoint state serialization": "io.meterflow.stream.MeterStateSerializer",
    "Kafka consumer": "org.apache.flink.kafka.shaded.org.apache.kafka.clients.consumer",
    "Kafka producer": "org.apache.flink.kafka.shaded.org.apache.kafka.clients.producer",
}
"""Where the JVM's time goes, inclusively: a sample counts for a part when any frame of its stack
belongs to it (so parts overlap: the meter operator calls the lake writer, which it chains to)."""


def summarise_jfr(path: Path, top: int = 25) -> dict[str, Any]:
    """Shares of JVM CPU samples by thread, by top frame, by the first meterflow frame, and by the
    parts of :data:`INCLUSIVE`."""
    result = subprocess.run(
        ["jfr", "print", "--json", "--events", "jdk.ExecutionSample", "--stack-depth", "64", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    events = json.loads(result.stdout)["recording"]["events"]
    threads: Counter[str] = Counter()
    frames: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    parts: Counter[str] = Counter()
    for event in events:
        values = event["values"]
        thread = (values.get("sampledThread") or {}).get("javaName") or "?"
        threads[_thread_group(thread)] += 1
        stack = [_frame(f) for f in (values.get("stackTrace") or {}).get("frames") or []]
        if stack:
            frames[stack[0]] += 1
        mine = next((f for f in stack if f.startswith("io.meterflow.")), None)
        if mine:
            ours[mine] += 1
        for part, prefix in INCLUSIVE.items():
            if any(f.startswith(prefix) for f in stack):
                parts[part] += 1
    total = max(1, sum(threads.values()))

    def shares(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(100 * n / total, 1)) for name, n in counter.most_common(top)]

    return {
        "samples": total,
        "threads_pct": shares(threads),
        "inclusive_pct": shares(parts),
        "top_frames_pct": shares(frames),
        "meterflow_frames_pct": shares(ours),
    }


def _frame(frame: dict[str, Any]) -> str:
    method = frame.get("method") or {}
    owner = ((method.get("type") or {}).get("name") or "?").replace("/", ".")
    return f"{owner}.{method.get('name', '?')}"


def _thread_group(name: str) -> str:
    """Task threads keep their operator chain; numbered pool threads are grouped."""
    for prefix in (
        "kafka-producer-network-thread",
        "Kafka Fetcher",
        "flink-akka",
        "pekko",
        "Checkpoint",
        "AsyncOperations",
    ):
        if name.startswith(prefix):
            return prefix
    return name.split(" (", maxsplit=1)[0][:140]


def summarise_py_spy(path: Path, top: int = 25) -> dict[str, Any]:
    """Shares of Python samples by innermost frame and by the first meterflow frame (raw format)."""
    frames: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        parts = stack.split(";")
        frames[parts[-1][:120]] += n
        mine = next((p for p in reversed(parts) if "meterflow" in p or "flink_jobs" in p), None)
        if mine:
            ours[mine[:120]] += n
    total = max(1, total)
    return {
        "samples": total,
        "top_frames_pct": [(f, round(100 * n / total, 1)) for f, n in frames.most_common(top)],
        "meterflow_frames_pct": [(f, round(100 * n / total, 1)) for f, n in ours.most_common(top)],
    }
