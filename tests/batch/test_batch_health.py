"""Meter health: each component and the score of a meter-day, worked out by hand (pure pandas)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from flink_jobs.batch import health, problems
from flink_jobs.batch.problems import Thresholds
from tests.batch.rows import daily, day
from tests.conftest import every_kind_rules, unique_pipeline

HOUR = 3_600_000
DAYS = [day(2), day(3)]
BOUNDS = {day(2): (24 * HOUR, 48 * HOUR), day(3): (48 * HOUR, 72 * HOUR)}
EXPECT = health.Expectations(
    interval_ms={("Pulse1", "P1"): HOUR, ("Temp", "C"): HOUR}, stuck_ms={("Temp", "C"): 6 * HOUR}
)


def _scan() -> pd.DataFrame:
    """a: perfect on day 2, half a day on day 3 with every fault; b: begins at noon on day 3."""
    temp = {"measurement_type": "Temp", "series": "C", "kind": "gauge", "unit": "C"}
    return daily(
        {"meter_id": "a", "day": day(2), "readings": 24, "first_ms": 24 * HOUR, "last_ms": 47 * HOUR,
         "max_flat_ms": 2 * HOUR},
        {"meter_id": "a", "day": day(2), "readings": 24, "first_ms": 24 * HOUR, "last_ms": 47 * HOUR, **temp},
        {"meter_id": "a", "day": day(3), "readings": 12, "first_ms": 49 * HOUR, "last_ms": 60 * HOUR,
         "duplicates": 2, "late_readings": 3},
        {"meter_id": "a", "day": day(3), "readings": 12, "first_ms": 49 * HOUR, "last_ms": 60 * HOUR, **temp,
         "clock_ahead": 1, "max_ahead_ms": 90_000.0, "max_flat_ms": 7 * HOUR},
        {"meter_id": "b", "day": day(3), "readings": 12, "first_ms": 60 * HOUR, "last_ms": 71 * HOUR},
    )  # fmt: skip


def _meter_days() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "meter_id": ["a", "a", "b"],
            "day": [day(2), day(3), day(3)],
            "first_ms": [24 * HOUR, 49 * HOUR, 60 * HOUR],
            "last_ms": [47 * HOUR, 60 * HOUR, 71 * HOUR],
            "max_gap_ms": [1.0 * HOUR, 2.0 * HOUR, np.nan],
        }
    )


def _scores() -> pd.DataFrame:
    anchors = pd.DataFrame({"meter_id": ["a", "c"], "last_ms": [23 * HOUR, 20 * HOUR]})
    silence = health.silences(
        _meter_days(), anchors, days=DAYS, day_ends={d: e for d, (_, e) in BOUNDS.items()}, known_until_ms=72 * HOUR
    )
    series_anchors = pd.DataFrame(
        {"meter_id": ["a", "c"], "measurement_type": ["Pulse1", "Pulse1"], "series": ["P1", "P1"],
         "last_value": [0.0, 0.0], "last_ms": [23 * HOUR, 20 * HOUR]}
    )  # fmt: skip
    dead = pd.DataFrame({"meter_id": ["a", "c"], "day": [day(3), day(3)], "dead_letters": [4, 2]})
    return health.score(
        _scan(), silence, series_anchors, dead, days=DAYS, day_bounds=BOUNDS, known_until_ms=72 * HOUR, expect=EXPECT
    )


def test_every_component_of_a_meter_day_is_weighed() -> None:
    out = _scores()
    assert list(out.columns) == health.COLUMNS
    assert [(r.day, r.meter_id) for r in out.itertuples()] == [
        (day(2), "a"),
        (day(2), "c"),
        (day(3), "a"),
        (day(3), "b"),
        (day(3), "c"),
    ]  # fmt: skip  (b is not scored before its first reading)
    a2, c2, a3, b3, c3 = out.to_dict("records")

    # a, day 2: 48 of 48 readings, its longest silence 1 h is its interval, nothing else: 100
    assert (a2["score"], a2["completeness"], a2["expected_readings"], a2["longest_silence_h"]) == (
        100.0,
        1.0,
        48.0,
        1.0,
    )
    assert a2["reason"] == "" and math.isnan(a2["max_clock_ahead_s"])

    # a, day 3: 24 of 48 (0.5), silent from 60 h to the end of the data at 72 h (12 h, 11 h over its
    # interval: 13/24), 2 duplicates (24/26), 3 late (21/24), 4 dead letters (24/28), 1 reading 90 s
    # ahead of its arrival (23/24), Temp flat 7 h against its stuck rule's 6 h (0 of 1)
    want = 40 * 0.5 + 20 * 13 / 24 + 10 * 24 / 26 + 10 * 21 / 24 + 10 * 24 / 28 + 5 * 23 / 24 + 5 * 0
    assert a3["score"] == round(want, 1) == 62.2
    assert (a3["readings"], a3["expected_readings"], a3["completeness"], a3["longest_silence_h"]) == (
        24,
        48.0,
        0.5,
        12.0,
    )
    assert (a3["duplicates"], a3["late_readings"], a3["dead_letters"], a3["clock_ahead"]) == (2, 3, 4, 1)
    assert (a3["max_clock_ahead_s"], a3["stuck_series"]) == (90.0, 1)
    assert a3["reason"] == (
        "24 of 48 expected readings; silent for 12.0 h; 1 stuck series; 4 dead letters; 3 late readings; "
        "2 duplicates; 1 reading stamped ahead of arrival (clock)"
    )

    # b began at noon on day 3: it owed 12 readings (its one series, hourly) and sent them
    assert (b3["score"], b3["expected_readings"], b3["completeness"], b3["longest_silence_h"]) == (
        100.0,
        12.0,
        1.0,
        1.0,
    )

    # c has been silent since 20 h: nothing on either day, and on day 3 two dead letters
    assert (c2["score"], c2["readings"], c2["completeness"], c2["longest_silence_h"]) == (0.0, 0, 0.0, 28.0)
    assert c2["reason"] == "0 of 24 expected readings; silent for 28.0 h"
    assert (c3["score"], c3["dead_letters"]) == (0.0, 2)
    assert c3["reason"] == "0 of 24 expected readings; silent for 52.0 h; 2 dead letters"


def test_a_low_score_is_a_problem_meter() -> None:
    t = Thresholds(factor=3.0, no_data_hours=24, min_health_score=70.0)
    found = problems.low_quality(_scores(), t)
    assert [(r.day, r.meter_id, r.severity, r.value, r.threshold) for r in found.itertuples()] == [
        (day(2), "c", "CRITICAL", 0.0, 70.0),
        (day(3), "a", "WARNING", 62.2, 70.0),
        (day(3), "c", "CRITICAL", 0.0, 70.0),
    ]  # fmt: skip
    assert found["reason"].iloc[0] == "data quality 0.0 of 100: 0 of 24 expected readings; silent for 28.0 h"
    assert problems.low_quality(_scores(), Thresholds(factor=3.0, no_data_hours=24, min_health_score=0)).empty


def test_expectations_come_from_the_manifest() -> None:
    pipeline = unique_pipeline("water-meters", rules=every_kind_rules())
    expect = health.expectations_for(pipeline)
    assert expect.interval_ms == {
        ("Pulse1", "P1"): 15 * 60_000, ("Pulse1_Total", "T1"): 15 * 60_000, ("Battery", "V"): 24 * HOUR,
        ("DeviceTemperature", "T"): 24 * HOUR,
    }  # fmt: skip
    assert expect.stuck_ms == {("Pulse1_Total", "T1"): 6 * HOUR}  # only what a stuck rule watches
    assert health.expectations_for(unique_pipeline("water-meters")).stuck_ms == {}
