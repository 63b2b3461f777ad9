"""The ground truth of a simulation: what was sent, by kind, with every injected record listed.

:class:`Truth` is filled by :mod:`simulator.engine` while records are produced and written by
``meterflow simulate --truth FILE`` at the end; tests and the job's checks read it to know the
exact alerts, dead letters, duplicates, late readings, resets and stateful-rule episodes to expect.
The format is documented in docs/simulator.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KINDS = ("normal", "trigger", "malformed", "duplicate", "late", "reset", "unknown_meter", "episode")
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
        }

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
