"""One record bound for ``<name>.readings``: key, exact payload bytes, kind and event time.

Produced by :mod:`simulator.engine` and :mod:`simulator.replay.runner`, consumed by
:mod:`simulator.producer` (which paces on ``event_ms`` and writes the ``--record`` file).
:func:`recorded_value` is how the ``--record`` files (Kafka and MQTT) write a payload.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Record:
    """A Kafka record of the readings topic (``event_ms`` None: send without pacing)."""

    key: bytes
    value: bytes
    kind: str
    event_ms: int | None


def recorded_value(payload: bytes) -> dict[str, str]:
    """``{"value": <the payload as text>}``, or for bytes that are not UTF-8 ``{"value": <base64>,
    "encoding": "base64"}`` (as the dead-letter topic keeps them)."""
    try:
        return {"value": payload.decode()}
    except UnicodeDecodeError:
        return {"value": base64.b64encode(payload).decode(), "encoding": "base64"}
