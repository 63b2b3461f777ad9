"""One record bound for ``<name>.readings``: key, exact payload bytes, kind and event time.

Produced by :mod:`simulator.engine` and :mod:`simulator.replay.runner`, consumed by
:mod:`simulator.producer` (which paces on ``event_ms`` and writes the ``--record`` file).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Record:
    """A Kafka record of the readings topic (``event_ms`` None: send without pacing)."""

    key: bytes
    value: bytes
    kind: str
    event_ms: int | None
