"""Which days a batch run recomputes, and where they begin and end (pure functions).

A *day* is a calendar day in the pipeline's ``spec.timeZone``: utilities bill and customers read
their usage per local day, and real data sets write local time (DAIAD: Europe/Madrid). A local
day is not always 24 hours (23 or 25 on daylight-saving changes); :func:`day_bounds` gives its
exact UTC instants. Called by :mod:`flink_jobs.batch.run` and ``meterflow batch``.

Default range (no ``--from``/``--to``): the closed days — days that ended before now in the
time zone — of the last ``spec.batch.lookback``, less those already recomputed whose lake
partitions have not changed since (a late reading landing in a day's Iceberg partition makes
that day due again).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from meterflow.errors import MeterflowError
from meterflow.spec.durations import to_millis

DAY_MS = 86_400_000


class BatchError(MeterflowError):
    """A batch run cannot start: a bad range, snapshot or time."""


@dataclass(frozen=True)
class DayRange:
    """Local days ``first`` .. ``last``, both included."""

    first: date
    last: date

    def __post_init__(self) -> None:
        if self.first > self.last:
            raise BatchError(f"--from {self.first} is after --to {self.last}; swap them")

    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]

    def months(self) -> list[date]:
        """First days of the months the range touches."""
        return sorted({d.replace(day=1) for d in self.days()})


@dataclass(frozen=True)
class AsOf:
    """Which Iceberg snapshot to read: by id, or the one current at an instant (epoch ms)."""

    snapshot_id: int | None = None
    timestamp_ms: int | None = None


def day_bounds(day: date, zone: str) -> tuple[int, int]:
    """``[start, end)`` of the local ``day`` as epoch milliseconds."""
    tz = ZoneInfo(zone)
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    nxt = day + timedelta(days=1)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz)
    return _ms(start), _ms(end)


def local_day(ms: int, zone: str) -> date:
    """The local day of an instant."""
    return datetime.fromtimestamp(ms / 1000, ZoneInfo(zone)).date()


def today(zone: str, now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(ZoneInfo(zone)).date()


def lookback_days(lookback: str) -> int:
    """``spec.batch.lookback`` in whole days, rounded up (``36h`` → 2)."""
    return max(1, math.ceil(to_millis(lookback) / DAY_MS))


def closed_days(zone: str, lookback: str, now: datetime | None = None) -> list[date]:
    """The closed local days of the lookback, oldest first (``3d`` → the three days before today)."""
    current = today(zone, now)
    n = lookback_days(lookback)
    return [current - timedelta(days=i) for i in range(n, 0, -1)]


def utc_days_of(day: date, zone: str) -> list[date]:
    """The UTC days (Iceberg ``day(event_time)`` partitions) a local day overlaps."""
    start, end = day_bounds(day, zone)
    first = datetime.fromtimestamp(start / 1000, UTC).date()
    last = datetime.fromtimestamp((end - 1) / 1000, UTC).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def due_days(
    candidates: list[date],
    recomputed: dict[date, int],
    partition_updates: dict[date, int],
    zone: str,
) -> list[date]:
    """The candidates never recomputed, or whose partitions changed after their recompute.

    ``recomputed`` maps a day to the commit time (epoch ms) of the snapshot it was computed from;
    ``partition_updates`` maps a UTC partition day to the time its data last changed.
    """
    due = []
    for day in candidates:
        seen = recomputed.get(day)
        if seen is None:
            due.append(day)
            continue
        changed = max((partition_updates.get(d, 0) for d in utc_days_of(day, zone)), default=0)
        if changed > seen:
            due.append(day)
    return due


def contiguous(days: list[date]) -> DayRange | None:
    """The smallest range holding ``days`` (one Flink scan covers it; days between are recomputed too)."""
    if not days:
        return None
    return DayRange(min(days), max(days))


def parse_day(option: str, text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BatchError(f"{option} {text!r} is not a date; write YYYY-MM-DD, e.g. 2016-10-01") from None


def explicit_range(day_from: date | str | None, day_to: date | str | None) -> DayRange | None:
    """``--from``/``--to``: both, one (a single day) or neither (None: the default range)."""
    first = parse_day("--from", day_from) if isinstance(day_from, str) else day_from
    last = parse_day("--to", day_to) if isinstance(day_to, str) else day_to
    if first is None and last is None:
        return None
    return DayRange(first or last, last or first)  # type: ignore[arg-type]


_DIGITS = re.compile(r"^[0-9]+$")


def parse_as_of(text: str | None, zone: str) -> AsOf | None:
    """``--as-of``: digits are a snapshot id; otherwise an ISO 8601 time (no offset: in ``zone``)."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    if _DIGITS.match(text):
        return AsOf(snapshot_id=int(text))
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BatchError(
            f"--as-of {text!r} is neither a snapshot id (digits) nor a time; write e.g. 4823904513 or "
            "2016-10-15T08:00:00+02:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return AsOf(timestamp_ms=_ms(moment))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def streak_start(recomputed: set[date] | dict[date, int], before: date) -> date | None:
    """The first day of the unbroken run of recomputed days ending the day before ``before``.

    daily_stats can anchor a scan starting on ``before`` only on days of this run: a day missing
    from it may hold readings daily_stats never saw. None when the day before is not recomputed.
    """
    day = before - timedelta(days=1)
    if day not in recomputed:
        return None
    while day - timedelta(days=1) in recomputed:
        day -= timedelta(days=1)
    return day
