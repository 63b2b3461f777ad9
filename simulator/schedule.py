"""When each simulated meter reports: one stream per meter and reporting interval, in event-time order.

The manifest's measurements are grouped by their ``interval``; every meter reports each group at
``start + phase + k * interval``, the phase fixed per meter and group (a meter's "send time":
a whole minute of the day for daily measurements, a whole second for minute-scale intervals,
none below a minute). :class:`Schedule` merges all streams with a heap, so slots come out in
event-time order (ties by meter, then group). Used by :mod:`simulator.engine`.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass

from meterflow.spec.durations import to_millis
from meterflow.spec.model import MeasurementSpec

MINUTE_MS = 60_000
DAY_MS = 86_400_000


@dataclass(frozen=True)
class Group:
    """Measurements (indexes into the manifest's list) reported together every ``interval_ms``."""

    interval_ms: int
    measurements: tuple[int, ...]


def group_measurements(measurements: list[MeasurementSpec]) -> tuple[Group, ...]:
    """Group by interval, shortest interval first, manifest order inside a group."""
    by_interval: dict[int, list[int]] = {}
    for i, m in enumerate(measurements):
        by_interval.setdefault(to_millis(m.interval), []).append(i)
    return tuple(Group(ms, tuple(idx)) for ms, idx in sorted(by_interval.items()))


def draw_phase(rng: random.Random, interval_ms: int) -> int:
    """A meter's offset inside one interval (see the module docstring)."""
    if interval_ms >= DAY_MS:
        return rng.randrange(interval_ms // MINUTE_MS) * MINUTE_MS
    if interval_ms >= MINUTE_MS:
        return rng.randrange(min(60, interval_ms // 1000)) * 1000
    return 0


class Schedule:
    """The reporting slots of ``meters`` meters from ``start_ms`` on, in event-time order."""

    def __init__(self, groups: tuple[Group, ...], meters: int, start_ms: int, rng: random.Random) -> None:
        self.groups = groups
        self.meters = meters
        self.start_ms = start_ms
        self.phases = [[draw_phase(rng, g.interval_ms) for g in groups] for _ in range(meters)]
        self._group_of = {m: gi for gi, g in enumerate(groups) for m in g.measurements}

    def slots(self) -> Iterator[tuple[int, int, int]]:
        """``(event time ms, meter index, group index)``, forever, in order."""
        heap = [
            (self.start_ms + self.phases[meter][gi], meter, gi)
            for meter in range(self.meters)
            for gi in range(len(self.groups))
        ]
        heapq.heapify(heap)
        intervals = [g.interval_ms for g in self.groups]
        while True:
            t, meter, gi = heap[0]
            yield t, meter, gi
            heapq.heapreplace(heap, (t + intervals[gi], meter, gi))

    def count_before(self, end_ms: int) -> int:
        """How many readings (slots times group size) fall in ``[start, end_ms)``."""
        total = 0
        for meter in range(self.meters):
            for gi, group in enumerate(self.groups):
                first = self.start_ms + self.phases[meter][gi]
                if end_ms > first:
                    total += (-(-(end_ms - first) // group.interval_ms)) * len(group.measurements)
        return total

    def grid(self, meter: int, measurement: int) -> tuple[int, int]:
        """When ``meter`` first reports ``measurement``, and how often: (first event time, interval)."""
        gi = self._group_of[measurement]
        return self.start_ms + self.phases[meter][gi], self.groups[gi].interval_ms

    def on_grid(self, meter: int, measurement: int, millis: int) -> bool:
        """True when ``meter`` reports ``measurement`` at ``millis`` (a normal reading's key)."""
        gi = self._group_of[measurement]
        offset = millis - self.start_ms - self.phases[meter][gi]
        return offset >= 0 and offset % self.groups[gi].interval_ms == 0
