"""A pipeline's anomaly features, and window rows turned into them.

A sample is one meter's window: the ``stats`` of each feature measurement's window (``readings_agg``
columns) and the ratio of two measurements' window means. The speed layer's windows (ClickHouse)
and the batch's (recomputed from the lake) arrive as the same *long* rows — one per meter,
measurement and window — so one function makes the samples of both, and a model trained on one is
scored on the other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from meterflow.spec.model import AnomalySpec, WindowStat

KEY = ["meter_id", "window_start", "window_end"]
"""What identifies a sample (window times in epoch milliseconds)."""

WINDOW_COLUMNS = (
    "meter_id",
    "measurement_type",
    "window_start",
    "window_end",
    "readings",
    "avg",
    "min",
    "max",
    "stddev",
)
"""The long window rows both layers hand over (``readings_agg``'s names; times in epoch ms)."""


@dataclass(frozen=True)
class FeatureSet:
    """The features of a pipeline's ``spec.anomalies``, in a fixed order (the model's columns)."""

    measurements: tuple[str, ...]
    stats: tuple[str, ...]
    ratios: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, spec: AnomalySpec) -> FeatureSet:
        return cls(
            measurements=tuple(spec.measurements),
            stats=tuple(WindowStat(s).value for s in spec.stats),
            ratios=tuple((r.numerator, r.denominator) for r in spec.ratios),
        )

    @property
    def names(self) -> list[str]:
        """``temperature.avg`` …, then ``temperature/humidity`` …"""
        return [f"{m}.{s}" for m in self.measurements for s in self.stats] + [f"{n}/{d}" for n, d in self.ratios]

    def samples(self, windows: pd.DataFrame) -> pd.DataFrame:
        """One row per meter and window (:data:`KEY`, then :attr:`names`), sorted by meter and time.

        A window lacking one of the measurements, or whose ratio's denominator has a mean of 0, has
        no complete sample and is left out (the health score counts the missing readings).
        """
        columns = sorted({*self.stats, "avg"})
        rows = windows[windows["measurement_type"].isin(self.measurements)]
        if rows.empty:
            empty = pd.DataFrame(columns=[*KEY, *self.names])
            return empty.astype({"window_start": "int64", "window_end": "int64"} | dict.fromkeys(self.names, "float64"))
        wide = rows.set_index([*KEY, "measurement_type"])[columns].unstack("measurement_type")
        out = pd.DataFrame(index=wide.index)
        for m in self.measurements:
            for s in self.stats:
                out[f"{m}.{s}"] = wide[(s, m)] if (s, m) in wide.columns else np.nan
        for n, d in self.ratios:
            if ("avg", n) in wide.columns and ("avg", d) in wide.columns:
                denominator = wide[("avg", d)].astype("float64")
                out[f"{n}/{d}"] = wide[("avg", n)].astype("float64") / denominator.where(denominator != 0)
            else:
                out[f"{n}/{d}"] = np.nan
        out = out.astype("float64").dropna().reset_index()
        return out.sort_values(["meter_id", "window_start"], kind="stable").reset_index(drop=True)

    def matrix(self, samples: pd.DataFrame) -> npt.NDArray[np.float64]:
        """The samples' feature values as the model reads them."""
        return np.asarray(samples[self.names].to_numpy(dtype="float64"), dtype="float64")
