"""The generated MeterPipeline CRD, without a cluster: the chart's copy, descriptions, and that each
CEL rule's Python twin rejects the same manifests (the API server's side is in test_operator_crd_k8s.py).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from operator_support import REPO

from meterflow.errors import SpecError
from meterflow.spec import parse_manifest
from meterflow.spec.crd import crd, crd_yaml, open_api_schema

CHART_CRD = REPO / "helm" / "meterflow" / "crds" / "meterpipelines.meterflow.io.yaml"


def test_chart_copy_is_the_generated_crd() -> None:
    assert CHART_CRD.read_text() == crd_yaml(), "the chart's CRD is stale: run `make crd`"


def _walk(schema: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for name, sub in schema.get("properties", {}).items():
        out.append((f"{path}.{name}", sub))
        out.extend(_walk(sub, f"{path}.{name}"))
    if "items" in schema:
        out.append((f"{path}[]", schema["items"]))
        out.extend(_walk(schema["items"], f"{path}[]"))
    return out


def test_every_field_is_described() -> None:
    schema = open_api_schema()
    fields = _walk(schema["properties"]["spec"], "spec") + _walk(schema["properties"]["status"], "status")
    assert [path for path, sub in fields if not sub.get("description")] == []


def test_structural_schema_rules() -> None:
    """What the API server insists on: a type everywhere, no refs, nothing but name under metadata."""
    schema = open_api_schema()
    for path, sub in _walk(schema, ""):
        assert "type" in sub, path
        assert not {"$ref", "anyOf", "allOf", "oneOf", "additionalProperties", "title"} & set(sub), path
    assert set(schema["properties"]["metadata"]["properties"]) == {"name"}


def test_crd_shape() -> None:
    spec = crd()["spec"]
    assert spec["names"]["shortNames"] == ["mp"]
    version = spec["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == ["Ready", "Streaming", "Last batch", "Age"]
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert status["conditions"]["x-kubernetes-list-type"] == "map"
    assert status["conditions"]["x-kubernetes-list-map-keys"] == ["type"]


def test_object_defaults_are_whole_objects() -> None:
    """The API server checks a default against the CEL rules without applying nested defaults."""
    spec = open_api_schema()["properties"]["spec"]["properties"]
    assert spec["windows"]["default"] == {
        "type": "tumbling",
        "size": "5m",
        "watermarkDelay": "30s",
        "allowedLateness": "0s",
    }
    assert spec["meters"]["default"] == {"source": "topic"}
    assert spec["flink"]["default"]["jobManager"] == {"cpu": 1.0, "memory": "1600m"}
    assert all(v is not None for v in spec["sinks"]["default"]["iceberg"].values())


WATER = yaml.safe_load((REPO / "examples" / "water-meters.yaml").read_text())


def _changed(change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    document = copy.deepcopy(WATER)
    change(document)
    return document


# The manifests test_operator_crd_k8s.py shows the API server rejecting: the model rejects them too.
@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d["spec"].update(windows={"type": "hopping", "size": "5m", "slide": "10m"}), "spec.windows.slide"),
        (lambda d: d["spec"]["windows"].update(slide="1m"), "spec.windows.slide"),
        (lambda d: d["metadata"].update(name="water.meters"), "metadata.name"),
        (lambda d: d["spec"]["rules"][0].update(severity="URGENT"), "spec.rules[0].severity"),
        (lambda d: d["spec"]["windows"].update(size="-5m"), "spec.windows.size"),
        (lambda d: d["spec"]["windows"].update(size="0s"), "spec.windows.size"),
        (lambda d: d["spec"]["rules"][0].update(measurement="Nope"), "spec.rules[0].measurement"),
        (lambda d: d["spec"]["rules"][0].update(threshold=1e9), "spec.rules[0].threshold"),
        (lambda d: d["spec"]["measurements"][0].update(min=10, max=1), "spec.measurements[0].min"),
        (lambda d: d["spec"].update(meters={"source": "file"}), "spec.meters.file"),
        (lambda d: d["spec"]["measurements"].append(dict(d["spec"]["measurements"][0])), "spec.measurements[4]"),
        (lambda d: d["spec"]["rules"].append(dict(d["spec"]["rules"][0])), "spec.rules[6].name"),
        (
            lambda d: d["spec"].update(
                rules=[{"name": "A", "kind": "threshold", "measurement": "Pulse1", "threshold": 5}]
            ),
            "spec.rules[0].condition",
        ),
        (lambda d: d["spec"].update(rules=[{"name": "B", "kind": "noData"}]), "spec.rules[0].for"),
        (
            lambda d: d["spec"].update(
                rules=[{"name": "C", "kind": "continuousFlow", "measurement": "Pulse1", "every": "7m", "count": 3}]
            ),
            "spec.rules[0].every",
        ),
        (
            lambda d: d["spec"].update(rules=[{"name": "E", "kind": "stuck", "measurement": "Pulse1", "for": "1h"}]),
            "spec.rules[0].measurement",
        ),
        (
            lambda d: d["spec"].update(
                rules=[{"name": "I", "kind": "outlier", "measurement": "Pulse1", "count": 4, "threshold": 3.5}]
            ),
            "spec.rules[0].count",
        ),
        (
            lambda d: d["spec"].update(
                rules=[{"name": "J", "kind": "outlier", "measurement": "Pulse1_Total", "count": 30, "threshold": 3}]
            ),
            "spec.rules[0].measurement",
        ),
        (
            lambda d: d["spec"].update(
                rules=[
                    {"name": "G", "measurement": "Pulse1", "condition": ">", "threshold": 500, "clearThreshold": 600}
                ]
            ),
            "spec.rules[0].clearThreshold",
        ),
        (lambda d: d["spec"]["source"].update(mqtt={"topic": "meters/up"}), "spec.source.mqtt.topic"),
        (lambda d: d["spec"]["source"].update(mqtt={"topic": "meters/m+/up"}), "spec.source.mqtt.topic"),
        (lambda d: d["spec"]["source"].update(mqtt={"topic": "meters/#/+"}), "spec.source.mqtt.topic"),
        (
            lambda d: d["spec"]["source"].update(mqtt={"topic": "a/+/b", "meterIdLevel": 2}),
            "spec.source.mqtt.meterIdLevel",
        ),
        (
            lambda d: d["spec"]["source"].update(mqtt={"topic": "a/+", "payload": {"format": "wide"}}),
            "spec.source.mqtt.payload.fields",
        ),
        (
            lambda d: d["spec"]["source"].update(
                mqtt={
                    "topic": "a/+",
                    "payload": {"format": "wide", "fields": [{"field": "co2_ppm", "measurement": "co2"}]},
                }
            ),
            "spec.source.mqtt.payload.fields[0].measurement",
        ),
    ],
)
def test_python_twins_reject_what_the_api_server_rejects(change: Callable[[dict[str, Any]], Any], field: str) -> None:
    with pytest.raises(SpecError) as error:
        parse_manifest(_changed(change))
    assert f": {field}" in str(error.value) or str(error.value).startswith(field), str(error.value)
