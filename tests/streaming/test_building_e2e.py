"""End to end on a seeded smart-building simulation with *hopping* windows (10 s every 5 s):
every reading counted, every unique reading in the lake once, each reading in size/slide = 2
windows with exact counts and sums, exactly the injected alerts, late readings kept out of
every window."""

from __future__ import annotations

from typing import Any

import pytest

from meterflow.spec import MeterPipeline
from meterflow.stack.broker import BrokerInfo
from tests.conftest import unique_pipeline, write_manifest
from tests.streaming import checks
from tests.streaming.expected import ONE_PARTITION, Expected, compute
from tests.streaming.harness import meterflow, rows, simulate

pytestmark = [pytest.mark.integration, pytest.mark.flink]

START = "2024-05-06T16:00:00+00:00"  # a Monday, 09:00 in Los Angeles: rooms fill up
Building = tuple[MeterPipeline, Expected, dict[str, Any]]


@pytest.fixture(scope="module")
def building(broker: BrokerInfo, tmp_path_factory: pytest.TempPathFactory) -> Building:
    """One simulation (8 rooms x 8 measurements every 500 ms for 5 minutes, every injection) run to idle."""
    out = tmp_path_factory.mktemp("building")
    pipeline = unique_pipeline(
        "smart-building", source=ONE_PARTITION, flink={"parallelism": 1, "checkpointInterval": "2s"}
    )
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
    checks.every_record_is_counted(*building)


def test_dead_letters_by_reason(building: Building, broker: BrokerInfo) -> None:
    checks.dead_letters_by_reason(*building, broker.bootstrap)


def test_lake_holds_every_unique_reading_once(building: Building) -> None:
    pipeline, expected, _ = building
    checks.lake_holds_every_unique_reading_once(pipeline, expected)


def test_every_hopping_window_matches(building: Building) -> None:
    pipeline, expected, _ = building
    checks.every_window_matches(pipeline, expected, size_s=10)


def test_exactly_the_injected_alerts(building: Building) -> None:
    checks.exactly_the_injected_alerts(*building)


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
