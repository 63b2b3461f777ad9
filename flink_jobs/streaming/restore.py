"""Find where a local streaming job resumes: the newest retained checkpoint or savepoint.

A savepoint taken by a *drained* stop is never a restore point: Flink 2 records its operators as
finished, and a job restored from it finishes at once (measured), with its watermark at the end
of time besides. A drained stop therefore takes an ordinary savepoint first, and that one is kept
(and the lake's commit bookkeeping is set back to it: :mod:`meterflow_iceberg.committed`).

Checkpoints are retained on cancellation and on a crash (nothing cleans them up), savepoints are
written by a graceful stop; a restart restores the newest of them, so a stopped or killed
``meterflow run`` continues exactly where its state was last saved.
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

_METADATA_MAGIC = 0x4960672D
"""The first four bytes of a Flink checkpoint's ``_metadata`` (then a version, then the checkpoint id)."""


def checkpoint_root(state: Path) -> Path:
    return state / "checkpoints"


def savepoint_root(state: Path) -> Path:
    return state / "savepoints"


def drained_root(state: Path) -> Path:
    """Where a drained stop writes its savepoint: never restored from (see :func:`latest_restore_point`)."""
    return state / "drained"


def latest_restore_point(state: Path) -> Path | None:
    """The folder of the newest complete checkpoint or savepoint (one with ``_metadata``)."""
    candidates = list(checkpoint_root(state).glob("*/chk-*/_metadata")) + list(
        savepoint_root(state).glob("*/_metadata")
    )
    if not candidates:
        return None
    return max(candidates, key=lambda p: p.stat().st_mtime).parent


def prune(state: Path, keep: Path | None) -> None:
    """Delete every checkpoint and savepoint folder except ``keep`` (after a clean stop)."""
    for root in (checkpoint_root(state), savepoint_root(state), drained_root(state)):
        if not root.exists():
            continue
        for child in root.iterdir():
            if keep is not None and (child == keep or child in keep.parents):
                continue
            shutil.rmtree(child, ignore_errors=True)


def checkpoint_id(point: Path) -> int:
    """The checkpoint id of a checkpoint or savepoint folder, read from its ``_metadata`` header."""
    with (point / "_metadata").open("rb") as metadata:
        magic, _version, number = struct.unpack(">iiq", metadata.read(16))
    if magic != _METADATA_MAGIC:
        raise ValueError(f"{point}/_metadata is not a Flink checkpoint's metadata")
    return int(number)
