"""The benchmark's own embedded stack: a private ``METERFLOW_HOME``, one broker, two manifests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from meterflow.spec import MeterPipeline, load_manifest, names_for
from meterflow.spec.names import PipelineNames
from meterflow.spec.topics import topic_plan
from meterflow.stack.broker import EmbeddedBroker
from meterflow.stack.topics import ensure_topics

ROOT = Path(__file__).resolve().parent.parent
WATER_MANIFEST = ROOT / "examples" / "water-meters.yaml"
METERFLOW = Path(sys.executable).parent / "meterflow"


@dataclass
class BenchPipeline:
    """A manifest written under the bench home, loaded."""

    path: Path
    spec: MeterPipeline
    names: PipelineNames = field(init=False)

    def __post_init__(self) -> None:
        self.names = names_for(self.spec)


class BenchStack:
    """Owns ``home`` (set as ``METERFLOW_HOME`` for this process and its children) and the broker."""

    def __init__(self, home: Path) -> None:
        self.home = home.absolute()
        self.home.mkdir(parents=True, exist_ok=True)
        os.environ["METERFLOW_HOME"] = str(self.home)
        self.bootstrap = ""
        self.broker_pid = 0

    def env(self) -> dict[str, str]:
        return dict(os.environ, METERFLOW_HOME=str(self.home))

    def meterflow(self, *args: str, timeout_s: float = 600) -> subprocess.CompletedProcess[str]:
        """Run a ``meterflow`` command against the bench home; raise with its stderr when it fails."""
        result = subprocess.run(
            [str(METERFLOW), *args], env=self.env(), capture_output=True, text=True, timeout=timeout_s, check=False
        )
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise RuntimeError(f"meterflow {args[0]} exited {result.returncode}: {' | '.join(tail)}")
        return result

    def up(self) -> str:
        """``meterflow up``; the bootstrap address."""
        self.meterflow("up", timeout_s=120)
        info = EmbeddedBroker(self.home).running()
        if info is None:
            raise RuntimeError(f"meterflow up returned but no broker answers under {self.home}")
        self.bootstrap, self.broker_pid = info.bootstrap, info.pid
        return self.bootstrap

    def down(self) -> None:
        """``meterflow down`` (never raises: called on the way out)."""
        try:
            self.meterflow("down", timeout_s=90)
        except Exception as exc:
            print(f"[bench] meterflow down failed: {exc}", file=sys.stderr)

    def remove(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)

    def threshold_rules(self) -> list[dict[str, Any]]:
        """The water-meters manifest's threshold rules (``kind`` absent or ``threshold``), without
        its stateful ones: what the stateful rules cost is the difference."""
        rules = yaml.safe_load(WATER_MANIFEST.read_text())["spec"].get("rules", [])
        return [r for r in rules if r.get("kind", "threshold") == "threshold"]

    def pipeline(self, name: str, overrides: dict[str, Any] | None = None) -> BenchPipeline:
        """The water-meters manifest under another name (its own topics, database, namespace)."""
        doc = yaml.safe_load(WATER_MANIFEST.read_text())
        doc["metadata"]["name"] = name
        for key, value in (overrides or {}).items():
            doc["spec"][key] = value
        path = self.home / f"{name}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        bench = BenchPipeline(path, load_manifest(path))
        ensure_topics(self.bootstrap, topic_plan(bench.spec))
        return bench
