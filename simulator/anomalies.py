"""Anomaly episodes (``--inject``, seed 004): short runs of a sensor's readings far outside normal.

:class:`Anomalies` plans, up front and from a generator of its own (so threshold triggers and the
other injections stay where they were), episodes on the meters of a profile that has
:attr:`~simulator.profiles.base.Profile.anomaly_ranges` (the industrial sensors: 80-120 °C, 0-20 %).
An episode is one sensor, 2 to 5 consecutive reporting slots (:data:`EPISODE_READINGS`), and
either one of the measurements with a range or all of them (:data:`ALL_SHARE`); each of its
readings reports a value drawn uniformly from the measurement's range, rounded to its decimals.
Episodes start in the first 90 % of the run, and two on one sensor keep at least one reporting
slot between them. They are planned until they hold at least the run's anomaly count,
``max(1, round(rate x expected readings / 1000))`` (15 per 1,000 by default: 1.5 % of readings).

:class:`simulator.injections.Injector` asks :meth:`Anomalies.take` for each value a profile
produces; an anomaly wins over a pending threshold trigger (which waits for another reading), and
the injector lists each anomalous reading in the ground truth as it is sent (``anomalies``), so
the truth holds exactly the readings that went out.
"""

from __future__ import annotations

import bisect
import math
import random

from simulator.errors import SimulatorError
from simulator.profiles.base import Profile
from simulator.schedule import Schedule

DEFAULT_ANOMALY_RATE = 15.0
"""Anomalous readings per 1,000 expected readings (1.5 %)."""

EPISODE_READINGS = (2, 5)
"""An episode lasts this many consecutive reporting slots (inclusive range)."""

ALL_SHARE = 0.5
"""Share of episodes in which every measurement with an anomaly range goes wrong at once (else one does)."""

PLAN_SHARE = 0.9
"""Episodes start in the first 90 % of the run, so normal readings follow them."""

ATTEMPTS_PER_EPISODE = 50
"""Placement attempts (an episode may not touch another on its sensor) before planning gives up."""


class Anomalies:
    """The anomaly episodes of one run (see the module docstring)."""

    def __init__(
        self,
        profile: Profile,
        schedule: Schedule,
        span: tuple[int, int | None],
        rng: random.Random,
        target: int,
        expected: int,
    ) -> None:
        self.profile = profile
        self.schedule = schedule
        self.rng = rng
        self.target = target
        self.planned = 0
        """Anomalous readings planned (a silenced meter's, or those past a ``--count`` run's end, are not sent)."""
        self.episodes = 0
        self._values: dict[tuple[int, int, int], tuple[float, int]] = {}
        self.measurements = [
            (i, profile.anomaly_ranges[m.name])
            for i, m in enumerate(profile.measurements)
            if m.name in profile.anomaly_ranges
        ]
        if not self.measurements or target <= 0:
            return
        for i, (low, high) in self.measurements:
            spec = profile.measurements[i]
            if spec.min is not None and low < spec.min:
                raise SimulatorError(
                    f"measurement {spec.name}/{spec.series}: injected anomalies go down to {low:g} {spec.unit}, below "
                    f"its min {spec.min:g}; set min: {low:g} or lower, or give --inject-rate anomaly=0"
                )
            if spec.max is not None and high > spec.max:
                raise SimulatorError(
                    f"measurement {spec.name}/{spec.series}: injected anomalies go up to {high:g} {spec.unit}, above "
                    f"its max {spec.max:g}; set max: {high:g} or higher, or give --inject-rate anomaly=0"
                )
        start, end = span
        if end is None:  # a --count run: when the schedule will have produced the expected readings
            per_ms = sum(len(g.measurements) / g.interval_ms for g in schedule.groups) * schedule.meters
            end = start + math.ceil(expected / per_ms)
        self._plan(start, end)

    def _plan(self, start: int, end: int) -> None:
        horizon = start + int((end - start) * PLAN_SHARE)
        meters = len(self.profile.meters)
        gap = max(self.schedule.grid(0, i)[1] for i, _ in self.measurements)
        busy: dict[int, list[tuple[int, int]]] = {}
        planned: list[tuple[int, int, list[tuple[int, int, float]]]] = []
        failures = 0
        rng = self.rng
        while self.planned < self.target and failures < ATTEMPTS_PER_EPISODE:
            meter = rng.randrange(meters)
            if len(self.measurements) > 1 and rng.random() < ALL_SHARE:
                chosen = self.measurements
            else:
                chosen = [rng.choice(self.measurements)]
            length = rng.randint(*EPISODE_READINGS)
            first, interval = self.schedule.grid(meter, chosen[0][0])
            slots = (horizon - first) // interval
            if slots < 1:
                failures += 1
                continue
            t0 = first + rng.randrange(slots) * interval
            readings: list[tuple[int, int, float]] = []
            for m, (low, high) in chosen:
                m_first, m_interval = self.schedule.grid(meter, m)
                k = max(0, -(-(t0 - m_first) // m_interval))  # its first reading at or after t0
                decimals = self.profile.guards[m].decimals
                for j in range(length):
                    readings.append((m, m_first + (k + j) * m_interval, round(rng.uniform(low, high), decimals) + 0.0))
            lo, hi = min(r[1] for r in readings), max(r[1] for r in readings)
            taken = busy.setdefault(meter, [])  # the sensor's episodes as (first, last), sorted
            at = bisect.bisect(taken, (lo, hi))
            if (at > 0 and lo - taken[at - 1][1] <= gap) or (at < len(taken) and taken[at][0] - hi <= gap):
                failures += 1  # it would touch another episode of the sensor
                continue
            failures = 0
            taken.insert(at, (lo, hi))
            planned.append((lo, meter, readings))
            self.planned += len(readings)
        planned.sort(key=lambda p: (p[0], p[1]))
        for number, (_, meter, readings) in enumerate(planned):
            for m, millis, value in readings:
                self._values[(meter, m, millis)] = (value, number)
        self.episodes = len(planned)

    def take(self, meter: int, measurement: int, millis: int) -> tuple[float, int] | None:
        """The anomalous value ``meter`` reports for ``measurement`` at ``millis`` and its episode's
        number (episodes are numbered in order of their first reading), or None for a normal one."""
        if not self._values:
            return None
        return self._values.pop((meter, measurement, millis), None)
