"""The one ClickHouse client factory: short sessions, serialised for the embedded engine.

chDB lets one process at a time open a data folder (a second gets "Cannot lock file
<path>/status"). Every meterflow process therefore opens the embedded engine only inside
:func:`session`, under a file lock next to the folder, and closes it when done (about 45 ms).
The streaming sink, `meterflow sql` and the batch job take turns; a server DSN needs no lock.

The serving sink writes several times a second, and opening the engine for every write would
cost it more than the writes: it holds a :class:`HeldSession` instead, which keeps the engine
open for the life of ``meterflow run`` and serves every other process's :func:`session` through
:mod:`meterflow_clickhouse.served`, so readers never wait for the lock to change hands.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlparse

import clickhouse_connect
from filelock import FileLock, Timeout

from meterflow.errors import MeterflowError
from meterflow_clickhouse.served import EngineServer, RemoteClient, served_client

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


READ_ONLY_SETTINGS: dict[str, Any] = {"readonly": 2}
"""A read-only session's own setting: reads, and settings for them; no write, no DDL. 2 rather than
1 because the client sends settings of its own. It is a setting of the whole session (chDB applies
per-query settings with SET and cannot take back ``readonly``), so a read-only session is always a
client of its own, never a shared one switched over."""


@contextmanager
def session(
    dsn: str, database: str | None = None, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S, read_only: bool = False
) -> Iterator[Any]:
    """A clickhouse-connect client for ``dsn`` (default ``database``), closed on exit; with
    ``read_only`` ClickHouse refuses every write and DDL. Embedded: the session of the process that
    serves the engine when one does, else the engine opened here under its file lock (released on
    exit)."""
    if is_embedded(dsn):
        path = embedded_path(dsn)
        engine = _engine_for(path, database, lock_timeout_s, read_only)
        if not isinstance(engine, FileLock):
            try:
                yield engine
            finally:
                engine.close()
            return
        try:
            client = _connect(dsn, database, read_only)
            try:
                yield client
            finally:
                client.close()
        finally:
            engine.release()
    else:
        client = _connect(dsn, database, read_only)
        try:
            yield client
        finally:
            client.close()


def _engine_for(path: str, database: str | None, timeout_s: float, read_only: bool) -> RemoteClient | FileLock:
    """A session of the process serving the engine, or the engine's file lock to open it here.

    A holder may start serving while we wait for its lock (it locks, opens, then announces), so
    the lock is tried in short turns with a look for an announcement in between.
    """
    lock = FileLock(f"{path}.lock")
    deadline = time.monotonic() + timeout_s
    while True:
        served = served_client(path, database, read_only)
        if served is not None:
            return served
        try:
            lock.acquire(timeout=0.1)
            return lock
        except Timeout:
            if time.monotonic() >= deadline:
                raise ClickHouseError(
                    f"the embedded ClickHouse at {path} stayed busy for {timeout_s:.0f}s; "
                    "another meterflow process holds it — retry, or stop that process"
                ) from None


def _acquire(path: str, timeout_s: float) -> FileLock:
    """The engine's file lock (for the process that will hold and serve it)."""
    lock = FileLock(f"{path}.lock")
    try:
        lock.acquire(timeout=timeout_s)
    except Timeout:
        raise ClickHouseError(
            f"the embedded ClickHouse at {path} stayed busy for {timeout_s:.0f}s; "
            "another meterflow process holds it — retry, or stop that process"
        ) from None
    return lock


class HeldSession:
    """A writer's client for its whole life; the embedded engine is opened once, locked, and served
    to the other processes (:mod:`meterflow_clickhouse.served`). For a server DSN it is simply one
    client. Use the client only inside ``with held.lock:`` — the serving thread shares it.
    """

    def __init__(self, dsn: str, database: str | None = None, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> None:
        self.dsn = dsn
        self.database = database
        self.lock = threading.Lock()
        self._timeout = lock_timeout_s
        self._client: Any = None
        self._file_lock: FileLock | None = None
        self._server: EngineServer | None = None

    def client(self) -> Any:
        """The open client (the engine is opened, locked and served the first time)."""
        if self._client is None:
            if not is_embedded(self.dsn):
                self._client = _connect(self.dsn, self.database)
                return self._client
            path = embedded_path(self.dsn)
            self._file_lock = _acquire(path, self._timeout)
            try:
                self._client = _connect(self.dsn, self.database)
                self._server = EngineServer(
                    path, lambda database, read_only: _connect(self.dsn, database, read_only), self.lock
                )
            except Exception:
                self.close()
                raise
        return self._client

    def close(self) -> None:
        try:
            if self._server is not None:
                self._server.close()
                self._server = None
            if self._client is not None:
                with self.lock:
                    self._client.close()
                self._client = None
        finally:
            if self._file_lock is not None:
                self._file_lock.release()
                self._file_lock = None


def _connect(dsn: str, database: str | None, read_only: bool = False) -> Any:
    settings = SESSION_SETTINGS | READ_ONLY_SETTINGS if read_only else SESSION_SETTINGS
    try:
        if database:
            return clickhouse_connect.get_client(dsn=dsn, settings=settings, database=database)
        return clickhouse_connect.get_client(dsn=dsn, settings=settings)
    except Exception as exc:  # the driver raises many types; name the DSN and the cause
        safe = _redact(dsn)
        raise ClickHouseError(f"cannot connect to ClickHouse at {safe}: {str(exc).splitlines()[0]}") from exc


def _redact(dsn: str) -> str:
    parsed = urlparse(dsn)
    if parsed.password:
        return dsn.replace(f":{parsed.password}@", ":***@")
    return dsn
