"""The ground truth of a simulation: what was sent, by kind, with every injected record listed.

:class:`Truth` is filled by :mod:`simulator.engine` while records are produced and written by
``meterflow simulate --truth FILE`` at the end; tests and the job's checks read it to know the
exact alerts, dead letters, duplicates, late readings, resets and stateful-rule episodes to expect.
The format is documented in docs/simulator.md. An anomaly detector is scored against it with
:func:`anomalous_readings` (the readings to flag) and :func:`score` (precision, recall, F1).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from meterflow.anomaly.evaluate import Score
from meterflow.reading import parse_timestamp

__all__ = ["KINDS", "ReadingKey", "Score", "Truth", "anomalous_readings", "reading_key", "score"]

KINDS = ("normal", "trigger", "malformed", "duplicate", "late", "reset", "unknown_meter", "episode", "anomaly")
"""Kinds of records on ``<name>.readings``, in the order the counts list them."""


@dataclass
class Truth:
    """What one simulation sent (mutable: filled as records go out)."""

    pipeline: str
    seed: int
    meter_kind: str
    start: str
    end: str = ""
    meters_published: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    triggers: list[dict[str, Any]] = field(default_factory=list)
    malformed: list[dict[str, Any]] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    late: list[dict[str, Any]] = field(default_factory=list)
    resets: list[dict[str, Any]] = field(default_factory=list)
    unknown_meters: list[dict[str, Any]] = field(default_factory=list)
    unknown_meter_ids: list[str] = field(default_factory=list)
    untriggerable_rules: list[str] = field(default_factory=list)
    episodes: list[dict[str, Any]] = field(default_factory=list)
    skipped_episodes: list[dict[str, Any]] = field(default_factory=list)
    anomalies: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total_records(self) -> int:
        return sum(self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "seed": self.seed,
            "meter_kind": self.meter_kind,
            "start": self.start,
            "end": self.end,
            "counts": self.counts | {"total_records": self.total_records},
            "meters_published": self.meters_published,
            "unknown_meter_ids": self.unknown_meter_ids,
            "untriggerable_rules": self.untriggerable_rules,
            "triggers": self.triggers,
            "malformed": self.malformed,
            "duplicates": self.duplicates,
            "late": self.late,
            "resets": self.resets,
            "unknown_meters": self.unknown_meters,
            "episodes": self.episodes,
            "skipped_episodes": self.skipped_episodes,
            "anomalies": self.anomalies,
        }

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")


ReadingKey = tuple[str, str, str, int]
"""One reading: (meter id, measurement, series, event time in epoch milliseconds), whatever offset
its timestamp was written with."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def reading_key(meter_id: str, measurement: str, series: str, timestamp: str) -> ReadingKey:
    """The key of a reading whose timestamp is the ISO 8601 text sent (any offset)."""
    return meter_id, measurement, series, (parse_timestamp(timestamp) - _EPOCH) // timedelta(milliseconds=1)


def anomalous_readings(truth: Mapping[str, Any], *, triggers: bool = True) -> set[ReadingKey]:
    """The readings a detector should flag in a run with ground truth ``truth`` (:meth:`Truth.to_dict`
    or the ``--truth`` file): every injected anomaly and, unless ``triggers`` is False, every
    threshold trigger (a value just beyond a rule's threshold: far from normal too)."""
    rows = [*truth.get("anomalies", ()), *(truth["triggers"] if triggers else ())]
    return {reading_key(r["meter_id"], r["measurement"], r["series"], r["timestamp"]) for r in rows}


def score(truth: Mapping[str, Any], flagged: Iterable[ReadingKey], *, triggers: bool = True) -> Score:
    """Score the readings a detector flagged (keys as :func:`reading_key` makes them) against ``truth``."""
    expected = anomalous_readings(truth, triggers=triggers)
    found = set(flagged)
    hits = len(found & expected)
    return Score(hits, len(found) - hits, len(expected) - hits)
