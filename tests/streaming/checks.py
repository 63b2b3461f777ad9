"""Assertions every end-to-end pipeline test makes, against expectations computed by
:mod:`tests.streaming.expected` from the simulator's own record file (never the job's code)."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from meterflow.spec import MeterPipeline
from tests.streaming.expected import Expected, instant
from tests.streaming.harness import dead_letters, lake, rows

LakeKey = tuple[Any, Any, Any, Any]


def lake_keys(pipeline: MeterPipeline) -> tuple[list[LakeKey], set[LakeKey]]:
    """Every lake row's (meter, measurement, series, event time), and the keys of the late ones."""
    table = lake(pipeline)
    keys = list(
        zip(
            table["meter_id"].to_pylist(),
            table["measurement_type"].to_pylist(),
            table["series"].to_pylist(),
            table["event_time"].to_pylist(),
            strict=True,
        )
    )
    late = {k for k, flag in zip(keys, table["late"].to_pylist(), strict=True) if flag}
    return keys, late


def every_record_is_counted(pipeline: MeterPipeline, expected: Expected, truth: dict[str, Any]) -> None:
    [(in_total, valid, dlq, on_time, late, duplicates)] = rows(
        pipeline, "SELECT in_total, valid, dlq, on_time, late, duplicates FROM ingest_totals"
    )
    assert in_total == expected.records == truth["counts"]["total_records"]
    assert dlq == sum(expected.dlq_by_reason.values()) == truth["counts"]["malformed"]
    assert duplicates == expected.duplicates == truth["counts"]["duplicate"] > 0
    assert late == len(expected.late) == truth["counts"]["late"] > 0
    assert on_time + late == expected.unique
    assert valid == on_time + late + duplicates


def dead_letters_by_reason(pipeline: MeterPipeline, expected: Expected, truth: dict[str, Any], bootstrap: str) -> None:
    letters = dead_letters(pipeline, bootstrap)
    assert Counter(d["reason"] for d in letters) == Counter(expected.dlq_by_reason)
    assert {d["payload"] for d in letters} == {m["payload"] for m in truth["malformed"]}


def lake_holds_every_unique_reading_once(pipeline: MeterPipeline, expected: Expected) -> None:
    keys, late = lake_keys(pipeline)
    assert len(keys) == expected.unique
    assert len(set(keys)) == len(keys)  # no duplicate rows
    assert {(m, t, at.replace(tzinfo=None)) for m, t, _, at in late} == {
        (r["meter_id"], r["measurement_type"], r["at"]) for r in expected.late
    }


def every_window_matches(pipeline: MeterPipeline, expected: Expected, size_s: float) -> None:
    """Each window's end, count, sum, min, max and consumption (the sum for interval measurements, the
    energy for power (value x interval hours),
    the register steps for registers, NULL for gauges)."""
    actual = {
        (m, t, s, ws): (we, n, total, lo, hi, cons)
        for m, t, s, ws, we, n, total, lo, hi, cons in rows(
            pipeline,
            "SELECT meter_id, measurement_type, series, window_start, window_end, readings, sum, min, max, "
            "consumption FROM readings_agg FINAL",
        )
    }
    assert set(actual) == set(expected.windows)
    for key, window in expected.windows.items():
        end, n, total, lo, hi, cons = actual[key]
        assert (end - key[3]).total_seconds() == size_s, key
        assert n == window.readings, key
        assert math.isclose(total, window.total, rel_tol=1e-9, abs_tol=1e-9), key
        assert (lo, hi) == (window.lowest, window.highest), key
        if window.consumption is None:
            assert cons is None, key
        else:
            assert cons is not None and math.isclose(cons, window.consumption, rel_tol=1e-9, abs_tol=1e-9), key


def exactly_the_injected_alerts(pipeline: MeterPipeline, expected: Expected, truth: dict[str, Any]) -> None:
    """For profiles whose meters never reach a threshold on their own: every alert is the model's
    (tests/streaming/expected.py), and every threshold alert opened at an injected trigger — one
    alert a trigger, unless a rule's clearThreshold kept an earlier one open (then it updates it)."""
    actual = {
        (m, rule, s, at)
        for m, rule, s, at in rows(pipeline, "SELECT meter_id, rule, series, event_time FROM alerts FINAL")
    }
    assert actual == expected.alerts
    thresholds = {r.name for r in pipeline.spec.threshold_rules()}
    opened = {key for key in actual if key[1] in thresholds}
    triggers = {
        (t["meter_id"], rule, t["series"], instant(t["timestamp"])) for t in truth["triggers"] for rule in t["rules"]
    }
    assert opened <= triggers
    assert {(m, rule, s) for m, rule, s, _ in opened} == {(m, rule, s) for m, rule, s, _ in triggers}
    if not any(r.clear_threshold is not None for r in pipeline.spec.threshold_rules()):
        assert opened == triggers
    assert {rule for _, rule, _, _ in opened} == thresholds
