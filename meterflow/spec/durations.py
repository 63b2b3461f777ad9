"""Durations as Kubernetes users write them: ``500ms``, ``10s``, ``5m``, ``1h``, ``7d``.

The manifest keeps the string (so it round-trips through ``kubectl``); code asks for a
:class:`datetime.timedelta`. Windows use the units CEL's ``duration()`` understands (no ``d``),
so the CRD can check ``slide <= size`` on the API server.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import Field

_UNITS_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}

DURATION_PATTERN = r"^[0-9]+(ms|s|m|h|d)$"
"""Any duration, days included (retention, lookback)."""

CEL_DURATION_PATTERN = r"^[0-9]+(ms|s|m|h)$"
"""A duration CEL's ``duration()`` can parse (no days): window sizes, delays."""

_DURATION_RE = re.compile(DURATION_PATTERN)

Duration = Annotated[str, Field(pattern=DURATION_PATTERN, max_length=32, examples=["10s", "5m", "7d"])]
CelDuration = Annotated[str, Field(pattern=CEL_DURATION_PATTERN, max_length=32, examples=["10s", "5m", "1h"])]


def to_millis(text: str) -> int:
    """``"5m"`` → 300000. Raises ValueError naming the bad text and the accepted form."""
    match = _DURATION_RE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration; write a whole number and a unit, e.g. 500ms, 10s, 5m, 1h, 7d")
    unit = match.group(1)
    return int(text[: -len(unit)]) * _UNITS_MS[unit]


def to_timedelta(text: str) -> timedelta:
    """``"5m"`` → ``timedelta(minutes=5)``."""
    return timedelta(milliseconds=to_millis(text))
