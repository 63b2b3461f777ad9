"""The lake's side of anomaly detection: training a model, and the batch's re-scoring.

:func:`train_from_lake` (``meterflow anomalies train``) fits a new model version on the lake's
windows and keeps it beside the lake.

The speed layer scores windows as they close, with the model of that moment, and misses what
arrives late or out of its look-back. The batch recomputes the same windows from the pinned lake
snapshot (:func:`meterflow_iceberg.windows.lake_windows`), scores each meter-day's windows with
the newest model in one call, and replaces those days in ``anomalies`` (layer ``batch``). Alerts
stay the speed layer's: a batch does not reopen what the live run resolved.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import pandas as pd
from pyiceberg.table import Table

from flink_jobs.batch.days import day_bounds
from meterflow.anomaly.features import FeatureSet
from meterflow.anomaly.model import AnomalyModel, AnomalyModelError, train
from meterflow.spec.model import MeterPipeline
from meterflow_clickhouse.anomalies import ANOMALY_COLUMNS, verdicts
from meterflow_iceberg.maintenance import newest_event_ms
from meterflow_iceberg.models import ModelStore
from meterflow_iceberg.windows import lake_windows


def score_days(
    pipeline: MeterPipeline, table: Table, days: Sequence[date], snapshot_id: int | None
) -> tuple[pd.DataFrame, AnomalyModel | None]:
    """The verdicts of every complete window starting in ``days`` (local), and the model that gave
    them; no rows and no model when the pipeline has no ``spec.anomalies`` or no model yet; an
    :class:`AnomalyModelError` when the newest model reads other features than the spec asks for."""
    spec = pipeline.spec.anomalies
    empty = pd.DataFrame(columns=list(ANOMALY_COLUMNS))
    if spec is None or not days:
        return empty, None
    model = ModelStore(table).load()
    if model is None:
        return empty, None
    zone = pipeline.spec.time_zone
    features = FeatureSet.of(spec)
    model.require(features.names)
    windows = lake_windows(
        table,
        start_ms=day_bounds(min(days), zone)[0],
        end_ms=day_bounds(max(days), zone)[1],
        window_ms=pipeline.spec.windows.size_ms,
        measurements=features.measurements,
        snapshot_id=snapshot_id,
    )
    samples = features.samples(windows)
    if samples.empty:
        return empty, model
    return verdicts(samples, model, layer="batch", time_zone=zone), model


def train_from_lake(
    pipeline: MeterPipeline, table: Table, *, start_ms: int | None = None, end_ms: int | None = None
) -> AnomalyModel:
    """Fit a new model version on the lake's windows starting in [``start_ms``, ``end_ms``) (default:
    all of the current snapshot) and keep it beside the lake."""
    spec = pipeline.spec.anomalies
    if spec is None:
        raise AnomalyModelError(
            f"pipeline {pipeline.name} has no spec.anomalies; add the measurements to learn from (docs/anomalies.md)"
        )
    snapshot = table.current_snapshot()
    if snapshot is None:
        raise AnomalyModelError(f"the lake of {pipeline.name} is empty; run the pipeline (`meterflow run`) first")
    features = FeatureSet.of(spec)
    window_ms = pipeline.spec.windows.size_ms
    first = start_ms if start_ms is not None else 0
    last = end_ms if end_ms is not None else (newest_event_ms(table, snapshot.snapshot_id) or 0) + 1
    windows = lake_windows(
        table, start_ms=first, end_ms=last, window_ms=window_ms, measurements=features.measurements,
        snapshot_id=snapshot.snapshot_id,
    )  # fmt: skip
    store = ModelStore(table)
    model = train(
        features.samples(windows), features, pipeline=pipeline.name, version=store.next_version(),
        contamination=spec.contamination, trees=spec.trees, window_ms=window_ms, snapshot_id=snapshot.snapshot_id,
    )  # fmt: skip
    store.save(model)
    return model
