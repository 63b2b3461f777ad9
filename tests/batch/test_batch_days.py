"""Which days a batch run recomputes, where they begin and end, and how --as-of is read."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from flink_jobs.batch.days import (
    AsOf,
    BatchError,
    DayRange,
    closed_days,
    contiguous,
    day_bounds,
    due_days,
    explicit_range,
    local_day,
    lookback_days,
    parse_as_of,
    streak_start,
    utc_days_of,
)


def test_a_local_day_has_exact_utc_bounds_even_across_daylight_saving() -> None:
    # Europe/Madrid, 30 Oct 2016: clocks go back, the day lasts 25 hours (the DAIAD replay month).
    assert day_bounds(date(2016, 10, 30), "Europe/Madrid") == (1477778400000, 1477868400000)
    assert (1477868400000 - 1477778400000) / 3_600_000 == 25
    # 27 Mar 2016: clocks go forward, 23 hours.
    start, end = day_bounds(date(2016, 3, 27), "Europe/Madrid")
    assert (start, end) == (1459033200000, 1459116000000)
    assert (end - start) / 3_600_000 == 23
    assert day_bounds(date(2024, 5, 1), "Australia/Brisbane") == (1714485600000, 1714572000000)


def test_local_day_of_an_instant() -> None:
    assert local_day(1714485600000, "Australia/Brisbane") == date(2024, 5, 1)  # 2024-04-30T14:00Z
    assert local_day(1714485599999, "Australia/Brisbane") == date(2024, 4, 30)


def test_closed_days_are_the_lookback_before_today_in_the_pipeline_zone() -> None:
    now = datetime(2024, 5, 4, 20, 0, tzinfo=UTC)  # already 5 May 06:00 in Brisbane
    assert closed_days("Australia/Brisbane", "3d", now) == [date(2024, 5, 2), date(2024, 5, 3), date(2024, 5, 4)]
    assert closed_days("UTC", "3d", now) == [date(2024, 5, 1), date(2024, 5, 2), date(2024, 5, 3)]
    assert lookback_days("36h") == 2
    assert lookback_days("1h") == 1


def test_utc_partitions_a_local_day_overlaps() -> None:
    assert utc_days_of(date(2024, 5, 2), "Australia/Brisbane") == [date(2024, 5, 1), date(2024, 5, 2)]
    assert utc_days_of(date(2024, 5, 2), "UTC") == [date(2024, 5, 2)]


def test_due_days_are_the_new_ones_and_those_whose_partitions_changed_since() -> None:
    candidates = [date(2024, 5, 1), date(2024, 5, 2), date(2024, 5, 3)]
    recomputed = {date(2024, 5, 1): 1_000, date(2024, 5, 2): 1_000}
    # the UTC partition of 1 May changed after the recompute: local 1 and 2 May overlap it
    updates = {date(2024, 4, 30): 900, date(2024, 5, 1): 1_500, date(2024, 5, 2): 800}
    assert due_days(candidates, recomputed, updates, "UTC") == [date(2024, 5, 1), date(2024, 5, 3)]
    assert due_days(candidates, recomputed, updates, "Australia/Brisbane") == [
        date(2024, 5, 1), date(2024, 5, 2), date(2024, 5, 3),
    ]  # fmt: skip
    assert due_days(candidates[:2], recomputed, {date(2024, 5, 1): 1_000}, "UTC") == []


def test_ranges() -> None:
    assert contiguous([]) is None
    assert contiguous([date(2024, 5, 3), date(2024, 5, 1)]) == DayRange(date(2024, 5, 1), date(2024, 5, 3))
    assert DayRange(date(2024, 4, 30), date(2024, 5, 1)).months() == [date(2024, 4, 1), date(2024, 5, 1)]
    assert explicit_range(None, None) is None
    assert explicit_range("2024-05-02", None) == DayRange(date(2024, 5, 2), date(2024, 5, 2))
    with pytest.raises(BatchError, match=r"--from 2024-05-03 is after --to 2024-05-01; swap them"):
        explicit_range("2024-05-03", "2024-05-01")
    with pytest.raises(BatchError, match=r"--to '2024-13-01' is not a date; write YYYY-MM-DD"):
        explicit_range("2024-05-01", "2024-13-01")


def test_as_of_is_a_snapshot_id_or_a_time() -> None:
    assert parse_as_of("8123456789012345678", "UTC") == AsOf(snapshot_id=8123456789012345678)
    assert parse_as_of("2016-10-15T08:00:00+02:00", "UTC") == AsOf(timestamp_ms=1476511200000)
    # no offset: the pipeline's time zone
    assert parse_as_of("2016-10-15T08:00:00", "Europe/Madrid") == AsOf(timestamp_ms=1476511200000)
    assert parse_as_of(None, "UTC") is None
    with pytest.raises(BatchError, match=r"--as-of 'yesterday' is neither a snapshot id"):
        parse_as_of("yesterday", "UTC")


def test_anchors_come_only_from_an_unbroken_run_of_recomputed_days() -> None:
    days = {date(2024, 5, 1), date(2024, 5, 3), date(2024, 5, 4)}
    assert streak_start(days, date(2024, 5, 5)) == date(2024, 5, 3)
    assert streak_start(days, date(2024, 5, 2)) == date(2024, 5, 1)
    assert streak_start(days, date(2024, 5, 3)) is None
