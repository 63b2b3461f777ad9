"""End to end on a seeded household-power simulation (UCI-like households, 1-minute tumbling
windows over 1-minute readings): every reading counted, dead letters per reason, every unique
reading in the lake once, every window's count, sum, min, max and consumption exact, exactly the
injected alerts (over- and undervoltage, high load), late readings kept out of every window."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import pytest

from meterflow.spec import MeterPipeline
from meterflow.stack.broker import BrokerInfo
from tests.conftest import unique_pipeline, write_manifest
from tests.streaming.expected import Expected, compute
from tests.streaming.harness import dead_letters, lake, meterflow, rows, simulate

pytestmark = [pytest.mark.integration, pytest.mark.flink]

START = "2024-05-06T04:00:00+00:00"  # 06:00 in Paris: the morning peak, breakfast
Household = tuple[MeterPipeline, Expected, dict[str, Any]]


@pytest.fixture(scope="module")
def household(broker: BrokerInfo, tmp_path_factory: pytest.TempPathFactory) -> Household:
    """One simulation (6 households x 7 measurements every minute for 6 hours, every injection) run to idle."""
    out = tmp_path_factory.mktemp("household")
    pipeline = unique_pipeline("household-power", flink={"parallelism": 1, "checkpointInterval": "2s"})
    manifest = write_manifest(pipeline, out)
    truth = simulate(manifest, out, "--meters", "6", "--duration", "6h", "--seed", "31", "--start", START)
    meterflow("run", "-f", str(manifest), "--until-idle")
    return pipeline, compute(pipeline, out / "records.jsonl", truth), truth


def test_the_windows_are_minutes(household: Household) -> None:
    """The expectation itself: 1-minute tumbling windows over 1-minute readings hold one reading
    per known meter and measurement (late readings stay out)."""
    pipeline, expected, truth = household
    windows = pipeline.spec.windows
    assert (windows.type, windows.size_ms, windows.slide_ms) == ("tumbling", 60_000, 60_000)
    assert sum(w.readings for w in expected.windows.values()) == expected.unique - len(expected.late)
    assert all(k[3].second == 0 and k[3].microsecond == 0 for k in expected.windows)
    unknown = set(truth["unknown_meter_ids"])
    assert {w.readings for k, w in expected.windows.items() if k[0] not in unknown} == {1}


def test_every_record_is_counted(household: Household) -> None:
    pipeline, expected, truth = household
    [(in_total, valid, dlq, on_time, late, duplicates)] = rows(
        pipeline, "SELECT in_total, valid, dlq, on_time, late, duplicates FROM ingest_totals"
    )
    assert in_total == expected.records == truth["counts"]["total_records"]
    assert dlq == sum(expected.dlq_by_reason.values()) == truth["counts"]["malformed"]
    assert duplicates == expected.duplicates == truth["counts"]["duplicate"] > 0
    assert late == len(expected.late) == truth["counts"]["late"] > 0
    assert on_time + late == expected.unique
    assert valid == on_time + late + duplicates


def test_dead_letters_by_reason(household: Household, broker: BrokerInfo) -> None:
    pipeline, expected, truth = household
    letters = dead_letters(pipeline, broker.bootstrap)
    assert Counter(d["reason"] for d in letters) == Counter(expected.dlq_by_reason)
    assert {d["payload"] for d in letters} == {m["payload"] for m in truth["malformed"]}


def test_lake_holds_every_unique_reading_once(household: Household) -> None:
    pipeline, expected, _ = household
    table = lake(pipeline)
    assert table.num_rows == expected.unique
    keys = set(
        zip(
            table["meter_id"].to_pylist(),
            table["measurement_type"].to_pylist(),
            table["series"].to_pylist(),
            table["event_time"].to_pylist(),
            strict=True,
        )
    )
    assert len(keys) == table.num_rows
    late_rows = {
        (r["meter_id"], r["measurement_type"], r["event_time"].replace(tzinfo=None))
        for r in table.to_pylist()
        if r["late"]
    }
    assert late_rows == {(r["meter_id"], r["measurement_type"], r["at"]) for r in expected.late}


def test_every_window_matches(household: Household) -> None:
    pipeline, expected, _ = household
    actual = {
        (m, t, s, ws): (we, n, total, lo, hi, cons)
        for m, t, s, ws, we, n, total, lo, hi, cons in rows(
            pipeline,
            "SELECT meter_id, measurement_type, series, window_start, window_end, readings, sum, min, max, "
            "consumption FROM readings_agg FINAL",
        )
    }
    assert set(actual) == set(expected.windows)
    kinds = {m.name: m.kind for m in pipeline.spec.measurements}
    for key, window in expected.windows.items():
        end, n, total, lo, hi, cons = actual[key]
        assert (end - key[3]).total_seconds() == 60, key
        assert n == window.readings, key
        assert math.isclose(total, window.total, rel_tol=1e-9, abs_tol=1e-9), key
        assert (lo, hi) == (window.lowest, window.highest), key
        if kinds[key[1]] == "interval":  # the sub-meterings: consumption is their sum (Wh)
            assert cons is not None and math.isclose(cons, window.total, rel_tol=1e-9, abs_tol=1e-9), key
        else:
            assert cons is None, key


def test_exactly_the_injected_alerts(household: Household) -> None:
    pipeline, expected, truth = household
    actual = {
        (m, rule, s, at)
        for m, rule, s, at in rows(pipeline, "SELECT meter_id, rule, series, event_time FROM alerts FINAL")
    }
    assert actual == expected.alerts
    # the households never reach a threshold on their own: every alert is an injected trigger
    injected = {(t["meter_id"], t["rule"], t["series"]) for t in truth["triggers"]}
    assert {(m, rule, s) for m, rule, s, _ in actual} == injected
    assert len(actual) == len(truth["triggers"])
    assert {rule for _, rule, _, _ in actual} == {r.name for r in pipeline.spec.rules}


def test_alerts_and_windows_are_enriched(household: Household) -> None:
    pipeline, _, truth = household
    unknown = set(truth["unknown_meter_ids"])
    assert unknown, "the simulation injected no meter without metadata"
    labels = rows(pipeline, "SELECT DISTINCT meter_id, meter_type, postcode, usage_type FROM readings_agg FINAL")
    alert_labels = rows(pipeline, "SELECT DISTINCT meter_id, meter_type, postcode, usage_type FROM alerts FINAL")
    assert {m for m, *_ in labels} >= {f"household-{i}" for i in range(1, 7)}
    for meter, meter_type, postcode, usage in labels + alert_labels:
        if meter in unknown:
            assert (meter_type, postcode, usage) == ("unknown", "unknown", "unknown"), meter
        else:
            assert (meter_type, postcode, usage) == ("household", "92330", "Residential"), meter
