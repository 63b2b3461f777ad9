"""One ``meterflow run`` per pipeline: a lock that dies with its process.

Two runs of one pipeline would restore the same savepoint, write every new reading to the lake
twice and prune each other's saved state (issue 11). :func:`hold_pipeline` takes an exclusive
``flock`` on ``<state>/locks/<pipeline>.lock`` for as long as the run lives and writes who holds
it (pid, command, since when) into the file, so a second run — or a ``reset`` of a running
pipeline — is refused with one line naming the holder. The kernel drops a ``flock`` when its
process ends, however it ends: a ``kill -9`` never leaves a stale lock behind. The descriptor is
not inherited by child processes (Python opens files close-on-exec), so the Flink JVM a run
starts does not keep the lock alive either.

The locks live outside ``pipelines/<name>/`` because ``reset`` deletes that folder while it
holds the lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from meterflow.errors import StackError
from meterflow.paths import state_home


class PipelineBusyError(StackError):
    """Another process holds the pipeline (a run, or a reset)."""


@dataclass(frozen=True)
class Holder:
    """Who holds a pipeline's lock."""

    pid: int
    command: str
    since: float

    def describe(self) -> str:
        since = datetime.fromtimestamp(self.since, UTC).astimezone().isoformat(timespec="seconds")
        return f"`{self.command}` (pid {self.pid}, since {since})"


def lock_path(pipeline: str) -> Path:
    return state_home() / "locks" / f"{pipeline}.lock"


def holder(pipeline: str) -> Holder | None:
    """Who holds ``pipeline``'s lock now, or None when nobody does."""
    path = lock_path(pipeline)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(path) or Holder(0, "another meterflow process", time.time())
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


@contextmanager
def hold_pipeline(pipeline: str, command: str) -> Iterator[Path]:
    """Hold ``pipeline``'s lock while the block runs; :class:`PipelineBusyError` when another
    process holds it. ``command`` is what the other process's refusal names (``meterflow run``)."""
    path = lock_path(pipeline)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        found = _read(path)
        who = found.describe() if found else "another meterflow process"
        raise PipelineBusyError(
            f"pipeline {pipeline} is busy: {who} holds it ({path}); stop that one first (Ctrl-C) or wait for it"
        ) from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "command": command, "since": time.time()}).encode())
        yield path
    finally:
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _read(path: Path) -> Holder | None:
    """The holder recorded in ``path`` (read a few times: the holder writes it just after locking)."""
    for _ in range(20):
        try:
            data = json.loads(path.read_text())
            return Holder(int(data["pid"]), str(data["command"]), float(data["since"]))
        except (OSError, ValueError, KeyError, TypeError):
            time.sleep(0.05)
    return None


def command_line() -> str:
    """This process's command as a user typed it (``meterflow run -f x.yaml``)."""
    args = [os.path.basename(sys.argv[0]) if sys.argv else "meterflow", *sys.argv[1:]]
    if args[0] in {"app.py", "__main__.py", "-m", "-c"}:
        args[0] = "meterflow"
    return " ".join(args)
