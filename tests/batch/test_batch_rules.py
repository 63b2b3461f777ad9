"""The pure parts after Flink: register steps anchored on daily_stats, meter silences, problem rules."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from flink_jobs.batch import problems, steps
from flink_jobs.batch.meters import changed_rows, enrich
from flink_jobs.batch.problems import Limit, Thresholds, thresholds_for
from tests.batch.rows import daily, day
from tests.conftest import unique_pipeline

HOUR = 3_600_000
T = Thresholds(
    factor=3.0,
    no_data_hours=24,
    low_battery={("Battery", "V"): Limit(3.0, "<", "CRITICAL")},
    high_temperature={("DeviceTemperature", "T"): Limit(50.0, ">", "WARNING")},
    pairs=((("Pulse1_Total", "T1"), ("Pulse1", "P1")),),
)


def records(frame: pd.DataFrame, *columns: str) -> list[tuple[object, ...]]:
    return [tuple(r) for r in frame[list(columns)].itertuples(index=False)]


# --- register steps ------------------------------------------------------------------------------


def test_register_step_follows_the_consumption_rule() -> None:
    assert steps.register_step(None, 500.0) == 0.0  # the first reading: no predecessor
    assert steps.register_step(100.0, 130.0) == 30.0
    assert steps.register_step(100.0, 95.0) == -5.0  # a negative step, counted as it is
    assert steps.register_step(100.0, 10.0) == 10.0  # fell to 10 %: a reset, counts from zero
    assert steps.register_step(100.0, 10.5) == -89.5  # 10.5 % is not a reset
    assert steps.register_step(0.0, 0.0) == 0.0
    got = steps.register_steps([np.nan, 100.0, 100.0, 100.0], [500.0, 130.0, 95.0, 10.0])
    assert got.tolist() == [0.0, 30.0, -5.0, 10.0]


def test_first_register_step_of_the_scan_is_anchored_on_daily_stats() -> None:
    frame = daily(
        {"meter_id": "a", "measurement_type": "Pulse1_Total", "series": "T1", "kind": "register", "day": day(2),
         "consumption": 40.0, "first_value": 1_000.0, "unanchored": 1},
        {"meter_id": "a", "measurement_type": "Pulse1_Total", "series": "T1", "kind": "register", "day": day(3),
         "consumption": 7.0, "first_value": 1_050.0, "unanchored": 0},
        {"meter_id": "b", "measurement_type": "Pulse1_Total", "series": "T1", "kind": "register", "day": day(2),
         "consumption": 5.0, "first_value": 20.0, "unanchored": 1},
        {"meter_id": "c", "measurement_type": "Pulse1_Total", "series": "T1", "kind": "register", "day": day(2),
         "consumption": 5.0, "first_value": 880.0, "unanchored": 1},
        {"meter_id": "d", "measurement_type": "Pulse1_Total", "series": "T1", "kind": "register", "day": day(2),
         "consumption": 5.0, "first_value": 70.0, "unanchored": 1},
    )  # fmt: skip
    anchors = pd.DataFrame(
        {
            "meter_id": ["a", "b", "c"],
            "measurement_type": ["Pulse1_Total"] * 3,
            "series": ["T1"] * 3,
            "last_value": [990.0, 900.0, 900.0],
            "last_ms": [0, 0, 0],
        }
    )
    out = steps.anchor_registers(frame, anchors)
    assert records(
        out, "meter_id", "day", "consumption", "resets", "negative_steps", "negative_total", "unanchored"
    ) == [
        ("a", day(2), 50.0, 0, 0, 0.0, 0),  # +10 from 990 to 1000
        ("a", day(3), 7.0, 0, 0, 0.0, 0),
        ("b", day(2), 25.0, 1, 0, 0.0, 0),  # 900 -> 20: a reset, +20
        ("c", day(2), -15.0, 0, 1, -20.0, 0),  # 900 -> 880: a negative step
        ("d", day(2), 5.0, 0, 0, 0.0, 1),  # no anchor: stays the first reading ever
    ]


def test_meter_days_measure_the_silence_ending_at_the_first_reading_from_the_anchor() -> None:
    frame = daily(
        {"meter_id": "a", "day": day(2), "first_ms": 10 * HOUR, "last_ms": 20 * HOUR, "max_gap_ms": 2.0 * HOUR},
        {"meter_id": "a", "measurement_type": "Battery", "series": "V", "kind": "gauge", "day": day(2),
         "first_ms": 9 * HOUR, "last_ms": 9 * HOUR, "max_gap_ms": np.nan},
        {"meter_id": "a", "day": day(3), "first_ms": 30 * HOUR, "last_ms": 40 * HOUR, "max_gap_ms": 10.0 * HOUR},
        {"meter_id": "b", "day": day(3), "first_ms": 30 * HOUR, "last_ms": 31 * HOUR, "max_gap_ms": np.nan},
    )  # fmt: skip
    anchors = pd.DataFrame({"meter_id": ["a"], "last_ms": [-20 * HOUR]})
    out = steps.meter_days(frame, anchors)
    assert records(out.iloc[:2], "meter_id", "day", "first_ms", "last_ms", "max_gap_ms") == [
        ("a", day(2), 9 * HOUR, 20 * HOUR, 29.0 * HOUR),  # 9 h - (-20 h): the silence ended by the first reading
        ("a", day(3), 30 * HOUR, 40 * HOUR, 10.0 * HOUR),
    ]
    assert records(out.iloc[2:], "meter_id", "day", "first_ms", "last_ms") == [("b", day(3), 30 * HOUR, 31 * HOUR)]
    assert np.isnan(out["max_gap_ms"].iloc[2])  # no reading before: no known silence


# --- thresholds from the manifest ----------------------------------------------------------------


def test_thresholds_come_from_the_manifest() -> None:
    water = thresholds_for(unique_pipeline("water-meters"))
    assert water == Thresholds(
        factor=3.0,
        no_data_hours=24,
        low_battery={("Battery", "V"): Limit(3.0, "<", "CRITICAL")},
        high_temperature={("DeviceTemperature", "T"): Limit(50.0, ">", "WARNING")},
        pairs=((("Pulse1_Total", "T1"), ("Pulse1", "P1")),),
    )
    building = thresholds_for(unique_pipeline("smart-building"))
    assert building.high_temperature == {("temperature", "room"): Limit(32.0, ">", "CRITICAL")}
    assert building.low_battery == {} and building.pairs == ()
    no_rules = thresholds_for(unique_pipeline("water-meters", rules=[]))
    assert no_rules.low_battery == {("Battery", "V"): Limit(3.0, "<", "CRITICAL")}
    assert no_rules.high_temperature == {("DeviceTemperature", "T"): Limit(50.0, ">", "WARNING")}


# --- rules ---------------------------------------------------------------------------------------


def _history(meter: str, first: date, values: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "meter_id": meter,
            "measurement_type": "Pulse1",
            "series": "P1",
            "day": [first + timedelta(days=i) for i in range(len(values))],
            "consumption": values,
        }
    )


def test_high_consumption_against_the_meters_own_history() -> None:
    history = pd.concat(
        [
            _history("a", date(2024, 4, 24), [100.0, 90.0, 110.0, 100.0, 95.0, 105.0, 100.0, 100.0]),  # median 100
            _history("b", date(2024, 4, 27), [100.0] * 5),  # only 5 days: no baseline
            _history("c", date(2024, 3, 1), [10.0] * 20),  # too old (more than 28 days back)
        ]
    )
    frame = daily(
        {"meter_id": "a", "day": day(2), "consumption": 301.0},
        {"meter_id": "a", "day": day(3), "consumption": 700.0},  # day 2's 301 joins its history
        {"meter_id": "b", "day": day(2), "consumption": 5_000.0},
        {"meter_id": "c", "day": day(2), "consumption": 5_000.0},
        {"meter_id": "a", "measurement_type": "Battery", "series": "V", "kind": "gauge", "day": day(2),
         "consumption": None},
    )  # fmt: skip
    out = problems.high_consumption_history(frame, history, T)
    assert records(out, "day", "meter_id", "rule", "severity", "value", "threshold") == [
        (day(2), "a", "HIGH_CONSUMPTION_HISTORY", "WARNING", 301.0, 300.0),
        (day(3), "a", "HIGH_CONSUMPTION_HISTORY", "CRITICAL", 700.0, 300.0),  # > 2 x 300
    ]
    assert out["reason"].iloc[0] == (
        "301.0 L in the day: 3.0x this meter's median of 100.0 L over its previous 8 active days (limit 3x)"
    )


def test_high_consumption_against_its_usage_type() -> None:
    peers = [{"meter_id": f"r{i}", "day": day(2), "consumption": 100.0} for i in range(5)]
    frame = daily(
        *peers,
        {"meter_id": "big", "day": day(2), "consumption": 301.0},
        {"meter_id": "n1", "day": day(2), "consumption": 9_000.0, "usage_type": "Non-Residential"},  # alone
    )
    out = problems.high_consumption_usage(frame, T)
    assert records(out, "day", "meter_id", "rule", "severity", "value", "threshold") == [
        (day(2), "big", "HIGH_CONSUMPTION_USAGE", "WARNING", 301.0, 300.0)
    ]
    assert out["reason"].iloc[0] == (
        "301.0 L in the day: 3.0x the median of the 6 Residential meters (100.0 L; limit 3x)"
    )


def test_low_battery_and_high_temperature() -> None:
    frame = daily(
        {"meter_id": "a", "measurement_type": "Battery", "series": "V", "kind": "gauge", "unit": "V", "min": 2.9,
         "consumption": None},
        {"meter_id": "b", "measurement_type": "Battery", "series": "V", "kind": "gauge", "unit": "V", "min": 3.0,
         "consumption": None},
        {"meter_id": "a", "measurement_type": "DeviceTemperature", "series": "T", "kind": "gauge", "unit": "C",
         "max": 50.5, "consumption": None},
        {"meter_id": "b", "measurement_type": "DeviceTemperature", "series": "T", "kind": "gauge", "unit": "C",
         "max": 50.0, "consumption": None},
    )  # fmt: skip
    low = problems.low_battery(frame, T)
    assert records(low, "meter_id", "rule", "severity", "measurement_type", "value", "threshold", "reason") == [
        ("a", "LOW_BATTERY", "CRITICAL", "Battery", 2.9, 3.0,
         "lowest battery reading (in volts, both scales) 2.9 V < 3 V")
    ]  # fmt: skip
    hot = problems.high_temperature(frame, T)
    assert records(hot, "meter_id", "rule", "severity", "value", "threshold", "reason") == [
        ("a", "HIGH_TEMPERATURE", "WARNING", 50.5, 50.0, "highest temperature 50.5 C > 50 C")
    ]


def test_stuck_register_either_way() -> None:
    reg = {"measurement_type": "Pulse1_Total", "series": "T1", "kind": "register", "last_value": 5_000.0}
    frame = daily(
        {"meter_id": "a", **reg, "consumption": 0.0},
        {"meter_id": "a", "consumption": 42.0},  # flow while the register stood still
        {"meter_id": "b", **reg, "consumption": 30.0},
        {"meter_id": "b", "consumption": 0.0},  # the register moved, no flow reported
        {"meter_id": "c", **reg, "consumption": 0.0},
        {"meter_id": "c", "consumption": 0.0},  # nothing used: fine
    )
    out = problems.stuck_register(frame, T)
    assert records(out, "meter_id", "rule", "measurement_type", "series", "value", "reason") == [
        ("a", "STUCK_REGISTER", "Pulse1_Total", "T1", 42.0,
         "register Pulse1_Total stayed at 5,000.0 L all day while Pulse1 recorded 42.0 L"),
        ("b", "STUCK_REGISTER", "Pulse1", "P1", 30.0,
         "Pulse1 recorded no flow all day while register Pulse1_Total advanced 30.0 L"),
    ]  # fmt: skip


def test_negative_steps_and_resets() -> None:
    reg = {"measurement_type": "Pulse1_Total", "series": "T1", "kind": "register"}
    frame = daily(
        {"meter_id": "a", **reg, "negative_steps": 2, "negative_total": -12.0},
        {"meter_id": "b", **reg, "resets": 1},
        {"meter_id": "c", **reg},
    )
    out = problems.register_faults(frame)
    assert records(out, "meter_id", "rule", "severity", "value", "reason") == [
        ("a", "NEGATIVE_STEP", "WARNING", -12.0, "2 negative register step(s) totalling -12.0 L (counted as they are)"),
        ("b", "REGISTER_RESET", "INFO", 1.0,
         "register reset 1 time(s): fell to at most 10% of the previous reading, counted from zero"),
    ]  # fmt: skip


def test_no_data_measures_the_longest_silence_touching_each_day() -> None:
    # days 2 and 3 May in UTC: [0, 24 h) and [24 h, 48 h) relative to a zero at 2 May 00:00
    ends = {day(2): 24 * HOUR, day(3): 48 * HOUR}
    meter_days = pd.DataFrame(
        {
            "meter_id": ["a", "a", "b", "c"],
            "day": [day(1), day(3), day(2), day(2)],
            "first_ms": [-20 * HOUR, 40 * HOUR, 1 * HOUR, 1 * HOUR],
            "last_ms": [-20 * HOUR, 41 * HOUR, 23 * HOUR, 2 * HOUR],
            "max_gap_ms": [np.nan, 60.0 * HOUR, 1.0 * HOUR, 1.0 * HOUR],
        }
    )
    anchors = pd.DataFrame({"meter_id": ["d"], "last_ms": [-60 * HOUR]})
    out = problems.no_data(meter_days, anchors, days=[day(2), day(3)], day_ends=ends, known_until_ms=100 * HOUR, t=T)
    out = out.sort_values(["day", "meter_id"])
    assert records(out, "day", "meter_id", "severity", "value", "threshold") == [
        (day(2), "a", "WARNING", 44.0, 24.0),  # last reading at -20 h, day ends at 24 h
        (day(2), "d", "WARNING", 84.0, 24.0),  # known from daily_stats only
        (day(3), "a", "WARNING", 60.0, 24.0),  # the silence that ended at 40 h
        (day(3), "b", "WARNING", 25.0, 24.0),  # silent since 23 h on the day before
        (day(3), "c", "WARNING", 46.0, 24.0),  # silent since 2 h
        (day(3), "d", "CRITICAL", 108.0, 24.0),  # more than 4 x 24 h
    ]
    assert out["reason"].iloc[0] == "no reading for 44.0 h (more than 24 h)"


def test_no_data_counts_silence_only_up_to_where_the_data_reach() -> None:
    # meter a last read at 10 h on day 2; the fleet's newest reading is b's at 30 h on day 3 (day 3 ends at 48 h)
    meter_days = pd.DataFrame(
        {
            "meter_id": ["a", "b", "b"],
            "day": [day(2), day(2), day(3)],
            "first_ms": [1 * HOUR, 1 * HOUR, 25 * HOUR],
            "last_ms": [10 * HOUR, 23 * HOUR, 30 * HOUR],
            "max_gap_ms": [1.0 * HOUR, 1.0 * HOUR, 1.0 * HOUR],
        }
    )
    anchors = pd.DataFrame(columns=["meter_id", "last_ms"])

    def silent(known_until_ms: int) -> list[tuple[object, ...]]:
        out = problems.no_data(
            meter_days, anchors, days=[day(3)], day_ends={day(3): 48 * HOUR}, known_until_ms=known_until_ms, t=T
        )
        return records(out, "meter_id", "value")

    assert silent(30 * HOUR) == []  # a: 20 h of silence up to the end of the data, under the 24 h limit
    assert silent(100 * HOUR) == [("a", 38.0)]  # data (or the clock) past the day: silent to the day's end


def test_detect_runs_every_rule_in_a_stable_order() -> None:
    reg = {"measurement_type": "Pulse1_Total", "series": "T1", "kind": "register"}
    frame = daily(
        {"meter_id": "b", **reg, "resets": 1}, {"meter_id": "a", **reg, "negative_steps": 1, "negative_total": -1.0}
    )
    empty = pd.DataFrame(columns=["meter_id", "day", "first_ms", "last_ms", "max_gap_ms"])
    out = problems.detect(
        frame, frame.iloc[0:0][["meter_id", "measurement_type", "series", "day", "consumption"]], meter_days=empty,
        meter_anchors=pd.DataFrame(columns=["meter_id", "last_ms"]), days=[day(2)], day_ends={day(2): 0},
        known_until_ms=0, t=T,
    )  # fmt: skip
    assert list(out.columns) == problems.COLUMNS
    assert records(out, "meter_id", "rule") == [("a", "NEGATIVE_STEP"), ("b", "REGISTER_RESET")]


# --- meter metadata ------------------------------------------------------------------------------


def test_meter_metadata_rows_are_written_only_when_they_change() -> None:
    current = pd.DataFrame(
        {"meter_id": ["1", "2"], "meter_type": ["t", "t"], "suburb": ["A", "B"], "postcode": ["1", "2"],
         "usage_type": ["Residential", "Residential"]}
    )  # fmt: skip
    latest = {
        "1": (4, {"meter_type": "t", "suburb": "A", "postcode": "1", "usage_type": "Residential"}),  # unchanged
        "2": (7, None),  # a tombstone
        "3": (9, {"meter_type": "u", "suburb": "C", "postcode": "3", "usage_type": "Non-Residential"}),
    }
    assert changed_rows(current, latest) == [  # version: the record's Kafka offset
        ["2", "t", "B", "2", "Residential", 7, 1],
        ["3", "u", "C", "3", "Non-Residential", 9, 0],
    ]
    enriched = enrich(pd.DataFrame({"meter_id": ["1", "9"]}), current)
    assert enriched.values.tolist() == [
        ["1", "t", "A", "1", "Residential"],
        ["9", "unknown", "unknown", "unknown", "unknown"],
    ]
