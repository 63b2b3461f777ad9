"""End to end on a seeded smart-building simulation with *hopping* windows (10 s every 5 s):
every reading counted, every unique reading in the lake once, each reading in size/slide = 2
windows with exact counts and sums, exactly the injected alerts, late readings kept out of
every window."""

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

START = "2024-05-06T16:00:00+00:00"  # a Monday, 09:00 in Los Angeles: rooms fill up
Building = tuple[MeterPipeline, Expected, dict[str, Any]]


@pytest.fixture(scope="module")
def building(broker: BrokerInfo, tmp_path_factory: pytest.TempPathFactory) -> Building:
    """One simulation (8 rooms x 8 measurements every 500 ms for 5 minutes, every injection) run to idle."""
    out = tmp_path_factory.mktemp("building")
    pipeline = unique_pipeline("smart-building", flink={"parallelism": 1, "checkpointInterval": "2s"})
    manifest = write_manifest(pipeline, out)
    truth = simulate(manifest, out, "--meters", "8", "--duration", "5m", "--seed", "23", "--start", START)
    meterflow("run", "-f", str(manifest), "--until-idle")
    return pipeline, compute(pipeline, out / "records.jsonl", truth), truth


def test_the_windows_hop(building: Building) -> None:
    """The expectation itself: 10 s windows every 5 s put each on-time reading in two windows."""
    pipeline, expected, _ = building
    windows = pipeline.spec.windows
    assert (windows.type, windows.size_ms, windows.slide_ms) == ("hopping", 10_000, 5_000)
    on_time = expected.unique - len(expected.late)
    assert sum(w.readings for w in expected.windows.values()) == 2 * on_time
    starts = {key[3] for key in expected.windows}
    assert all(s.microsecond == 0 and s.second % 5 == 0 for s in starts)


def test_every_record_is_counted(building: Building) -> None:
    pipeline, expected, truth = building
    [(in_total, valid, dlq, on_time, late, duplicates)] = rows(
        pipeline, "SELECT in_total, valid, dlq, on_time, late, duplicates FROM ingest_totals"
    )
    assert in_total == expected.records == truth["counts"]["total_records"]
    assert dlq == sum(expected.dlq_by_reason.values()) == truth["counts"]["malformed"]
    assert duplicates == expected.duplicates == truth["counts"]["duplicate"] > 0
    assert late == len(expected.late) == truth["counts"]["late"] > 0
    assert on_time + late == expected.unique
    assert valid == on_time + late + duplicates


def test_dead_letters_by_reason(building: Building, broker: BrokerInfo) -> None:
    pipeline, expected, truth = building
    letters = dead_letters(pipeline, broker.bootstrap)
    assert Counter(d["reason"] for d in letters) == Counter(expected.dlq_by_reason)
    assert {d["payload"] for d in letters} == {m["payload"] for m in truth["malformed"]}


def test_lake_holds_every_unique_reading_once(building: Building) -> None:
    pipeline, expected, _ = building
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


def test_every_hopping_window_matches(building: Building) -> None:
    pipeline, expected, _ = building
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
        assert (end - key[3]).total_seconds() == 10, key
        assert n == window.readings, key
        assert math.isclose(total, window.total, rel_tol=1e-9, abs_tol=1e-9), key
        assert (lo, hi) == (window.lowest, window.highest), key
        if kinds[key[1]] == "interval":  # motion and energy: consumption is their sum
            assert cons is not None and math.isclose(cons, window.total, rel_tol=1e-9, abs_tol=1e-9), key
        else:
            assert cons is None, key


def test_exactly_the_injected_alerts(building: Building) -> None:
    pipeline, expected, truth = building
    actual = {
        (m, rule, s, at)
        for m, rule, s, at in rows(pipeline, "SELECT meter_id, rule, series, event_time FROM alerts FINAL")
    }
    assert actual == expected.alerts
    # the rooms never reach a threshold on their own: every alert is an injected trigger
    injected = {(t["meter_id"], t["rule"], t["series"]) for t in truth["triggers"]}
    assert {(m, rule, s) for m, rule, s, _ in actual} == injected
    assert len(actual) == len(truth["triggers"])
    assert {rule for _, rule, _, _ in actual} == {r.name for r in pipeline.spec.rules}


def test_alerts_and_windows_are_enriched(building: Building) -> None:
    pipeline, _, truth = building
    unknown = set(truth["unknown_meter_ids"])
    labels = rows(pipeline, "SELECT DISTINCT meter_id, meter_type, suburb, usage_type FROM readings_agg FINAL")
    alert_labels = rows(pipeline, "SELECT DISTINCT meter_id, meter_type, suburb, usage_type FROM alerts FINAL")
    assert {m for m, *_ in labels} >= {f"room_{i}" for i in range(1, 9)}
    for meter, meter_type, suburb, usage in labels + alert_labels:
        if meter in unknown:
            assert (meter_type, suburb, usage) == ("unknown", "unknown", "unknown")
        else:
            assert usage == "Commercial" and meter_type != "unknown" and suburb != "unknown", meter
    assert dict((m, s) for m, _, s, _ in labels)["room_1"] == "Server Room"
