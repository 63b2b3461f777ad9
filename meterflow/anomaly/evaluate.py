"""Window verdicts against a simulation's truth: precision, recall and F1 of the detector.

A window is truly anomalous when one of its meter's anomalous readings (the simulator's truth:
injected anomalies, and threshold triggers) falls inside it. Only scored windows count: a window
with no complete sample was never judged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd


@dataclass(frozen=True)
class Score:
    """How a detector's flags compare with the truth: readings (``simulator.truth.score``) or windows
    (:func:`score_windows`, which also counts the true negatives)."""

    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int = 0

    @property
    def precision(self) -> float:
        """Share of flagged items that are anomalous (1.0 when nothing was flagged)."""
        flagged = self.true_positives + self.false_positives
        return self.true_positives / flagged if flagged else 1.0

    @property
    def recall(self) -> float:
        """Share of anomalous items that were flagged (1.0 when there were none)."""
        anomalous = self.true_positives + self.false_negatives
        return self.true_positives / anomalous if anomalous else 1.0

    @property
    def f1(self) -> float:
        """The harmonic mean of precision and recall."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def accuracy(self) -> float:
        """Share of items judged right (meaningful only where true negatives are counted)."""
        total = self.true_positives + self.false_positives + self.false_negatives + self.true_negatives
        return (self.true_positives + self.true_negatives) / total if total else 1.0


def truly_anomalous(windows: pd.DataFrame, anomalous_instants: Iterable[tuple[str, int]]) -> npt.NDArray[np.bool_]:
    """For each window (``meter_id``, ``window_start``, ``window_end`` in ms): does one of the meter's
    anomalous instants (epoch ms) fall inside it?"""
    instants = pd.DataFrame(list(anomalous_instants), columns=["meter_id", "t"])
    if instants.empty or windows.empty:
        return np.zeros(len(windows), dtype=bool)
    keyed = windows[["meter_id", "window_start", "window_end"]].reset_index(drop=True).reset_index()
    hits = keyed.merge(instants, on="meter_id")
    hits = hits[(hits["t"] >= hits["window_start"]) & (hits["t"] < hits["window_end"])]
    truth = np.zeros(len(windows), dtype=bool)
    truth[hits["index"].unique()] = True
    return truth


def score_windows(flagged: npt.NDArray[np.bool_], truth: npt.NDArray[np.bool_]) -> Score:
    """Confusion counts of the verdicts ``flagged`` against ``truth`` (same order)."""
    return Score(
        true_positives=int((flagged & truth).sum()),
        false_positives=int((flagged & ~truth).sum()),
        false_negatives=int((~flagged & truth).sum()),
        true_negatives=int((~flagged & ~truth).sum()),
    )
