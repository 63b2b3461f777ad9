"""Anomaly verdicts in ClickHouse: the speed layer's scorer, and the rows both layers write.

:class:`WindowScorer` runs in the serving sink (``meterflow run``), after each write of window
results: it reads the windows that closed since it last looked from ``readings_agg`` (one query,
columns in bulk), makes each meter's complete samples, scores them all with one call of the forest,
writes the verdicts to ``anomalies`` (one Arrow insert) and the alert transitions they make to
``alert_transitions_queue``. It never sees a reading: a window is one row. What it has judged, and
which anomaly alerts are open, it reads back from ClickHouse when it starts, so a restarted run
goes on where the last one stopped.

A window that arrives more than :attr:`WindowScorer.lookback_ms` behind the newest one (a replay of
old data into a running pipeline) is not scored here; the batch re-scores every window of the days
it recomputes.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from meterflow.anomaly.alerts import AnomalyAlerts, OpenAlert
from meterflow.anomaly.features import KEY, FeatureSet
from meterflow.anomaly.model import AnomalyModel, AnomalyModelError
from meterflow.spec.model import MeterPipeline, Severity
from meterflow.spec.names import names_for
from meterflow_clickhouse.sink import JSON_SETTINGS

log = logging.getLogger(__name__)

ANOMALY_COLUMNS = (
    "day", "meter_id", "window_start", "window_end", "layer", "model_version", "score", "anomalous", "detail",
    "version",
)  # fmt: skip
WARN_EVERY_S = 60.0


def verdicts(samples: pd.DataFrame, model: AnomalyModel, *, layer: str, time_zone: str) -> pd.DataFrame:
    """Score ``samples`` (:meth:`FeatureSet.samples` rows, the model's features by name) in one call:
    rows of ``anomalies`` (:data:`ANOMALY_COLUMNS`; ``day`` as ``datetime64[D]``)."""
    matrix = samples[model.card.features].to_numpy(dtype="float64")
    scores = model.scores(matrix)
    out = samples[KEY].copy()
    out["score"] = scores
    out["anomalous"] = scores < 0
    out["detail"] = ""
    flagged = np.flatnonzero(scores < 0)
    if len(flagged):
        out.loc[out.index[flagged], "detail"] = model.explain(matrix[flagged])
    starts = pd.to_datetime(out["window_start"].to_numpy(dtype="int64"), unit="ms", utc=True)
    out["day"] = starts.tz_convert(time_zone).tz_localize(None).to_numpy().astype("datetime64[D]")
    out["layer"] = layer
    out["model_version"] = model.card.version
    out["version"] = model.card.version * 2 + (1 if layer == "batch" else 0)
    return out


def anomaly_arrow(rows: pd.DataFrame) -> pa.Table:
    """``anomalies`` rows as an Arrow table of the table's types: one insert moves them in bulk."""
    n = len(rows)
    return pa.table(
        {
            "day": pa.array(rows["day"].to_numpy().astype("datetime64[D]"), pa.date32()),
            "meter_id": pa.array(rows["meter_id"], pa.string()),
            "window_start": pa.array(rows["window_start"].to_numpy(dtype="int64"), pa.timestamp("ms", tz="UTC")),
            "window_end": pa.array(rows["window_end"].to_numpy(dtype="int64"), pa.timestamp("ms", tz="UTC")),
            "layer": pa.array(rows["layer"], pa.string()),
            "model_version": pa.array(np.full(n, rows["model_version"].iloc[0] if n else 0, dtype="uint32")),
            "score": pa.array(rows["score"].to_numpy(dtype="float64")),
            "anomalous": pa.array(rows["anomalous"].to_numpy(dtype="uint8")),
            "detail": pa.array(rows["detail"], pa.string()),
            "version": pa.array(rows["version"].to_numpy(dtype="uint64")),
        }
    )


def insert_json(client: Any, table: str, block: bytes) -> None:
    if block.strip():
        client.raw_insert(table, insert_block=block, fmt="JSONEachRow", settings=JSON_SETTINGS)


@dataclass
class ScorerStats:
    """What the scorer did: windows scored, anomalous, alert transitions, and its time."""

    windows: int = 0
    anomalous: int = 0
    transitions: int = 0
    seconds: float = 0.0
    """Reading the windows, scoring them and writing the verdicts."""
    scoring_seconds: float = 0.0
    """The forest's scores and the verdict rows (:func:`verdicts`) alone."""


class WindowScorer:
    """Scores the speed layer's windows as the sink writes them (call it with the sink's client)."""

    def __init__(self, pipeline: MeterPipeline, models: Callable[[], AnomalyModel | None]) -> None:
        spec = pipeline.spec.anomalies
        if spec is None:
            raise ValueError(f"pipeline {pipeline.name} has no spec.anomalies")
        self.db = names_for(pipeline).clickhouse_database
        self.features = FeatureSet.of(spec)
        self.time_zone = pipeline.spec.time_zone
        self.window_ms = pipeline.spec.windows.size_ms
        self.lookback_ms = 3 * self.window_ms + pipeline.spec.windows.grace_ms
        self.models = models
        self.rule, self.severity = spec.rule, Severity(spec.severity).value
        self.stats = ScorerStats()
        self._alerts: AnomalyAlerts | None = None
        self._judged: dict[str, int] = {}
        self._newest_end = 0
        self._warned = -WARN_EVERY_S

    def __call__(self, client: Any) -> int:
        """Score what closed since the last call; the windows scored."""
        try:
            model = self.models()
            if model is None:
                return 0
            model.require(self.features.names)
            return self._score(client, model)
        except AnomalyModelError as exc:
            now = time.monotonic()
            if now - self._warned >= WARN_EVERY_S:
                self._warned = now
                log.warning("anomaly scoring paused: %s", exc)
            return 0

    def _score(self, client: Any, model: AnomalyModel) -> int:
        started = time.perf_counter()
        if self._alerts is None:
            self._alerts = AnomalyAlerts(self.rule, self.severity, self._open_alerts(client))
            self._judged, self._newest_end = self._judged_so_far(client)
        windows = client.query_df(
            # aliases apart from the columns: ClickHouse would read an alias in WHERE
            f"SELECT meter_id, measurement_type, toUnixTimestamp64Milli(window_start) AS start_ms, "
            f"toUnixTimestamp64Milli(window_end) AS end_ms, readings, avg, min, max, stddev "
            f"FROM {self.db}.readings_agg FINAL "
            # window_start too: readings_agg is partitioned by it, so only the last days are read
            "WHERE window_end > fromUnixTimestamp64Milli({since:Int64}, 'UTC') "
            "AND window_start >= fromUnixTimestamp64Milli({since:Int64} - {size:Int64}, 'UTC') "
            "AND measurement_type IN {measurements:Array(String)}",
            parameters={
                "since": self._newest_end - self.lookback_ms,
                "size": self.window_ms,
                "measurements": list(self.features.measurements),
            },
        )
        if windows.empty:
            return 0
        windows = windows.rename(columns={"start_ms": "window_start", "end_ms": "window_end"})
        self._newest_end = max(self._newest_end, int(windows["window_end"].max()))
        samples = self.features.samples(windows)
        judged = samples["meter_id"].map(self._judged).fillna(-1).astype("int64")
        samples = samples[samples["window_start"] > judged].reset_index(drop=True)
        if samples.empty:
            return 0
        t0 = time.perf_counter()
        rows = verdicts(samples, model, layer="speed", time_zone=self.time_zone)
        self.stats.scoring_seconds += time.perf_counter() - t0
        client.insert_arrow(f"{self.db}.anomalies", anomaly_arrow(rows))
        transitions = self._alerts.judge(rows)
        if transitions:
            block = "\n".join(json.dumps(t) for t in transitions).encode()
            insert_json(client, f"{self.db}.alert_transitions_queue", block)
        newest = rows.groupby("meter_id")["window_start"].max()
        self._judged.update({str(k): int(v) for k, v in newest.items()})
        self.stats.windows += len(rows)
        self.stats.anomalous += int(rows["anomalous"].sum())
        self.stats.transitions += len(transitions)
        self.stats.seconds += time.perf_counter() - started
        return len(rows)

    def _judged_so_far(self, client: Any) -> tuple[dict[str, int], int]:
        rows = client.query(
            f"SELECT meter_id, toUnixTimestamp64Milli(max(window_start)), toUnixTimestamp64Milli(max(window_end)) "
            f"FROM {self.db}.anomalies GROUP BY meter_id"
        ).result_rows
        return {str(m): int(s) for m, s, _ in rows}, max((int(e) for _, _, e in rows), default=0)

    def _open_alerts(self, client: Any) -> dict[str, OpenAlert]:
        rows = client.query(
            f"SELECT meter_id, alert_id, toUnixTimestamp64Milli(event_time), toUnixTimestamp64Milli(last_seen), "
            f"breaches, value, last_value, peak_value, detail FROM {self.db}.alerts FINAL "
            "WHERE kind = 'anomaly' AND rule = {rule:String} AND state = 'OPEN'",
            parameters={"rule": self.rule},
        ).result_rows
        return {
            str(m): OpenAlert(str(a), int(o), int(s), int(b), float(v), float(last), float(p), str(d))
            for m, a, o, s, b, v, last, p, d in rows
        }
