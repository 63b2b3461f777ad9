"""The embedded engine, served: one process owns chDB and answers the other processes' sessions.

chDB lets one process at a time open a data folder, and opening it costs ~45 ms (far more on a
busy machine). While ``meterflow run`` writes results it keeps the engine open and serves every
other meterflow process through a Unix socket (the standard library's
``multiprocessing.connection``: pickled requests, an authentication key), so ``meterflow sql``,
the batch job and the report never wait for a lock to change hands — a query waits for at most
one insert of the writer. Readers get the part of clickhouse-connect's client API meterflow uses
(``query``, ``command``, ``insert``, ``raw_insert``, ``query_df``); query results come back as
plain rows and column names.

The serving process announces itself in ``<folder>.served`` (pid, socket, key; mode 0600);
a file left by a process that died is ignored and removed.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_METHODS = frozenset({"query", "command", "insert", "raw_insert", "query_df"})


class RemoteError(Exception):
    """The serving process's engine refused a request; the message is ClickHouse's."""


@dataclass
class RemoteResult:
    """A query result as rows: what meterflow reads of clickhouse-connect's ``QueryResult``."""

    column_names: tuple[str, ...]
    result_rows: list[Any] = field(default_factory=list)

    @property
    def row_count(self) -> int:
        return len(self.result_rows)

    @property
    def first_row(self) -> Any:
        return self.result_rows[0] if self.result_rows else None

    @property
    def first_item(self) -> Any:
        return dict(zip(self.column_names, self.result_rows[0], strict=True)) if self.result_rows else None

    @property
    def result_columns(self) -> list[list[Any]]:
        return [list(column) for column in zip(*self.result_rows, strict=True)] if self.result_rows else []

    def named_results(self) -> Iterator[dict[str, Any]]:
        for row in self.result_rows:
            yield dict(zip(self.column_names, row, strict=True))


def announcement(path: str) -> Path:
    return Path(f"{path}.served")


class EngineServer:
    """Serves one open engine to other processes (the thread that owns it calls :meth:`close`)."""

    def __init__(self, path: str, connect: Callable[[str | None, bool], Any], lock: threading.Lock) -> None:
        self._connect = connect
        self._lock = lock
        self._clients: dict[tuple[str | None, bool], Any] = {}
        self._socket = f"{path}.sock"
        with suppress(FileNotFoundError):
            os.unlink(self._socket)
        key = secrets.token_bytes(32)
        self._listener = Listener(address=self._socket, family="AF_UNIX", authkey=key)
        self._announcement = announcement(path)
        tmp = self._announcement.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps({"pid": os.getpid(), "address": self._socket, "key": key.hex()}))
        tmp.chmod(0o600)
        tmp.replace(self._announcement)
        self._closed = False
        threading.Thread(target=self._accept, name="engine-server", daemon=True).start()

    def close(self) -> None:
        self._closed = True
        with suppress(FileNotFoundError):
            self._announcement.unlink()
        self._listener.close()
        with suppress(FileNotFoundError):
            os.unlink(self._socket)
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn = self._listener.accept()
            except (OSError, EOFError):
                if self._closed:
                    return
                continue  # a client that failed to authenticate
            threading.Thread(target=self._serve, args=(conn,), name="engine-session", daemon=True).start()

    def _serve(self, conn: Connection) -> None:
        with conn:
            while True:
                try:
                    scope, method, args, kwargs = conn.recv()
                except (EOFError, OSError):
                    return
                try:
                    if method not in _METHODS:
                        raise RemoteError(f"{method} is not served")
                    with self._lock:
                        result = getattr(self._client(*scope), method)(*args, **kwargs)
                    reply: tuple[str, Any] = ("ok", _plain(method, result))
                except Exception as exc:  # the engine's errors travel back to the caller as text
                    reply = ("error", str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
                try:
                    conn.send(reply)
                except (OSError, EOFError):
                    return

    def _client(self, database: str | None, read_only: bool) -> Any:
        """One client per database, and another for read-only sessions (readonly is a session setting)."""
        if (database, read_only) not in self._clients:
            self._clients[(database, read_only)] = self._connect(database, read_only)
        return self._clients[(database, read_only)]


def _plain(method: str, result: Any) -> Any:
    """What travels back: rows for a query, the summary's counts for an insert, the value otherwise."""
    if method == "query":
        return RemoteResult(tuple(result.column_names), [tuple(row) for row in result.result_rows])
    if method in ("insert", "raw_insert"):
        return {"written_rows": int(result.written_rows)}
    if method == "command" and not isinstance(result, str | int | float | list | tuple):
        return None  # a DDL's summary: nobody reads it
    return result


class RemoteClient:
    """A session served by the process that holds the engine (the client API meterflow uses)."""

    def __init__(self, conn: Connection, database: str | None, read_only: bool = False) -> None:
        self._conn = conn
        self.database = database
        self.read_only = read_only

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        self._conn.send(((self.database, self.read_only), method, args, kwargs))
        status, value = self._conn.recv()
        if status == "error":
            raise RemoteError(value)
        return value

    def query(self, *args: Any, **kwargs: Any) -> RemoteResult:
        result: RemoteResult = self._call("query", *args, **kwargs)
        return result

    def command(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("command", *args, **kwargs)

    def insert(self, *args: Any, **kwargs: Any) -> Any:
        return _Summary(self._call("insert", *args, **kwargs))

    def raw_insert(self, *args: Any, **kwargs: Any) -> Any:
        return _Summary(self._call("raw_insert", *args, **kwargs))

    def query_df(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("query_df", *args, **kwargs)

    def close(self) -> None:
        self._conn.close()


@dataclass(frozen=True)
class _Summary:
    values: dict[str, int]

    @property
    def written_rows(self) -> int:
        return self.values["written_rows"]


def served_client(path: str, database: str | None, read_only: bool = False) -> RemoteClient | None:
    """A client of the process serving the engine at ``path`` (a read-only session with
    ``read_only``); None when nobody serves it."""
    file = announcement(path)
    try:
        info = json.loads(file.read_text())
    except (FileNotFoundError, ValueError):
        return None
    if not Path(f"/proc/{info['pid']}").exists():
        with suppress(FileNotFoundError):
            file.unlink()  # left by a process that died
        return None
    try:
        conn = Client(info["address"], family="AF_UNIX", authkey=bytes.fromhex(info["key"]))
    except (OSError, EOFError) as exc:
        log.debug("the engine served at %s did not answer (%s); opening it here", info["address"], exc)
        return None
    return RemoteClient(conn, database, read_only)
