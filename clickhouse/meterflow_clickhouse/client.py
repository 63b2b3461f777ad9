"""The one ClickHouse client factory: short sessions, serialised for the embedded engine.

chDB lets one process at a time open a data folder (a second gets "Cannot lock file
<path>/status"). Every meterflow process therefore opens the embedded engine only inside
:func:`session`, under a file lock next to the folder, and closes it when done (about 45 ms).
The streaming sink, `meterflow sql` and the batch job take turns; a server DSN needs no lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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
        lock = FileLock(f"{path}.lock")
        try:
            lock.acquire(timeout=lock_timeout_s)
        except Timeout:
            raise ClickHouseError(
                f"the embedded ClickHouse at {path} stayed busy for {lock_timeout_s:.0f}s; "
                "another meterflow process holds it — retry, or stop that process"
            ) from None
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
