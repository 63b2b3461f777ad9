"""Session fixtures: real services started once, fresh names per test.

The broker is the same :class:`~meterflow.stack.broker.EmbeddedBroker` that ``meterflow up``
starts, in a temporary ``METERFLOW_HOME``; every test gets its own pipeline name, so its topics,
ClickHouse database and Iceberg namespace are its own.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from meterflow.spec import MeterPipeline, parse_manifest
from meterflow.stack.broker import BrokerInfo, EmbeddedBroker
from meterflow.stack.mosquitto import EmbeddedMosquitto, MosquittoInfo

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def meterflow_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private state folder for the whole test session."""
    home = tmp_path_factory.mktemp("meterflow-home")
    previous = os.environ.get("METERFLOW_HOME")
    os.environ["METERFLOW_HOME"] = str(home)
    yield home
    if previous is None:
        os.environ.pop("METERFLOW_HOME", None)
    else:
        os.environ["METERFLOW_HOME"] = previous


@pytest.fixture(scope="session")
def broker(meterflow_home: Path) -> Iterator[BrokerInfo]:
    """A real single-node KRaft broker, started once per session by `meterflow up`'s code."""
    embedded = EmbeddedBroker(meterflow_home)
    info = embedded.up()
    yield info
    embedded.down()


@pytest.fixture(scope="session")
def mosquitto(meterflow_home: Path) -> Iterator[MosquittoInfo]:
    """A real Mosquitto, started once per session by `meterflow up --mqtt`'s code (pipelines leave url unset)."""
    embedded = EmbeddedMosquitto(meterflow_home)
    info = embedded.up()
    yield info
    embedded.down()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or a skip saying why."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real meter data not found at {SHARED_DATA} (a checkout without ../shared)")
    return SHARED_DATA


def example_manifest(name: str) -> dict[str, Any]:
    """The parsed YAML of examples/<name>.yaml."""
    data: dict[str, Any] = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
    return data


def every_kind_rules() -> list[dict[str, Any]]:
    """The water example's rules with every kind and option of the lifecycle: its thresholds (HIGH_FLOW
    with hysteresis), noData escalating after 12 h, continuousFlow on Pulse1 escalating after 3 h,
    nightFlow on the register's steps, and a stuck register (6 h)."""
    rules: list[dict[str, Any]] = example_manifest("water-meters")["spec"]["rules"]
    changes: dict[str, dict[str, Any]] = {
        "HIGH_FLOW": {"clearThreshold": 400},
        "NO_DATA": {"escalateAfter": "12h"},
        "CONTINUOUS_FLOW": {"escalateAfter": "3h"},
        "NIGHT_FLOW": {"measurement": "Pulse1_Total"},
    }
    out = [r | changes.get(r["name"], {}) for r in rules]
    return [*out, {"name": "STUCK_REGISTER", "kind": "stuck", "measurement": "Pulse1_Total", "for": "6h"}]


def unique_pipeline(example: str, **spec_overrides: Any) -> MeterPipeline:
    """An example pipeline renamed ``<example>-<random>`` (fresh topics, database, namespace)."""
    document = example_manifest(example)
    document["metadata"]["name"] = f"{example}-{secrets.token_hex(3)}"
    document["spec"].update(spec_overrides)
    return parse_manifest(document)


def write_manifest(pipeline: MeterPipeline, folder: Path) -> Path:
    """Write ``pipeline`` as a manifest file and return its path."""
    path = folder / f"{pipeline.name}.yaml"
    path.write_text(yaml.safe_dump(pipeline.to_manifest(), sort_keys=False))
    return path
