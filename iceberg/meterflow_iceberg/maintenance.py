"""Upkeep and time travel of the readings table, with pyiceberg: snapshots, partition changes, expiry.

The streaming job commits a snapshot on every checkpoint (every 10 s by default), so snapshots
pile up; :func:`expire_snapshots` drops those older than ``spec.sinks.iceberg.snapshotRetention``
(never the current one), after each ``meterflow batch`` and on ``meterflow lake expire``. It
removes snapshot metadata only: the readings table is append-only, so every data file stays
referenced by the current snapshot. Time travel (``meterflow batch --as-of``) is possible within
the retention. :func:`partition_updates` tells the batch which day partitions changed since a
day was recomputed (a late reading landed); :func:`newest_event_ms` how far the data reach (the
batch's NO_DATA rule counts silence only up to there). Called by :mod:`flink_jobs.batch.run` and the CLI.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow.compute as pc
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.table import Table

from meterflow_iceberg.catalog import LakeError


@dataclass(frozen=True)
class SnapshotRef:
    """One snapshot: its id and commit time (epoch ms)."""

    snapshot_id: int
    timestamp_ms: int

    def describe(self) -> str:
        moment = datetime.fromtimestamp(self.timestamp_ms / 1000, UTC)
        return f"snapshot {self.snapshot_id} ({moment.isoformat(timespec='seconds')})"


def _name(table: Table) -> str:
    return ".".join(table.name())


def current_snapshot(table: Table) -> SnapshotRef | None:
    """The table's current snapshot; None for a table nothing was ever written to."""
    snapshot = table.current_snapshot()
    return SnapshotRef(snapshot.snapshot_id, snapshot.timestamp_ms) if snapshot else None


def _available(table: Table) -> str:
    snapshots = sorted(table.snapshots(), key=lambda s: s.timestamp_ms)
    if not snapshots:
        return "the table has no snapshots yet"
    first, last = (
        SnapshotRef(snapshots[0].snapshot_id, snapshots[0].timestamp_ms),
        SnapshotRef(snapshots[-1].snapshot_id, snapshots[-1].timestamp_ms),
    )
    return f"{len(snapshots)} snapshots are kept, from {first.describe()} to {last.describe()}"


def snapshot_by_id(table: Table, snapshot_id: int) -> SnapshotRef:
    """The snapshot ``snapshot_id``, or a LakeError naming what is available."""
    snapshot = table.snapshot_by_id(snapshot_id)
    if snapshot is None:
        raise LakeError(
            f"--as-of {snapshot_id}: no such snapshot in {_name(table)}; {_available(table)} "
            "(older ones expire after spec.sinks.iceberg.snapshotRetention)"
        )
    return SnapshotRef(snapshot.snapshot_id, snapshot.timestamp_ms)


def snapshot_as_of(table: Table, timestamp_ms: int) -> SnapshotRef:
    """The snapshot that was current at ``timestamp_ms``, or a LakeError naming what is available."""
    snapshot = table.snapshot_as_of_timestamp(timestamp_ms)
    if snapshot is None:
        moment = datetime.fromtimestamp(timestamp_ms / 1000, UTC).isoformat(timespec="seconds")
        raise LakeError(f"--as-of {moment}: the table had no snapshot yet at that time; {_available(table)}")
    return SnapshotRef(snapshot.snapshot_id, snapshot.timestamp_ms)


def partition_updates(table: Table, snapshot_id: int | None = None) -> dict[date, int]:
    """Each ``day(event_time)`` partition (a UTC day) and when its data last changed (epoch ms)."""
    if table.current_snapshot() is None:
        return {}
    rows = table.inspect.partitions(snapshot_id=snapshot_id).to_pylist()
    out: dict[date, int] = {}
    for row in rows:
        day = (row.get("partition") or {}).get("event_day")
        updated: Any = row.get("last_updated_at")
        if day is None or updated is None:
            continue
        ms = _millis(updated) if isinstance(updated, datetime) else int(updated)
        out[day] = max(out.get(day, 0), ms)
    return out


def newest_event_ms(table: Table, snapshot_id: int | None = None) -> int | None:
    """The latest ``event_time`` in the snapshot (epoch ms), from the data files' column bounds.

    Metadata only: no data file is read. None when the table is empty or no file records bounds.
    """
    if table.current_snapshot() is None:
        return None
    files = table.inspect.data_files(snapshot_id=snapshot_id)
    if files.num_rows == 0:
        return None
    bounds = pc.struct_field(files.column("readable_metrics"), ["event_time", "upper_bound"])
    newest = pc.max(bounds).as_py()
    return None if newest is None else _millis(newest)


def _millis(moment: datetime) -> int:
    """Epoch milliseconds of a naive-UTC or aware datetime, exactly."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return (aware - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def expire_snapshots(table: Table, older_than_ms: int, retries: int = 5) -> int:
    """Expire the snapshots committed before ``older_than_ms`` (never a branch head); the number expired.

    The streaming job may commit at the same moment: a conflicting commit is retried on a fresh
    view of the table.
    """
    for attempt in range(retries):
        table.refresh()
        current = table.current_snapshot()
        doomed = [
            s.snapshot_id
            for s in table.snapshots()
            if s.timestamp_ms < older_than_ms and (current is None or s.snapshot_id != current.snapshot_id)
        ]
        if not doomed:
            return 0
        try:
            table.maintenance.expire_snapshots().by_ids(doomed).commit()
        except CommitFailedException:
            time.sleep(0.2 * (attempt + 1))
            continue
        return len(doomed)
    raise LakeError(
        f"could not expire snapshots of {_name(table)} after {retries} attempts (the table kept changing); retry"
    )
