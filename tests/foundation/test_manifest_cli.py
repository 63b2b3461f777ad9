"""A bad manifest makes `meterflow` print one line that names the field and the fix, and exit 2;
a good one loads with its defaults and derives every name from the pipeline's name."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from meterflow.spec import load_manifest, names_for, parse_manifest
from meterflow_cli.app import main
from tests.conftest import EXAMPLES, example_manifest

Change = Callable[[dict[str, Any]], Any]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["spec"]["windows"].update(type="hopping", size="5m", slide="10m"),
            "spec.windows.slide: 10m is larger than size 5m; make slide <= size",
        ),
        (
            lambda d: d["spec"]["rules"][0].update(measurement="Pulse9"),
            "spec.rules[0].measurement: 'Pulse9' is not a measurement of this pipeline; use one of "
            "['Battery', 'DeviceTemperature', 'Pulse1', 'Pulse1_Total']",
        ),
        (
            lambda d: d["metadata"].update(name="Water_Meters"),
            "metadata.name: 'Water_Meters' is not a DNS-1123 label; use at most 63 lower-case letters, digits "
            "and '-', starting and ending with a letter or digit",
        ),
        (
            lambda d: d["spec"]["rules"][1].update(threshold=-1),
            "spec.rules[1].threshold: -1 lies outside Battery's valid range [0.0, 100.0]; no valid reading "
            "could trigger it",
        ),
        (
            lambda d: d["spec"]["measurements"][0].update(kind="power"),
            "spec.measurements[0].unit: 'L' is no power unit; a power measurement's unit is a rate in W, VA or "
            "var (e.g. kW, whose energy is served in kWh), or declare the measurement a gauge",
        ),
    ],
    ids=[
        "slide-larger-than-size",
        "rule-on-unknown-measurement",
        "name-not-a-dns-label",
        "negative-threshold",
        "power-in-litres",
    ],
)
def test_a_bad_manifest_is_one_line_naming_the_field(
    change: Change, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = copy.deepcopy(example_manifest("water-meters"))
    change(document)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(document))
    assert main(["validate", "-f", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"meterflow: {path}: {message}\n"
    assert captured.out == ""


def test_a_cli_mistake_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "-f", "/nonexistent/pipeline.yaml"]) == 2
    assert main(["run", "--until-idle"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2
    assert err[0].startswith("meterflow: ") and "/nonexistent/pipeline.yaml" in err[0]
    assert err[1].startswith("meterflow: ") and "--file" in err[1] and "meterflow run --help" in err[1]


@pytest.mark.parametrize(
    "example",
    [
        "water-meters",
        "smart-building",
        "household-power",
        "daiad-water",
        "industrial-sensors",
    ],
)
def test_every_example_loads_and_derives_its_names(example: str) -> None:
    pipeline = load_manifest(EXAMPLES / f"{example}.yaml")
    names = names_for(pipeline)
    assert pipeline.name == example
    snake = example.replace("-", "_")
    assert names.topics.all() == [
        f"{example}.readings",
        f"{example}.readings.dlq",
        f"{example}.aggregates",
        f"{example}.alerts",
        f"{example}.meters",
        f"{example}.counters",
        f"{example}.alert-commands",
    ]
    assert (names.clickhouse_database, names.iceberg_namespace) == (snake, snake)


def test_defaults_are_applied() -> None:
    document = example_manifest("water-meters")
    document["spec"].pop("flink", None)
    document["spec"]["windows"] = {"size": "5m"}
    spec = parse_manifest(document).spec
    assert (spec.windows.type, spec.windows.slide) == ("tumbling", None)
    assert (spec.windows.watermark_delay, spec.windows.allowed_lateness) == ("30s", "0s")
    assert (spec.flink.parallelism, spec.flink.checkpoint_interval) == (1, "10s")
