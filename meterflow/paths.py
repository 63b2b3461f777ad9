"""Where meterflow keeps state (per checkout) and caches (per user).

State: ``$METERFLOW_HOME`` or ``./.meterflow`` — the broker's log dirs, Flink checkpoints, the
embedded ClickHouse and the Iceberg warehouse. Cache: ``$METERFLOW_CACHE`` or
``~/.cache/meterflow`` — jars fetched by ``make jars`` and binaries built by ``make k8s-bins``,
shared by every checkout on the machine.
"""

from __future__ import annotations

import os
from pathlib import Path

from meterflow.errors import SetupError


def state_home() -> Path:
    """The folder that holds all mutable local state."""
    return Path(os.environ.get("METERFLOW_HOME", ".meterflow")).absolute()


def cache_home() -> Path:
    """The per-user cache of downloaded jars and built binaries."""
    default = Path.home() / ".cache" / "meterflow"
    return Path(os.environ.get("METERFLOW_CACHE", default)).absolute()


def jar_dir(bundle: str) -> Path:
    """The folder of one jar bundle (``kafka-broker``, ``flink``, ...) fetched by ``make jars``."""
    path = cache_home() / "jars" / bundle
    if not path.is_dir() or not any(path.glob("*.jar")):
        raise SetupError(f"the {bundle} jars are missing from {path}; run `make jars` (or `make setup`)")
    return path


def pipeline_state(pipeline: str) -> Path:
    """The state folder of one pipeline (checkpoints, savepoints, sink offsets)."""
    return state_home() / "pipelines" / pipeline
