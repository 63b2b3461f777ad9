"""Pace records: at most ``rate`` per second, and event time ``speedup`` times faster than wall time.

Used by :mod:`simulator.producer` for ``--rate`` and ``--speedup`` (both ``meterflow simulate``
and ``meterflow replay``). Unset, records go out as fast as Kafka takes them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

SLACK_S = 0.005
"""Sleep only when ahead by more than this (sleeping per record would cost more than it paces)."""


class Pacer:
    """Sleeps just enough to keep to the rate cap and the event-time speed-up."""

    def __init__(
        self,
        rate: float | None,
        speedup: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self.speedup = speedup
        self._clock = clock
        self._sleep = sleep
        self._wall0: float | None = None
        self._event0: int | None = None
        self._sent = 0

    @property
    def active(self) -> bool:
        """False when neither a rate nor a speed-up is set (then :meth:`wait` never sleeps)."""
        return self.rate is not None or self.speedup is not None

    def wait(self, event_ms: int | None) -> None:
        """Call before sending a record whose event time is ``event_ms`` (None: no event pacing)."""
        if not self.active:
            return
        now = self._clock()
        if self._wall0 is None:
            self._wall0 = now
        due = self._wall0
        if self.rate is not None:
            due = max(due, self._wall0 + self._sent / self.rate)
        if self.speedup is not None and event_ms is not None:
            if self._event0 is None:
                self._event0 = event_ms
            due = max(due, self._wall0 + (event_ms - self._event0) / 1000 / self.speedup)
        self._sent += 1
        if due - now > SLACK_S:
            self._sleep(due - now)
