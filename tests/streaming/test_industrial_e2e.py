"""End to end on seed 004's industrial sensors (5 sensors, temperature and humidity every 2 s, for
10 minutes, every injection): every reading counted, every unique reading in the lake once, every
1-minute window exact, and the threshold alerts exactly the truth's anomaly episodes and triggers —
one alert per run of consecutive breaching readings, opened at its first, with a breach for each."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import pytest

from meterflow.spec import MeterPipeline
from meterflow.spec.durations import to_millis
from meterflow.stack.broker import BrokerInfo
from simulator.truth import anomalous_readings, score
from tests.conftest import unique_pipeline, write_manifest
from tests.streaming import checks
from tests.streaming.expected import ONE_PARTITION, Expected, compute, instant
from tests.streaming.harness import meterflow, rows, simulate

pytestmark = [pytest.mark.integration, pytest.mark.flink]

START = "2024-05-06T08:00:00+00:00"
Industrial = tuple[MeterPipeline, Expected, dict[str, Any]]


@pytest.fixture(scope="module")
def industrial(broker: BrokerInfo, tmp_path_factory: pytest.TempPathFactory) -> Industrial:
    """One simulation (5 sensors x 2 measurements every 2 s for 10 minutes, every injection) run to idle."""
    out = tmp_path_factory.mktemp("industrial")
    pipeline = unique_pipeline(
        "industrial-sensors", source=ONE_PARTITION, flink={"parallelism": 1, "checkpointInterval": "2s"}
    )
    manifest = write_manifest(pipeline, out)
    truth = simulate(manifest, out, "--duration", "10m", "--seed", "4", "--start", START)
    meterflow("run", "-f", str(manifest), "--until-idle")
    return pipeline, compute(pipeline, out / "records.jsonl", truth), truth


def alerts_of_the_truth(
    pipeline: MeterPipeline, truth: dict[str, Any]
) -> dict[tuple[str, str, str, datetime], list[float]]:
    """Each threshold alert the truth implies, by key (meter, rule, series, opened at): the values of
    its breaching readings. A breaching reading is an anomaly or a trigger firing the rule; readings
    one interval apart (no normal reading between) make one alert."""
    interval = {m.name: to_millis(m.interval) for m in pipeline.spec.measurements}
    breaches: dict[tuple[str, str, str], list[tuple[datetime, float]]] = defaultdict(list)
    for row in [*truth["anomalies"], *truth["triggers"]]:
        for rule in row["rules"]:
            breaches[(row["meter_id"], rule, row["series"], row["measurement"])].append(
                (instant(row["timestamp"]), row["value"])
            )
    out: dict[tuple[str, str, str, datetime], list[float]] = {}
    for (meter, rule, series, name), found in breaches.items():
        current: list[float] = []
        previous: datetime | None = None
        for at, value in sorted(found):
            if previous is None or (at - previous).total_seconds() * 1000 != interval[name]:
                current = out[(meter, rule, series, at)] = []
            current.append(value)
            previous = at
    return out


def test_the_run_has_anomalies_and_triggers(industrial: Industrial) -> None:
    _, _, truth = industrial
    counts = truth["counts"]
    assert counts["anomaly"] == len(truth["anomalies"]) > 0
    assert {a["measurement"] for a in truth["anomalies"]} == {"temperature", "humidity"}
    assert {t["rule"] for t in truth["triggers"]} == {"HIGH_TEMPERATURE", "LOW_HUMIDITY"}


def test_every_record_is_counted(industrial: Industrial) -> None:
    checks.every_record_is_counted(*industrial)


def test_dead_letters_by_reason(industrial: Industrial, broker: BrokerInfo) -> None:
    checks.dead_letters_by_reason(*industrial, broker.bootstrap)


def test_lake_holds_every_unique_reading_once(industrial: Industrial) -> None:
    pipeline, expected, _ = industrial
    checks.lake_holds_every_unique_reading_once(pipeline, expected)


def test_every_window_matches(industrial: Industrial) -> None:
    pipeline, expected, _ = industrial
    checks.every_window_matches(pipeline, expected, size_s=60)


def test_the_alerts_are_exactly_the_anomalies_and_triggers_of_the_truth(industrial: Industrial) -> None:
    pipeline, expected, truth = industrial
    actual = {
        (m, rule, s, at): (breaches, peak, state)
        for m, rule, s, at, breaches, peak, state in rows(
            pipeline, "SELECT meter_id, rule, series, event_time, breaches, peak_value, state FROM alerts FINAL"
        )
    }
    assert set(actual) == expected.alerts  # the independent model of the records agrees
    implied = alerts_of_the_truth(pipeline, truth)
    thresholds = {r.name for r in pipeline.spec.threshold_rules()}
    actual = {key: value for key, value in actual.items() if key[1] in thresholds}
    assert set(actual) == set(implied)
    lower_is_worse = {r.name for r in pipeline.spec.threshold_rules() if r.condition in ("<", "<=")}
    for key, values in implied.items():
        worst = min(values) if key[1] in lower_is_worse else max(values)
        assert actual[key] == (len(values), worst, "RESOLVED"), key
    anomalous = sum(len(a["rules"]) for a in truth["anomalies"])
    assert sum(b for b, _, _ in actual.values()) == anomalous + sum(len(t["rules"]) for t in truth["triggers"])


def test_alerts_and_windows_are_enriched(industrial: Industrial) -> None:
    pipeline, _, truth = industrial
    unknown = set(truth["unknown_meter_ids"])
    labels = rows(pipeline, "SELECT DISTINCT meter_id, meter_type, suburb, usage_type FROM readings_agg FINAL")
    alert_labels = rows(pipeline, "SELECT DISTINCT meter_id, meter_type, suburb, usage_type FROM alerts FINAL")
    assert {m for m, *_ in labels} >= {f"sensor_00{i}" for i in range(1, 6)}
    for meter, meter_type, suburb, usage in labels + alert_labels:
        if meter in unknown:
            assert (meter_type, suburb, usage) == ("unknown", "unknown", "unknown")
        else:
            assert (meter_type, usage) == ("industrial_sensor", "Industrial") and suburb != "unknown", meter
    assert dict((m, s) for m, _, s, _ in labels)["sensor_001"] == "Furnace Line"


def test_outlier_alarms_flag_the_readings_the_model_flags_and_find_the_anomalies(industrial: Industrial) -> None:
    """Seed 001's outlier rules: every flagged reading (an OPENED or UPDATED transition of an outlier
    alert) is one the independent model flags, and together they find the injected anomalies."""
    pipeline, expected, truth = industrial
    outlier_rules = {r.name: r.measurement for r in pipeline.spec.rules if r.kind == "outlier"}
    flagged = set(
        rows(
            pipeline,
            "SELECT meter_id, rule, series, at FROM alert_events FINAL "
            f"WHERE rule IN ({', '.join(repr(r) for r in outlier_rules)}) AND transition IN ('OPENED', 'UPDATED')",
        )
    )
    assert flagged == expected.outliers and flagged
    readings = {
        (m, outlier_rules[rule], s, int(at.replace(tzinfo=UTC).timestamp() * 1000)) for m, rule, s, at in flagged
    }
    result = score(truth, readings)
    # a window fills in the first minute (30 readings): an anomaly before then is not judged; every later
    # one is flagged, and nothing else is
    start = int(datetime.fromisoformat(START).timestamp() * 1000)
    missed = anomalous_readings(truth) - readings
    assert missed and all(at - start < 60_000 for *_, at in missed), sorted(missed)
    assert result.false_positives == 0 and result.true_positives == len(readings), result
