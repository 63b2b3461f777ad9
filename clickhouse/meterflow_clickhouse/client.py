"""The one ClickHouse client factory: short sessions, serialised for the embedded engine.

chDB lets one process at a time open a data folder (a second gets "Cannot lock file
<path>/status"). Every meterflow process therefore opens the embedded engine only inside
:func:`session`, under a file lock next to the folder, and closes it when done (about 45 ms).
The streaming sink, `meterflow sql` and the batch job take turns; a server DSN needs no lock.

The serving sink writes several times a second, and opening the engine for every write would
cost it more than the writes: it holds a :class:`HeldSession` instead, which keeps the engine
open and hands it over as soon as another process asks. A process waiting in :func:`session`
says so with a marker file (``<path>.wants/<pid>``) that the holder checks between writes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import clickhouse_connect
from filelock import FileLock, Timeout

from meterflow.errors import MeterflowError

DEFAULT_LOCK_TIMEOUT_S = 120.0

# Settings as data: what every session sends (ClickHouse server or chDB alike).
SESSION_SETTINGS: dict[str, Any] = {
    "do_not_merge_across_partitions_select_final": 1,
}


class ClickHouseError(MeterflowError):
    """ClickHouse could not be reached or refused a statement."""


def is_embedded(dsn: str) -> bool:
    return dsn.startswith("chdb://")


def embedded_path(dsn: str) -> str:
    """``chdb:///abs/path`` → ``/abs/path``."""
    return urlparse(dsn).path


@contextmanager
def session(dsn: str, database: str | None = None, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> Iterator[Any]:
    """A clickhouse-connect client for ``dsn`` (default ``database``), closed on exit and, when
    embedded, unlocked."""
    if is_embedded(dsn):
        path = embedded_path(dsn)
        lock = _acquire(path, lock_timeout_s)
        try:
            client = _connect(dsn, database)
            try:
                yield client
            finally:
                client.close()
        finally:
            lock.release()
    else:
        client = _connect(dsn, database)
        try:
            yield client
        finally:
            client.close()


def _wants(path: str) -> Path:
    return Path(f"{path}.wants")


def _acquire(path: str, timeout_s: float) -> FileLock:
    """The engine's file lock, asked for with a marker a :class:`HeldSession` gives way to."""
    lock = FileLock(f"{path}.lock")
    wants = _wants(path)
    wants.mkdir(parents=True, exist_ok=True)
    marker = wants / str(os.getpid())
    marker.touch()
    try:
        lock.acquire(timeout=timeout_s)
    except Timeout:
        raise ClickHouseError(
            f"the embedded ClickHouse at {path} stayed busy for {timeout_s:.0f}s; "
            "another meterflow process holds it — retry, or stop that process"
        ) from None
    finally:
        with suppress(FileNotFoundError):
            marker.unlink()
    return lock


def _someone_waits(path: str) -> bool:
    """True when another live process asked for the engine (stale markers of dead ones are removed)."""
    try:
        markers = os.listdir(_wants(path))
    except FileNotFoundError:
        return False
    for name in markers:
        if not name.isdigit() or int(name) == os.getpid():
            continue
        if Path(f"/proc/{name}").exists():
            return True
        with suppress(FileNotFoundError):
            (_wants(path) / name).unlink()
    return False


class HeldSession:
    """A writer's long-lived client: kept open between writes, given up when another process asks.

    For a server DSN it is simply one client for the writer's life.
    """

    def __init__(self, dsn: str, database: str | None = None, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> None:
        self.dsn = dsn
        self.database = database
        self._timeout = lock_timeout_s
        self._client: Any = None
        self._lock: FileLock | None = None

    def client(self) -> Any:
        """The open client (the engine is opened, and locked, when it is not)."""
        if self._client is None:
            if is_embedded(self.dsn):
                self._lock = _acquire(embedded_path(self.dsn), self._timeout)
            try:
                self._client = _connect(self.dsn, self.database)
            except ClickHouseError:
                self._release_lock()
                raise
        return self._client

    def give_way(self, wait_s: float = 2.0) -> bool:
        """Close the engine when another process waits for it, and let it in; True when it did."""
        if self._client is None or not is_embedded(self.dsn):
            return False
        path = embedded_path(self.dsn)
        if not _someone_waits(path):
            return False
        self.close()
        deadline = time.monotonic() + wait_s
        while _someone_waits(path) and time.monotonic() < deadline:
            time.sleep(0.005)  # until the waiter holds the lock (it then removes its marker)
        return True

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            finally:
                self._client = None
                self._release_lock()

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def _connect(dsn: str, database: str | None) -> Any:
    try:
        if database:
            return clickhouse_connect.get_client(dsn=dsn, settings=SESSION_SETTINGS, database=database)
        return clickhouse_connect.get_client(dsn=dsn, settings=SESSION_SETTINGS)
    except Exception as exc:  # the driver raises many types; name the DSN and the cause
        safe = _redact(dsn)
        raise ClickHouseError(f"cannot connect to ClickHouse at {safe}: {str(exc).splitlines()[0]}") from exc


def _redact(dsn: str) -> str:
    parsed = urlparse(dsn)
    if parsed.password:
        return dsn.replace(f":{parsed.password}@", ":***@")
    return dsn
