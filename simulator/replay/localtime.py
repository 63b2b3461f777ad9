"""Local wall-clock times of real data sets to instants with the right UTC offset.

The real data sets write times without an offset (DAIAD and UCI local time, KETI UTC).
:class:`LocalTimes` attaches the zone's offset; at the autumn change a wall-clock hour happens
twice, and the data cannot say which is meant, so it is resolved by order, per meter: the first
occurrence is summer time (the earlier offset), and a repeat that would not move that meter's
clock forward (it would go backwards or stand still) is standard time (docs/simulator.md gives the
evidence for this rule in DAIAD). A wall-clock time that does not exist (inside the spring gap) is
returned as None for the caller to skip. Used by :mod:`simulator.replay.runner`.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

_HOUR = timedelta(hours=1) - timedelta(microseconds=1)


class LocalTimes:
    """Resolves naive local times of ``zone`` to aware datetimes, remembering each meter's last instant."""

    def __init__(self, zone: str) -> None:
        self.zone = ZoneInfo(zone)
        self._last: dict[str, datetime] = {}
        self._zones: dict[timedelta, timezone] = {}
        self._hours: dict[tuple[int, int, int, int], tuple[timedelta, timedelta] | None] = {}

    def _offsets(self, local: datetime) -> tuple[timedelta, timedelta]:
        """The offsets of ``local`` read as the first and as the second occurrence of that wall time.

        Cached per wall-clock hour when the whole hour has the same two offsets (every zone whose
        clock changes on the hour, as all the replayed ones do).
        """
        key = (local.year, local.month, local.day, local.hour)
        if key not in self._hours:
            top = local.replace(minute=0, second=0, microsecond=0)
            pair = self._pair(top)
            # None: the offset changes inside this hour, so every time in it is computed on its own
            self._hours[key] = pair if self._pair(top + _HOUR) == pair else None
        cached = self._hours[key]
        return cached if cached is not None else self._pair(local)

    def _pair(self, local: datetime) -> tuple[timedelta, timedelta]:
        first = local.replace(tzinfo=self.zone).utcoffset()
        second = local.replace(tzinfo=self.zone, fold=1).utcoffset()
        assert first is not None and second is not None
        return first, second

    def resolve(self, meter_id: str, local: datetime) -> datetime | None:
        """``local`` with its UTC offset as a fixed-offset aware datetime; None in a spring gap."""
        first, second = self._offsets(local)
        if first == second:
            offset = first
        elif first < second:  # the clock jumped forward over this time: it never happened
            return None
        else:  # the clock fell back: this wall time happened twice
            last = self._last.get(meter_id)
            offset = second if last is not None and local - first <= last else first
        self._last[meter_id] = local - offset
        zone = self._zones.get(offset)
        if zone is None:
            zone = self._zones[offset] = timezone(offset)
        return local.replace(tzinfo=zone)
