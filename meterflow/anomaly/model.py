"""The Isolation Forest of a pipeline, and its record (the model card).

Trained by ``meterflow anomalies train`` on the lake's windows; each version is kept beside the
lake with its card (:mod:`meterflow_iceberg.models`), and read by the speed layer's sink and the
batch. A window's *score* is scikit-learn's ``decision_function``: the forest's anomaly score
shifted so that ``contamination`` of the training windows fall below 0. Below 0 is anomalous; the
lower, the more.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

if TYPE_CHECKING:  # scikit-learn costs 2.5 s of CPU to import: only training and loading a model pay it
    from sklearn.ensemble import IsolationForest

from meterflow.anomaly.features import FeatureSet
from meterflow.errors import MeterflowError

RANDOM_STATE = 0
"""The forest's seed: the same windows train the same model."""

TYPICAL_QUANTILES = (0.01, 0.5, 0.99)
"""What the card keeps of each feature's training values: an alert's detail compares with them."""


class AnomalyModelError(MeterflowError):
    """A model cannot be trained, read or applied."""


@dataclass(frozen=True)
class ModelCard:
    """What a model version is: kept as JSON beside it, and shown by ``meterflow anomalies models``."""

    version: int
    pipeline: str
    features: list[str]
    contamination: float
    trees: int
    samples: int
    """Training windows."""
    window_ms: int
    snapshot_id: int
    """The lake snapshot the training windows were read from."""
    trained_from: str
    """The first training window's start (ISO 8601, UTC)."""
    trained_to: str
    """The last training window's end."""
    trained_at: str
    offset: float
    """The forest's ``offset_``: scores (``score_samples``) below it are anomalous."""
    sklearn_version: str = field(default_factory=lambda: version("scikit-learn"))
    typical: dict[str, list[float]] = field(default_factory=dict)
    """Each feature's 1st, 50th and 99th percentile in training."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class AnomalyModel:
    """A fitted forest with its card."""

    card: ModelCard
    forest: IsolationForest

    def scores(self, matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """The windows' scores (below 0: anomalous), all at once."""
        if matrix.shape[1] != len(self.card.features):
            raise AnomalyModelError(
                f"model v{self.card.version} reads {len(self.card.features)} features {self.card.features}, "
                f"got {matrix.shape[1]}; train a new model after changing spec.anomalies"
            )
        if not len(matrix):
            return np.empty(0, dtype="float64")
        return np.asarray(self.forest.decision_function(matrix), dtype="float64")

    def require(self, features: list[str]) -> None:
        """Refuse to score ``features`` (the spec's, now) with a model trained on others."""
        if features != self.card.features:
            raise AnomalyModelError(
                f"model v{self.card.version} was trained on {self.card.features}, spec.anomalies now asks for "
                f"{features}; train a new model (`meterflow anomalies train`)"
            )

    def explain(self, matrix: npt.NDArray[np.float64]) -> list[str]:
        """For each window (a row of ``matrix``, usually the anomalous ones): its feature furthest
        outside the training range (distance from the median over the 1st-99th percentile span),
        said plainly."""
        typical = np.array([self.card.typical[name] for name in self.card.features])  # features x (p1, p50, p99)
        spread = np.maximum(typical[:, 2] - typical[:, 0], 1e-9)
        worst = np.argmax(np.abs(matrix - typical[:, 1]) / spread, axis=1)
        return [
            f"{self.card.features[f]} {matrix[i, f]:.4g} (trained {typical[f, 0]:.4g}..{typical[f, 2]:.4g}, "
            f"model v{self.card.version})"
            for i, f in enumerate(worst)
        ]

    def to_bytes(self) -> bytes:
        import joblib

        buffer = io.BytesIO()
        joblib.dump(self.forest, buffer)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, card: ModelCard, data: bytes) -> AnomalyModel:
        import joblib
        from sklearn.ensemble import IsolationForest

        forest = joblib.load(io.BytesIO(data))
        if not isinstance(forest, IsolationForest):
            raise AnomalyModelError(f"model v{card.version} is a {type(forest).__name__}, not an IsolationForest")
        return cls(card, forest)


def train(
    samples: pd.DataFrame,
    features: FeatureSet,
    *,
    pipeline: str,
    version: int,
    contamination: float,
    trees: int,
    window_ms: int,
    snapshot_id: int,
    now: datetime | None = None,
) -> AnomalyModel:
    """Fit the forest on ``samples`` (:meth:`FeatureSet.samples`) and write its card."""
    if len(samples) < 2:
        raise AnomalyModelError(
            f"{len(samples)} complete window(s) to train on; run the pipeline longer (or widen --from/--to) first"
        )
    matrix = features.matrix(samples)
    from sklearn.ensemble import IsolationForest

    forest = IsolationForest(n_estimators=trees, contamination=contamination, random_state=RANDOM_STATE, n_jobs=1).fit(
        matrix
    )
    quantiles = np.quantile(matrix, TYPICAL_QUANTILES, axis=0)
    card = ModelCard(
        version=version,
        pipeline=pipeline,
        features=features.names,
        contamination=contamination,
        trees=trees,
        samples=len(samples),
        window_ms=window_ms,
        snapshot_id=snapshot_id,
        trained_from=_iso(int(samples["window_start"].min())),
        trained_to=_iso(int(samples["window_end"].max())),
        trained_at=(now or datetime.now(UTC)).isoformat(timespec="seconds"),
        offset=float(forest.offset_),
        typical={name: [float(q) for q in quantiles[:, i]] for i, name in enumerate(features.names)},
    )
    return AnomalyModel(card, forest)


def _iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="milliseconds")


def describe(card: ModelCard) -> dict[str, Any]:
    """The card's headline fields, for a table."""
    return {
        "version": card.version,
        "trained_at": card.trained_at,
        "windows": card.samples,
        "from": card.trained_from,
        "to": card.trained_to,
        "snapshot": card.snapshot_id,
        "contamination": card.contamination,
        "features": ", ".join(card.features),
    }
