"""The speed layer's scorer on ClickHouse's real engine (chDB): window rows in ``readings_agg``
become verdicts in ``anomalies`` and alert transitions in the alert tables, equal to the forest's
own scores; a restarted scorer reads back what it judged and which alert is open, and goes on."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from meterflow.anomaly.features import FeatureSet
from meterflow.anomaly.model import AnomalyModel, train
from meterflow.spec import MeterPipeline, names_for, parse_manifest
from meterflow_clickhouse.anomalies import WindowScorer
from meterflow_clickhouse.client import session
from meterflow_clickhouse.schema import ensure_schema

pytestmark = pytest.mark.integration

MIN = 60_000
T0 = 1_714_982_400_000  # 2024-05-06T08:00Z


def _pipeline() -> MeterPipeline:
    return parse_manifest(
        {
            "apiVersion": "meterflow.io/v1alpha1",
            "kind": "MeterPipeline",
            "metadata": {"name": "plant"},
            "spec": {
                "meterKind": "industrial",
                "measurements": [
                    {"name": "temperature", "series": "sensor", "unit": "C", "kind": "gauge", "interval": "2s"},
                    {"name": "humidity", "series": "sensor", "unit": "%", "kind": "gauge", "interval": "2s"},
                ],
                "windows": {"type": "tumbling", "size": "1m", "watermarkDelay": "5s"},
                "anomalies": {"measurements": ["temperature", "humidity"], "stats": ["min", "max"],
                              "contamination": 0.05, "trees": 50, "severity": "CRITICAL"},
            },
        }
    )  # fmt: skip


def _model(features: FeatureSet) -> AnomalyModel:
    rng = np.random.default_rng(3)
    t, h = rng.normal(23, 0.5, 200), rng.normal(55, 1, 200)
    samples = pd.DataFrame(
        {"meter_id": "s", "window_start": np.arange(200) * MIN, "window_end": np.arange(200) * MIN + MIN,
         "temperature.min": t - 0.3, "temperature.max": t + 0.3, "humidity.min": h - 0.5, "humidity.max": h + 0.5}
    )  # fmt: skip
    return train(samples, features, pipeline="plant", version=1, contamination=0.05, trees=50, window_ms=MIN,
                 snapshot_id=1)  # fmt: skip


def _windows(
    client: Any, db: str, minutes: dict[tuple[str, int], tuple[float, float, float]], humidity: bool = True
) -> None:
    """One temperature and one humidity window per (sensor, minute): min and max temperature, min humidity."""
    rows = []
    for (meter, minute), (coolest, hottest, driest) in minutes.items():
        start = datetime.fromtimestamp((T0 + minute * MIN) / 1000, UTC)
        end = datetime.fromtimestamp((T0 + (minute + 1) * MIN) / 1000, UTC)
        for name, low, high in (("temperature", coolest, hottest), ("humidity", driest, 55.5))[: 2 if humidity else 1]:
            rows.append([meter, name, "sensor", "", start, end, 30, 0.0, (low + high) / 2, low, high, 0.1, None,
                         "industrial_sensor", "x", "0", "Industrial", 1])  # fmt: skip
    client.insert(
        f"{db}.readings_agg", rows,
        column_names=["meter_id", "measurement_type", "series", "unit", "window_start", "window_end", "readings",
                      "sum", "avg", "min", "max", "stddev", "consumption", "meter_type", "suburb", "postcode",
                      "usage_type", "version"],
    )  # fmt: skip


def test_windows_are_scored_alerted_and_a_restart_goes_on(tmp_path: Path) -> None:
    pipeline = _pipeline()
    db = names_for(pipeline).clickhouse_database
    features = FeatureSet.of(pipeline.spec.anomalies)  # type: ignore[arg-type]
    model = _model(features)
    normal, hot = (22.7, 23.2, 54.6), (90.0, 95.0, 10.0)
    with session(f"chdb://{tmp_path / 'ch'}") as client:
        ensure_schema(client, pipeline)
        scorer = WindowScorer(pipeline, lambda: model)
        _windows(client, db, {("a", 0): normal, ("a", 1): hot, ("a", 2): hot, ("b", 0): normal, ("b", 1): normal})
        _windows(client, db, {("a", 9): normal}, humidity=False)  # a temperature window alone: no sample
        assert scorer(client) == 5
        assert scorer(client) == 0  # nothing new
        verdicts = client.query(
            f"SELECT meter_id, toUnixTimestamp64Milli(window_start) - {T0}, score, anomalous, layer, model_version, "
            f"version, toString(day), detail FROM {db}.anomalies FINAL ORDER BY meter_id, window_start"
        ).result_rows
        expected = model.forest.decision_function(
            np.array([[*w, 55.5] for w in (normal, hot, hot, normal, normal)])
        )  # fmt: skip
        assert [(m, t, f, layer, v, version, day) for m, t, _, f, layer, v, version, day, _ in verdicts] == [
            ("a", 0, 0, "speed", 1, 2, "2024-05-06"), ("a", MIN, 1, "speed", 1, 2, "2024-05-06"),
            ("a", 2 * MIN, 1, "speed", 1, 2, "2024-05-06"), ("b", 0, 0, "speed", 1, 2, "2024-05-06"),
            ("b", MIN, 0, "speed", 1, 2, "2024-05-06"),
        ]  # fmt: skip
        np.testing.assert_allclose([s for _, _, s, *_ in verdicts], expected, rtol=0, atol=1e-12)
        assert verdicts[1][8].startswith("temperature.max 95 (trained ")  # furthest out of its range
        events = client.query(
            f"SELECT transition, toUnixTimestamp64Milli(at) - {T0}, breaches, severity FROM {db}.alert_events FINAL "
            "WHERE kind = 'anomaly' ORDER BY at"
        ).result_rows
        assert events == [("OPENED", MIN, 1, "CRITICAL"), ("UPDATED", 2 * MIN, 2, "CRITICAL")]
        assert client.query(f"SELECT meter_id, state, breaches FROM {db}.alerts_active").result_rows == [
            ("a", "OPEN", 2)
        ]

        # a new scorer (a restarted run) reads back what was judged and the open alert
        again = WindowScorer(pipeline, lambda: model)
        _windows(client, db, {("a", 3): normal, ("b", 2): hot})
        assert again(client) == 2
        events = client.query(
            f"SELECT meter_id, transition, toUnixTimestamp64Milli(at) - {T0}, breaches FROM {db}.alert_events FINAL "
            "WHERE kind = 'anomaly' ORDER BY at, meter_id"
        ).result_rows
        assert events[2:] == [("b", "OPENED", 2 * MIN, 1), ("a", "RESOLVED", 3 * MIN, 2)]
        assert client.query(
            f"SELECT meter_id, state FROM {db}.alerts FINAL WHERE kind = 'anomaly' ORDER BY meter_id"
        ).result_rows == [("a", "RESOLVED"), ("b", "OPEN")]


def test_no_model_scores_nothing_and_a_mismatched_one_pauses_without_failing(tmp_path: Path) -> None:
    pipeline = _pipeline()
    db = names_for(pipeline).clickhouse_database
    other = FeatureSet(("temperature",), ("min",))
    samples = pd.DataFrame(
        {"meter_id": "s", "window_start": [0, MIN, 2 * MIN], "window_end": [MIN, 2 * MIN, 3 * MIN],
         "temperature.min": [1.0, 2.0, 3.0]}
    )  # fmt: skip
    narrow = train(samples, other, pipeline="plant", version=2, contamination=0.1, trees=10, window_ms=MIN,
                   snapshot_id=1)  # fmt: skip
    with session(f"chdb://{tmp_path / 'ch'}") as client:
        ensure_schema(client, pipeline)
        _windows(client, db, {("a", 0): (22.7, 23.0, 55.0)})
        assert WindowScorer(pipeline, lambda: None)(client) == 0
        assert WindowScorer(pipeline, lambda: narrow)(client) == 0  # logged: train a new model
        assert client.query(f"SELECT count() FROM {db}.anomalies").result_rows == [(0,)]
