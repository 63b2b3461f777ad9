"""End to end on a seeded household-power simulation (UCI-like households, 1-minute tumbling
windows over 1-minute readings): every reading counted, dead letters per reason, every unique
reading in the lake once, every window's count, sum, min, max and consumption exact, exactly the
injected alerts (over- and undervoltage, high load), late readings kept out of every window."""

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

START = "2024-05-06T04:00:00+00:00"  # 06:00 in Paris: the morning peak, breakfast
Household = tuple[MeterPipeline, Expected, dict[str, Any]]


@pytest.fixture(scope="module")
def household(broker: BrokerInfo, tmp_path_factory: pytest.TempPathFactory) -> Household:
    """One simulation (6 households x 7 measurements every minute for 6 hours, every injection) run to idle."""
    out = tmp_path_factory.mktemp("household")
    pipeline = unique_pipeline(
        "household-power", source=ONE_PARTITION, flink={"parallelism": 1, "checkpointInterval": "2s"}
    )
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
    checks.every_record_is_counted(*household)


def test_dead_letters_by_reason(household: Household, broker: BrokerInfo) -> None:
    checks.dead_letters_by_reason(*household, broker.bootstrap)


def test_lake_holds_every_unique_reading_once(household: Household) -> None:
    pipeline, expected, _ = household
    checks.lake_holds_every_unique_reading_once(pipeline, expected)


def test_every_window_matches(household: Household) -> None:
    pipeline, expected, _ = household
    checks.every_window_matches(pipeline, expected, size_s=60)


def test_exactly_the_injected_alerts(household: Household) -> None:
    checks.exactly_the_injected_alerts(*household)


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
