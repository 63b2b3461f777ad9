"""The pure half of anomaly detection: features, the model and its card, the alert lifecycle,
evaluation, and the store beside a real (SQLite-catalogued, local) Iceberg lake."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import IsolationForest

from meterflow.anomaly.alerts import AnomalyAlerts, OpenAlert, alert_id
from meterflow.anomaly.evaluate import score_windows, truly_anomalous
from meterflow.anomaly.features import FeatureSet
from meterflow.anomaly.model import AnomalyModelError, train
from meterflow.spec import parse_manifest
from meterflow.spec.model import AnomalySpec
from meterflow.stack.endpoints import IcebergLocation
from meterflow_iceberg.catalog import open_catalog
from meterflow_iceberg.models import ModelStore, NewestModel
from meterflow_iceberg.tables import ensure_readings_table

FEATURES = FeatureSet(
    measurements=("temperature", "humidity"), stats=("avg", "max"), ratios=(("temperature", "humidity"),)
)
MIN = 60_000


def _window(meter: str, measurement: str, start: int, avg: float, mx: float) -> dict[str, object]:
    return {
        "meter_id": meter, "measurement_type": measurement, "window_start": start, "window_end": start + MIN,
        "readings": 30, "avg": avg, "min": avg - 1, "max": mx, "stddev": 0.5,
    }  # fmt: skip


def test_samples_are_one_row_per_meter_window_with_every_feature() -> None:
    windows = pd.DataFrame(
        [
            _window("s2", "temperature", 0, 20.0, 21.0),
            _window("s2", "humidity", 0, 50.0, 52.0),
            _window("s1", "temperature", MIN, 30.0, 90.0),
            _window("s1", "humidity", MIN, 40.0, 41.0),
            _window("s1", "temperature", 0, 22.0, 23.0),  # no humidity window: no sample
            _window("s1", "pressure", 0, 1.0, 1.0),  # not a feature
            _window("s3", "temperature", 0, 22.0, 23.0),
            _window("s3", "humidity", 0, 0.0, 0.0),  # a ratio over a mean of 0: no sample
        ]
    )
    samples = FEATURES.samples(windows)
    assert FEATURES.names == [
        "temperature.avg",
        "temperature.max",
        "humidity.avg",
        "humidity.max",
        "temperature/humidity",
    ]
    assert samples.to_dict("records") == [
        {"meter_id": "s1", "window_start": MIN, "window_end": 2 * MIN, "temperature.avg": 30.0, "temperature.max": 90.0,
         "humidity.avg": 40.0, "humidity.max": 41.0, "temperature/humidity": 0.75},
        {"meter_id": "s2", "window_start": 0, "window_end": MIN, "temperature.avg": 20.0, "temperature.max": 21.0,
         "humidity.avg": 50.0, "humidity.max": 52.0, "temperature/humidity": 0.4},
    ]  # fmt: skip
    assert FEATURES.samples(windows.iloc[0:0]).columns.tolist() == [
        "meter_id",
        "window_start",
        "window_end",
        *FEATURES.names,
    ]


def test_feature_set_follows_the_spec() -> None:
    spec = AnomalySpec.model_validate(
        {
            "measurements": ["temperature", "humidity"],
            "ratios": [{"numerator": "temperature", "denominator": "humidity"}],
        }
    )
    assert FeatureSet.of(spec).names == [
        "temperature.avg", "temperature.min", "temperature.max", "temperature.stddev",
        "humidity.avg", "humidity.min", "humidity.max", "humidity.stddev", "temperature/humidity",
    ]  # fmt: skip


def _samples(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = rng.normal(23, 1, n)
    h = rng.normal(55, 3, n)
    return pd.DataFrame(
        {
            "meter_id": [f"s{i % 5}" for i in range(n)],
            "window_start": np.arange(n) * MIN,
            "window_end": np.arange(n) * MIN + MIN,
            "temperature.avg": t,
            "temperature.max": t + 0.5,
            "humidity.avg": h,
            "humidity.max": h + 1,
            "temperature/humidity": t / h,
        }
    )


def test_a_model_scores_as_its_forest_and_records_what_it_learnt_from() -> None:
    samples = _samples(400)
    model = train(
        samples, FEATURES, pipeline="p", version=3, contamination=0.05, trees=50, window_ms=MIN, snapshot_id=42
    )
    matrix = FEATURES.matrix(samples)
    again = IsolationForest(n_estimators=50, contamination=0.05, random_state=0, n_jobs=1).fit(matrix)
    np.testing.assert_array_equal(model.scores(matrix), again.decision_function(matrix))
    assert int((model.scores(matrix) < 0).sum()) == 20  # contamination of the training windows
    card = model.card
    assert (card.version, card.samples, card.snapshot_id, card.features) == (3, 400, 42, FEATURES.names)
    assert (card.trained_from, card.trained_to) == ("1970-01-01T00:00:00.000+00:00", "1970-01-01T06:40:00.000+00:00")
    assert card.offset == again.offset_
    assert card.typical["temperature.avg"][1] == pytest.approx(float(np.median(samples["temperature.avg"])))
    hot = samples.iloc[0].copy()
    hot["temperature.avg"], hot["temperature.max"] = 95.0, 95.0
    hot["temperature/humidity"] = 95.0 / hot["humidity.avg"]
    assert model.scores(FEATURES.matrix(hot.to_frame().T))[0] < 0
    assert model.explain(FEATURES.matrix(hot.to_frame().T))[0].startswith("temperature.avg 95 (trained ")
    with pytest.raises(AnomalyModelError, match="reads 5 features"):
        model.scores(matrix[:, :4])
    with pytest.raises(AnomalyModelError, match="1 complete window"):
        train(samples.iloc[:1], FEATURES, pipeline="p", version=1, contamination=0.1, trees=10, window_ms=MIN,
              snapshot_id=1)  # fmt: skip


def _verdicts(rows: list[tuple[str, int, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"meter_id": m, "window_start": t, "score": s, "anomalous": s < 0, "detail": f"d{t}"} for m, t, s in rows]
    )


def test_anomalous_windows_open_update_and_resolve_one_alert_per_meter() -> None:
    alerts = AnomalyAlerts("ANOMALY", "WARNING")
    out = alerts.judge(
        _verdicts([("a", 0, 0.1), ("a", MIN, -0.05), ("a", 2 * MIN, -0.2), ("a", 3 * MIN, 0.02), ("b", 0, 0.3)])
    )
    opened = alert_id("a", "ANOMALY", MIN)
    assert [(r["transition"], r["alert_id"], r["at"], r["breaches"], r["transition_value"], r["peak_value"],
             r["state"], r["resolved_at"], r["detail"], r["version"]) for r in out] == [
        ("OPENED", opened, "1970-01-01 00:01:00.000", 1, -0.05, -0.05, "OPEN", None, "d60000", MIN * 4),
        ("UPDATED", opened, "1970-01-01 00:02:00.000", 2, -0.2, -0.2, "OPEN", None, "d120000", 2 * MIN * 4 + 1),
        ("RESOLVED", opened, "1970-01-01 00:03:00.000", 2, 0.02, -0.2, "RESOLVED", "1970-01-01 00:03:00.000",
         "d120000", 3 * MIN * 4 + 2),
    ]  # fmt: skip
    assert {(r["kind"], r["rule"], r["event_time"], r["value"]) for r in out} == {
        ("anomaly", "ANOMALY", "1970-01-01 00:01:00.000", -0.05)
    }
    assert alerts.open == {}


def test_an_open_alert_read_back_goes_on_and_a_window_judged_twice_changes_nothing() -> None:
    before = OpenAlert("x1", MIN, MIN, 1, -0.1, -0.1, -0.1, "d")
    alerts = AnomalyAlerts("ANOMALY", "CRITICAL", {"a": before})
    assert alerts.judge(_verdicts([("a", MIN, -0.3)])) == []  # already judged
    out = alerts.judge(_verdicts([("a", 2 * MIN, -0.3), ("a", 3 * MIN, 0.1)]))
    assert [(r["transition"], r["alert_id"], r["breaches"], r["severity"]) for r in out] == [
        ("UPDATED", "x1", 2, "CRITICAL"),
        ("RESOLVED", "x1", 2, "CRITICAL"),
    ]


def test_window_verdicts_are_scored_against_the_anomalous_instants_they_hold() -> None:
    windows = pd.DataFrame(
        {
            "meter_id": ["a", "a", "a", "b"],
            "window_start": [0, MIN, 2 * MIN, 0],
            "window_end": [MIN, 2 * MIN, 3 * MIN, MIN],
        }
    )
    truth = truly_anomalous(windows, [("a", MIN), ("a", MIN + 5), ("b", MIN), ("c", 0)])
    assert truth.tolist() == [False, True, False, False]
    result = score_windows(np.array([True, True, False, False]), truth)
    assert (result.true_positives, result.false_positives, result.false_negatives, result.true_negatives) == (
        1,
        1,
        0,
        2,
    )
    assert (result.precision, result.recall, result.accuracy) == (0.5, 1.0, 0.75)
    assert result.f1 == pytest.approx(2 / 3)


def test_models_are_kept_versioned_beside_the_lake(tmp_path: Path) -> None:
    location = IcebergLocation(
        catalog_name="meterflow", catalog_uri=f"sqlite:///{tmp_path}/catalog.db", warehouse=f"file://{tmp_path}/lake"
    )
    table = ensure_readings_table(open_catalog(location), "plant")
    store = ModelStore(table)
    assert (store.cards(), store.load(), store.next_version()) == ([], None, 1)
    newest = NewestModel(store, recheck_s=0)
    assert newest() is None
    samples = _samples(100)
    first = train(samples, FEATURES, pipeline="p", version=1, contamination=0.1, trees=10, window_ms=MIN, snapshot_id=7)
    assert store.save(first) == f"file://{tmp_path}/lake/plant/anomaly-models/v1"
    assert (tmp_path / "lake/plant/anomaly-models/v1/model.joblib").is_file()
    second = train(samples, FEATURES, pipeline="p", version=store.next_version(), contamination=0.2, trees=10,
                   window_ms=MIN, snapshot_id=8)  # fmt: skip
    store.save(second)
    assert [c.version for c in store.cards()] == [1, 2]
    loaded = store.load()
    assert loaded is not None and loaded.card == second.card
    np.testing.assert_array_equal(loaded.scores(FEATURES.matrix(samples)), second.scores(FEATURES.matrix(samples)))
    one = store.load(1)
    assert one is not None and one.card.contamination == 0.1
    got = newest()
    assert got is not None and got.card.version == 2
    with pytest.raises(AnomalyModelError, match=r"no model v9 .* there are v1, v2"):
        store.load(9)
    with pytest.raises(AnomalyModelError, match="v2 exists"):
        store.save(second)
    assert store.drop() == 2  # the lake is dropped: its models go with it
    assert (store.cards(), newest.__class__(store)()) == ([], None)
    assert not (tmp_path / "lake/plant/anomaly-models/v1/model.joblib").exists()


MANIFEST = """
apiVersion: meterflow.io/v1alpha1
kind: MeterPipeline
metadata: {name: plant}
spec:
  measurements:
    - {name: temperature, series: sensor, unit: C, kind: gauge}
    - {name: humidity, series: sensor, unit: "%", kind: gauge}
    - {name: power, series: a, unit: W, kind: power}
    - {name: power, series: b, unit: W, kind: power}
  windows: {type: tumbling, size: 1m}
  rules:
    - {name: HOT, measurement: temperature, condition: ">", threshold: 60}
"""


@pytest.mark.parametrize(
    ("anomalies", "windows", "message"),
    [
        ({"measurements": ["pressure"]}, None, "anomalies.measurements\\[0\\]: 'pressure' is not a measurement"),
        ({"measurements": ["power"]}, None, "power has series \\['a', 'b'\\]; a feature measurement has one series"),
        ({"measurements": ["temperature"], "ratios": [{"numerator": "temperature", "denominator": "humidity"}]}, None,
         "ratios\\[0\\].denominator: 'humidity' is not one of anomalies.measurements"),
        ({"measurements": ["temperature"], "rule": "HOT"}, None, "anomalies.rule: HOT is also a rule's name"),
        ({"measurements": ["temperature"]}, {"type": "hopping", "size": "2m", "slide": "1m"},
         "anomaly detection scores tumbling windows"),
        ({"measurements": ["temperature"], "contamination": 0.7}, None, "contamination"),
    ],
)  # fmt: skip
def test_a_bad_anomalies_section_is_refused_naming_the_field(
    anomalies: dict[str, object], windows: dict[str, object] | None, message: str
) -> None:
    import yaml

    doc = yaml.safe_load(MANIFEST)
    doc["spec"]["anomalies"] = anomalies
    if windows:
        doc["spec"]["windows"] = windows
    with pytest.raises(Exception, match=message):
        parse_manifest(doc)
