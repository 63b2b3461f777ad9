"""What every phase shares: the phase record, process accounting from /proc, percentiles, the machine."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


@dataclass
class Phase:
    """One measurement: its figures, or the error that stopped it."""

    name: str
    status: str = "ok"
    seconds: float = 0.0
    figures: dict[str, Any] = field(default_factory=dict)
    processes: list[dict[str, Any]] = field(default_factory=list)
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    error: str | None = None
    notes: list[str] = field(default_factory=list)


def run_phase(name: str, body: Callable[[Phase], None], echo: Callable[[str], None] = print) -> Phase:
    """Run ``body`` and record its time and load; an exception is recorded, never raised."""
    phase = Phase(name, load_before=os.getloadavg())
    echo(f"[bench] {name}: starting (load {phase.load_before[0]:.2f})")
    started = time.monotonic()
    try:
        body(phase)
    except Exception as exc:  # a failed phase must not stop the others
        phase.status = "failed"
        phase.error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        phase.notes.append(traceback.format_exc(limit=6))
    phase.seconds = round(time.monotonic() - started, 2)
    phase.load_after = os.getloadavg()
    echo(f"[bench] {name}: {phase.status} in {phase.seconds:.1f}s {phase.error or ''}")
    return phase


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100), linear between the closest ranks; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


# --- processes ---------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds user+system) of ``pid`` from /proc, or None when gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cmd(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    parts = [p.decode(errors="replace") for p in raw if p]
    if not parts:
        return "?"
    name = Path(parts[0]).name
    for marker in ("kafka.Kafka", "org.apache.flink", "org.apache.spark", "-m", "pyspark"):
        if marker in parts:
            i = parts.index(marker)
            return f"{name} {' '.join(parts[i : i + 2])}"
    main = next((p for p in parts[1:] if not p.startswith("-") and "/" not in p), "")
    tail = next((p for p in reversed(parts) if p.endswith(".py") or p.startswith("meterflow")), "")
    return " ".join(x for x in (name, main, tail) if x)[:80]


def descendants(root: int) -> list[int]:
    """``root`` and every process below it (scanning /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat:
                children.setdefault(stat[0], []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


class ProcessMonitor:
    """Samples the CPU time and peak RSS of process trees (and single processes) in a thread.

    CPU seconds are the growth while monitored (for processes alive before the start, e.g. the
    broker); peak RSS is the kernel's high-water mark (VmHWM), or the highest RSS sampled for a
    process that was already running.
    """

    def __init__(self, interval_s: float = 0.5) -> None:
        self._roots: list[tuple[int, bool]] = []
        self._seen: dict[int, dict[str, Any]] = {}
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def watch(self, pid: int, tree: bool = True, label: str | None = None, existing: bool = False) -> None:
        self._roots.append((pid, tree))
        if existing:
            stat = _stat(pid)
            if stat:
                self._seen[pid] = {
                    "cpu0": stat[1],
                    "cpu": stat[1],
                    "hwm": 0,
                    "label": label or _cmd(pid),
                    "existing": True,
                }
        elif label:
            self._seen.setdefault(pid, {"cpu0": 0.0, "cpu": 0.0, "hwm": 0, "label": label, "existing": False})

    def __enter__(self) -> ProcessMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> None:
        for root, tree in list(self._roots):
            for pid in descendants(root) if tree else [root]:
                stat = _stat(pid)
                if stat is None:
                    continue
                entry = self._seen.setdefault(
                    pid, {"cpu0": 0.0, "cpu": 0.0, "hwm": 0, "label": _cmd(pid), "existing": False}
                )
                if not entry["existing"]:  # a launcher script may exec into the JVM
                    label = _cmd(pid)
                    if label != "?":  # an exited process (a zombie until reaped) has no command line
                        entry["label"] = label
                entry["cpu"] = max(entry["cpu"], stat[1])
                key = "VmRSS" if entry["existing"] else "VmHWM"
                entry["hwm"] = max(entry["hwm"], _status_kb(pid, key))

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self._interval)

    def report(self) -> list[dict[str, Any]]:
        """Per process: pid, what it is, CPU seconds, peak RSS in MB (busiest first)."""
        rows = [
            {
                "pid": pid,
                "process": e["label"],
                "cpu_s": round(e["cpu"] - e["cpu0"], 2),
                "peak_rss_mb": round(e["hwm"] / 1024, 1),
            }
            for pid, e in self._seen.items()
        ]
        # A process with no CPU time is a fork that exec'd at once (it inherited its parent's RSS).
        return sorted((r for r in rows if r["cpu_s"] >= 0.05), key=lambda r: -r["cpu_s"])


@contextmanager
def monitored(phase: Phase, interval_s: float = 0.5) -> Iterator[ProcessMonitor]:
    """A running monitor whose report lands in ``phase.processes``."""
    monitor = ProcessMonitor(interval_s)
    with monitor:
        try:
            yield monitor
        finally:
            monitor.sample()
            phase.processes = monitor.report()


def start_watched(monitor: ProcessMonitor, command: list[str], env: dict[str, str], out: Any) -> subprocess.Popen[Any]:
    """Start ``command`` in its own session with output to ``out``; the monitor samples its tree."""
    process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    monitor.watch(process.pid)
    return process


def wait_or_kill(process: subprocess.Popen[Any], timeout_s: float, what: str, log: Path) -> int:
    """The exit code of ``process``; past ``timeout_s`` its group is killed and the phase fails."""
    try:
        return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill_group(process)
        raise RuntimeError(f"{what} did not finish within {timeout_s:.0f}s; see {log}") from None


def kill_group(process: subprocess.Popen[Any], timeout_s: float = 30.0) -> None:
    """Stop a child started with ``start_new_session``: SIGTERM its group, then SIGKILL."""
    import signal

    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout_s)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


# --- the machine -------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """Cores, memory, CPU model, OS and load when the run starts."""
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "cpu_model": model,
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "load_at_start": os.getloadavg(),
    }


def versions(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Versions of what is measured."""
    found: dict[str, str] = {}
    for dist in (
        "meterflow",
        "apache-flink",
        "chdb",
        "clickhouse-connect",
        "pyiceberg",
        "kafka-python",
        "confluent-kafka",
        "pyarrow",
    ):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = "missing"
    java = shutil.which("java")
    if java:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
        found["java"] = out.splitlines()[0] if out else "?"
    return found | (extra or {})
