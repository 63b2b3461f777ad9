"""End to end on seed 004's industrial sensors (5 sensors, temperature and humidity every 2 s, for
10 minutes, every injection): every reading counted, every unique reading in the lake once, every
1-minute window exact, and the threshold alerts exactly the truth's anomaly episodes and triggers —
one alert per run of consecutive breaching readings, opened at its first, with a breach for each.

Then seed 004's Isolation Forest: a model trained on those 10 minutes of the lake, a second run of
10 minutes apart from training scored as its windows close and again by the batch, both equal to
the trained forest on windows computed here from the records, the anomaly alerts following the
lifecycle, and ``meterflow anomalies evaluate`` on the held-apart run."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import numpy as np
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


# --- seed 004's Isolation Forest --------------------------------------------------------------

SECOND = "2024-05-06T08:10:00+00:00"
Anomalies = dict[str, Any]


@pytest.fixture(scope="module")
def anomalies(industrial: Industrial, tmp_path_factory: pytest.TempPathFactory) -> Anomalies:
    """A model trained on the first run's lake, a second run apart from training (seed 5, the next
    10 minutes) scored by the speed layer, then the day re-scored by the batch."""
    pipeline, first, _ = industrial
    out = tmp_path_factory.mktemp("industrial-second")
    manifest = write_manifest(pipeline, out)
    trained = meterflow("anomalies", "train", "-f", str(manifest)).stdout
    truth = simulate(manifest, out, "--duration", "10m", "--seed", "5", "--start", SECOND)
    meterflow("run", "-f", str(manifest), "--until-idle")
    query = (
        "SELECT meter_id, toUnixTimestamp64Milli(window_start) AS s, score, anomalous, layer, model_version, version "
        "FROM anomalies FINAL ORDER BY meter_id, s"
    )
    speed = rows(pipeline, query)
    events = rows(
        pipeline,
        "SELECT meter_id, transition, toUnixTimestamp64Milli(at), breaches, alert_id FROM alert_events FINAL "
        "WHERE kind = 'anomaly' ORDER BY meter_id, at",
    )
    batch = meterflow("batch", "-f", str(manifest), "--from", "2024-05-06", "--to", "2024-05-06").stdout
    evaluated = meterflow(
        "anomalies", "evaluate", "-f", str(manifest), "--truth", str(out / "truth.json"), "--layer", "batch", "--json"
    ).stdout
    second = compute(pipeline, out / "records.jsonl", truth)
    return {
        "manifest": manifest, "trained": trained, "truth": truth, "speed": speed, "events": events,
        "batch_output": batch, "batch": rows(pipeline, query), "evaluated": json.loads(evaluated),
        "windows": {**first.windows, **second.windows},
    }  # fmt: skip


def _forest(pipeline: MeterPipeline) -> Any:
    from meterflow.spec import names_for
    from meterflow.stack.endpoints import iceberg_location
    from meterflow_iceberg.catalog import open_catalog
    from meterflow_iceberg.models import ModelStore
    from meterflow_iceberg.tables import ensure_readings_table

    table = ensure_readings_table(open_catalog(iceberg_location(pipeline)), names_for(pipeline).iceberg_namespace)
    model = ModelStore(table).load(1)
    assert model is not None
    return model


def expected_scores(pipeline: MeterPipeline, windows: dict[Any, Any]) -> dict[tuple[str, int], float]:
    """Every complete sensor-minute's score by the trained forest, on features computed here from the
    records (``expected.py``'s windows), by (meter, window start ms)."""
    spec = pipeline.spec.anomalies
    assert spec is not None
    model = _forest(pipeline)
    features: dict[tuple[str, int], dict[str, float]] = defaultdict(dict)
    for (meter, measurement, _, start), w in windows.items():
        if measurement in spec.measurements:
            values = {"min": w.lowest, "max": w.highest, "stddev": w.stddev, "avg": w.total / w.readings}
            key = (meter, int(start.replace(tzinfo=UTC).timestamp() * 1000))
            features[key].update({f"{measurement}.{stat}": values[stat] for stat in spec.stats})
    complete = {k: f for k, f in features.items() if len(f) == len(model.card.features)}
    keys = sorted(complete)
    matrix = np.array([[complete[k][name] for name in model.card.features] for k in keys])
    return dict(zip(keys, model.forest.decision_function(matrix).tolist(), strict=True))


def test_the_model_is_trained_on_the_first_run_and_recorded(industrial: Industrial, anomalies: Anomalies) -> None:
    pipeline, first, _ = industrial
    model = _forest(pipeline)
    card = model.card
    measured: dict[tuple[str, datetime], set[str]] = defaultdict(set)
    for m, name, _, s in first.windows:
        measured[(m, s)].add(name)
    complete = [k for k, names in measured.items() if names >= {"temperature", "humidity"}]
    # 5 sensors x 10 minutes; an unknown meter's stray reading makes no complete minute
    assert card.samples == len(complete) == 50 < len(measured)
    assert (card.trained_from, card.trained_to) == ("2024-05-06T08:00:00.000+00:00", "2024-05-06T08:10:00.000+00:00")
    assert card.features == [f"{m}.{s}" for m in ("temperature", "humidity") for s in ("min", "max", "stddev")]
    assert (card.contamination, card.trees, card.window_ms) == (0.2, 100, 60_000)
    assert f"anomaly model v1 of {pipeline.name}: 50 windows" in " ".join(anomalies["trained"].split())
    listed = " ".join(meterflow("anomalies", "models", "-f", str(anomalies["manifest"])).stdout.split())
    assert f"{card.snapshot_id}" in listed and "0.2" in listed


def test_the_speed_layer_scores_every_window_as_the_trained_forest_does(
    industrial: Industrial, anomalies: Anomalies
) -> None:
    pipeline = industrial[0]
    expected = expected_scores(pipeline, anomalies["windows"])
    speed = {
        (m, s): (value, flagged, layer, v, version) for m, s, value, flagged, layer, v, version in anomalies["speed"]
    }
    assert set(speed) == set(expected) and len(expected) == 100  # both runs: the first is scored once a model exists
    for key, expected_score in expected.items():
        assert speed[key][0] == pytest.approx(expected_score, abs=1e-9), key
        assert speed[key][1:] == (int(expected_score < 0), "speed", 1, 2), key
    assert 0 < sum(flagged for _, flagged, *_ in speed.values()) < len(speed)


def test_the_batch_rescores_the_day_from_the_lake_alike(industrial: Industrial, anomalies: Anomalies) -> None:
    expected = expected_scores(industrial[0], anomalies["windows"])
    batch = {(m, s): (value, flagged, layer, version) for m, s, value, flagged, layer, _, version in anomalies["batch"]}
    assert set(batch) == set(expected)
    for key, expected_score in expected.items():
        assert batch[key][0] == pytest.approx(expected_score, abs=1e-9), key
        assert batch[key][1:] == (int(expected_score < 0), "batch", 3), key
    flagged = sum(f for _, f, _, _ in batch.values())
    assert f"100 windows scored by anomaly model v1 ({flagged} anomalous" in " ".join(anomalies["batch_output"].split())


def test_anomalous_windows_raise_alerts_that_follow_the_lifecycle(anomalies: Anomalies) -> None:
    """Per meter, in window order: a run of anomalous minutes is one alert, opened at its first,
    updated at each further one, resolved at the next normal minute."""
    verdicts: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for m, s, _, flagged, *_ in anomalies["speed"]:
        verdicts[m].append((s, flagged))
    implied = []
    for meter, minutes in sorted(verdicts.items()):
        breaches = 0
        for start, flagged in minutes:
            if flagged:
                breaches += 1
                implied.append((meter, "OPENED" if breaches == 1 else "UPDATED", start, breaches))
            elif breaches:
                implied.append((meter, "RESOLVED", start, breaches))
                breaches = 0
    actual = [(m, t, at, b) for m, t, at, b, _ in anomalies["events"]]
    assert sorted(actual) == sorted(implied) and implied
    opened = {a for m, t, _, _, a in anomalies["events"] if t == "OPENED"}
    assert {a for *_, a in anomalies["events"]} == opened  # every transition belongs to an opened alert


def test_evaluate_scores_the_held_apart_run_against_its_truth(anomalies: Anomalies) -> None:
    """Precision, recall and F1 of the second run's minutes (never trained on), recomputed here: a
    minute is anomalous when one of its sensor's anomalous readings (injected or a trigger) is in it."""
    truth, result = anomalies["truth"], anomalies["evaluated"]
    bad = {
        (a["meter_id"], instant(a["timestamp"]).replace(second=0)) for a in [*truth["anomalies"], *truth["triggers"]]
    }
    start = datetime.fromisoformat(SECOND).timestamp() * 1000
    held_apart = [(m, s, f) for m, s, _, f, *_ in anomalies["batch"] if s >= start]
    truly = [(m, datetime.fromtimestamp(s / 1000, UTC).replace(tzinfo=None)) in bad for m, s, _ in held_apart]
    tp = sum(t and f for (*_, f), t in zip(held_apart, truly, strict=True))
    fp = sum(f and not t for (*_, f), t in zip(held_apart, truly, strict=True))
    fn = sum(t and not f for (*_, f), t in zip(held_apart, truly, strict=True))
    assert result["windows"] == len(held_apart) == 50
    assert (result["true_positives"], result["false_positives"], result["false_negatives"]) == (tp, fp, fn)
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    assert result["f1"] == round(2 * precision * recall / (precision + recall), 4)
    assert result["f1"] >= 0.8, result  # the detector works on data it never saw
    assert not math.isnan(result["accuracy"])
