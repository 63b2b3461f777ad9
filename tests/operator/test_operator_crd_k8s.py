"""The MeterPipeline CRD on a real kube-apiserver: accepted, documented, validating, printing.

No operator runs here: these are the API server's own answers to ``kubectl``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from operator_support import Cluster, example

from tests.k8s.wait import until

pytestmark = [pytest.mark.integration, pytest.mark.k8s]


def _rejected(cluster: Cluster, manifest: dict[str, Any]) -> str:
    result = cluster.server.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(manifest), check=False)
    assert result.returncode != 0, f"the API server accepted it: {result.stdout}"
    return result.stderr


def _water(cluster: Cluster) -> dict[str, Any]:
    return example("water-meters", cluster.namespace)


def test_slide_larger_than_size_is_rejected(cluster: Cluster) -> None:
    manifest = _water(cluster)
    manifest["spec"]["windows"] = {"type": "hopping", "size": "5m", "slide": "10m"}
    error = _rejected(cluster, manifest)
    assert "spec.windows.slide" in error
    assert "windows.slide must not be larger than windows.size" in error


def test_a_name_that_is_not_a_dns_label_is_rejected(cluster: Cluster) -> None:
    manifest = _water(cluster)
    manifest["metadata"]["name"] = "water.meters"  # a valid DNS subdomain, not a label
    error = _rejected(cluster, manifest)
    assert "metadata.name" in error and "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" in error


def test_an_unknown_severity_is_rejected(cluster: Cluster) -> None:
    manifest = _water(cluster)
    manifest["spec"]["rules"][0]["severity"] = "URGENT"
    error = _rejected(cluster, manifest)
    assert 'spec.rules[0].severity: Unsupported value: "URGENT"' in error
    assert '"INFO", "WARNING", "CRITICAL"' in error


@pytest.mark.parametrize("size", ["-5m", "0s"])
def test_a_negative_or_zero_window_is_rejected(cluster: Cluster, size: str) -> None:
    manifest = _water(cluster)
    manifest["spec"]["windows"]["size"] = size
    error = _rejected(cluster, manifest)
    assert "spec.windows.size" in error


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (lambda s: s["rules"][0].update(measurement="Nope"), "spec.rules", "must be one of spec.measurements"),
        (lambda s: s["rules"][0].update(threshold=1e9), "spec.rules", "within its measurement's min and max"),
        (lambda s: s["measurements"][0].update(min=10, max=1), "spec.measurements[0].min", "min must not exceed max"),
        (lambda s: s["measurements"][0].update(kind="power"), "spec.measurements[0].unit", "a rate in W, VA or var"),
        (lambda s: s.update(meters={"source": "file"}), "spec.meters.file", "meters.file is required"),
        (lambda s: s["windows"].update(slide="1m"), "spec.windows.slide", "only for hopping windows"),
        (lambda s: s["source"].update(partitions=0), "spec.source.partitions", "greater than or equal to 1"),
        (lambda s: s.update(retention="Forever"), "spec.retention", "Unsupported value"),
    ],
)
def test_cel_and_schema_rules(cluster: Cluster, change: Any, field: str, message: str) -> None:
    manifest = _water(cluster)
    change(manifest["spec"])
    error = _rejected(cluster, manifest)
    assert field in error and message in error


RULES = [
    (
        {"name": "A", "kind": "threshold", "measurement": "Pulse1", "threshold": 5},
        "spec.rules[0].condition",
        "needs measurement, condition and threshold",
    ),
    ({"name": "B", "kind": "noData"}, "spec.rules[0].for", "need for"),
    (
        {"name": "C", "kind": "continuousFlow", "measurement": "Pulse1", "every": "7m", "count": 3},
        "spec.rules[0].every",
        "a divisor of 24h",
    ),
    (
        {"name": "D", "kind": "nightFlow", "measurement": "Pulse1", "from": "02:00", "to": "02:00"}
        | {"threshold": 0, "nights": 2},
        "spec.rules[0].from",
        "from, to (different)",
    ),
    ({"name": "E", "kind": "stuck", "measurement": "Pulse1", "for": "1h"}, "spec.rules", "register, gauge or power"),
    (
        {"name": "F", "kind": "continuousFlow", "measurement": "Battery", "every": "1h", "count": 3},
        "spec.rules",
        "an interval or register measurement",
    ),
    (
        {"name": "G", "measurement": "Pulse1", "condition": ">", "threshold": 500, "clearThreshold": 600},
        "spec.rules[0].clearThreshold",
        "on the clear side of threshold",
    ),
    (
        {"name": "H", "kind": "nightFlow", "measurement": "Pulse1", "from": "2:00", "to": "05:00"}
        | {"threshold": 0, "nights": 2},
        "spec.rules[0].from",
        "should match",
    ),
    (
        {"name": "I", "kind": "outlier", "measurement": "Pulse1", "count": 4, "threshold": 3.5},
        "spec.rules[0].count",
        "at least 5",
    ),
    (
        {"name": "J", "kind": "outlier", "measurement": "Pulse1_Total", "count": 30, "threshold": 3.5},
        "spec.rules",
        "a register only grows",
    ),
]


@pytest.mark.parametrize(("rule", "field", "message"), RULES, ids=[r[0]["name"] for r in RULES])
def test_rule_kinds(cluster: Cluster, rule: dict[str, Any], field: str, message: str) -> None:
    manifest = _water(cluster)
    manifest["spec"]["rules"] = [rule]
    error = _rejected(cluster, manifest)
    assert field in error and message in error, error


ANOMALIES = [
    ({"measurements": ["Nope"]}, None, "spec.anomalies.measurements", "one measurement of spec.measurements"),
    (
        {"measurements": ["Pulse1"], "ratios": [{"numerator": "Pulse1", "denominator": "Battery"}]},
        None,
        "spec.anomalies.ratios",
        "must be one of anomalies.measurements",
    ),
    ({"measurements": ["Pulse1", "Pulse1"]}, None, ".spec.anomalies.measurements", "duplicate entries"),
    (
        {"measurements": ["Pulse1"]},
        {"type": "hopping", "size": "10m", "slide": "5m"},
        "spec.anomalies",
        "scores tumbling windows",
    ),
    ({"measurements": ["Pulse1"], "rule": "HIGH_FLOW"}, None, "spec.anomalies.rule", "must differ from every rule"),
    ({"measurements": ["Pulse1"], "contamination": 0.7}, None, "spec.anomalies.contamination", "less than or equal"),
]


@pytest.mark.parametrize(("anomalies", "windows", "field", "message"), ANOMALIES)
def test_anomaly_rules(
    cluster: Cluster, anomalies: dict[str, Any], windows: dict[str, Any] | None, field: str, message: str
) -> None:
    manifest = _water(cluster)
    manifest["spec"]["anomalies"] = anomalies
    if windows:
        manifest["spec"]["windows"] = windows
    error = _rejected(cluster, manifest)
    assert field in error and message in error, error


def test_the_industrial_example_with_its_anomaly_model_is_accepted(cluster: Cluster) -> None:
    manifest = example("industrial-sensors", cluster.namespace)
    cluster.server.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(manifest))
    stored = json.loads(
        cluster.server.kubectl("get", "meterpipeline", manifest["metadata"]["name"], "-n", cluster.namespace,
                               "-o", "json").stdout
    )  # fmt: skip
    assert stored["spec"]["anomalies"] == {
        "measurements": ["temperature", "humidity"], "stats": ["min", "max", "stddev"], "ratios": [],
        "contamination": 0.2, "trees": 100, "rule": "ANOMALY", "severity": "WARNING",
    }  # fmt: skip


def test_every_rule_kind_is_accepted(cluster: Cluster) -> None:
    manifest = _water(cluster)
    manifest["spec"]["rules"] = [
        {"name": "HIGH_FLOW", "measurement": "Pulse1", "condition": ">", "threshold": 500, "clearThreshold": 400},
        {"name": "SILENT", "kind": "noData", "for": "26h", "escalateAfter": "2d"},
        {"name": "LEAK", "kind": "continuousFlow", "measurement": "Pulse1", "every": "1h", "count": 24},
        {"name": "NIGHT", "kind": "nightFlow", "measurement": "Pulse1", "from": "23:00", "to": "05:00"}
        | {"threshold": 0, "nights": 3},
        {"name": "STUCK", "kind": "stuck", "measurement": "Pulse1_Total", "for": "48h"},
        {"name": "SPIKE", "kind": "outlier", "measurement": "Pulse1", "count": 96, "threshold": 3.5},
    ]
    cluster.apply(manifest)
    rules = (cluster.pipeline("water-meters") or {})["spec"]["rules"]
    assert [r["kind"] for r in rules] == ["threshold", "noData", "continuousFlow", "nightFlow", "stuck", "outlier"]
    assert rules[0]["severity"] == "WARNING"  # defaults applied
    cluster.delete_pipeline("water-meters")


WIDE = {"format": "wide", "fields": [{"field": "co2_ppm", "measurement": "co2"}]}


@pytest.mark.parametrize(
    ("mqtt", "field", "message"),
    [
        ({"topic": "meters/up"}, "spec.source.mqtt.topic", "needs a + level for the meter id"),
        ({"topic": "meters/m+/up"}, "spec.source.mqtt.topic", "+ and # must be whole levels"),
        ({"topic": "meters/#/+"}, "spec.source.mqtt.topic", "# may only end the filter"),
        ({"topic": "a/+/b", "meterIdLevel": 2}, "spec.source.mqtt.meterIdLevel", "must point at a + level"),
        ({"topic": "a/+", "qos": 2}, "spec.source.mqtt.qos", "less than or equal to 1"),
        ({"topic": "a/+", "url": "http://broker"}, "spec.source.mqtt.url", "should match"),
        ({"topic": "a/+", "payload": {"format": "wide"}}, "spec.source.mqtt.payload.fields", "is required when"),
        ({"topic": "a/+", "payload": WIDE}, "spec.source.mqtt.payload.fields", "must map to one measurement"),
    ],
)
def test_mqtt_rules(cluster: Cluster, mqtt: dict[str, Any], field: str, message: str) -> None:
    manifest = _water(cluster)
    manifest["spec"]["source"]["mqtt"] = mqtt
    error = _rejected(cluster, manifest)
    assert field in error and message in error, error


def test_the_mqtt_example_is_accepted_with_its_defaults(cluster: Cluster) -> None:
    manifest = example("smart-building-mqtt", cluster.namespace)
    cluster.apply(manifest)
    mqtt = (cluster.pipeline("smart-building-mqtt") or {})["spec"]["source"]["mqtt"]
    assert {k: mqtt[k] for k in ("qos", "sessionExpiry", "maxInflight", "topic")} == {
        "qos": 1,
        "sessionExpiry": "7d",
        "maxInflight": 1000,
        "topic": "buildings/+/telemetry",
    }
    assert mqtt["payload"]["fields"][2] == {"field": "co2_ppm", "measurement": "co2"}
    cluster.delete_pipeline("smart-building-mqtt")


def test_defaults_are_applied_by_the_api_server(cluster: Cluster) -> None:
    manifest = {
        "apiVersion": "meterflow.io/v1alpha1",
        "kind": "MeterPipeline",
        "metadata": {"name": "minimal", "namespace": cluster.namespace},
        "spec": {"measurements": [{"name": "Pulse1", "series": "P1", "unit": "L", "kind": "interval"}]},
    }
    cluster.apply(manifest)
    spec = (cluster.pipeline("minimal") or {})["spec"]
    assert spec["windows"] == {"type": "tumbling", "size": "5m", "watermarkDelay": "30s", "allowedLateness": "0s"}
    assert spec["flink"]["jobManager"] == {"cpu": 1, "memory": "1600m"}  # the field's default, not Resources'
    assert spec["retention"] == "Retain" and spec["suspend"] is False and spec["rules"] == []
    cluster.delete_pipeline("minimal")  # no finalizer: no operator ever saw it


def test_printer_columns(cluster: Cluster) -> None:
    cluster.apply(example("smart-building", cluster.namespace))
    status = {
        "conditions": [{"type": "Ready", "status": "True", "reason": "PipelineReady", "message": ""}],
        "streamingJobState": "RUNNING",
        "lastBatch": {"name": "smart-building-batch-202601010200", "time": "2026-01-01T02:00:00Z", "state": "FINISHED"},
    }
    cluster.custom.patch_namespaced_custom_object_status(
        "meterflow.io", "v1alpha1", cluster.namespace, "meterpipelines", "smart-building", {"status": status},
        _content_type="application/merge-patch+json",
    )  # fmt: skip
    lines = cluster.server.kubectl("get", "mp", "-n", cluster.namespace).stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "STREAMING", "LAST", "BATCH", "AGE"]
    row = lines[1].split()
    assert row[:3] == ["smart-building", "True", "RUNNING"]
    wide = cluster.server.kubectl("get", "meterpipelines.meterflow.io", "-n", cluster.namespace).stdout
    assert wide.splitlines()[0] == lines[0]
    cluster.delete_pipeline("smart-building")


def _paths(schema: dict[str, Any], prefix: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for name, sub in schema.get("properties", {}).items():
        path = f"{prefix}.{name}"
        out.append((path, sub))
        out.extend(_paths(sub.get("items", sub), path))
    return out


def test_explain_documents_every_field(cluster: Cluster) -> None:
    # the OpenAPI document the API server publishes (what `kubectl explain` renders)
    document = until(
        lambda: json.loads(cluster.server.kubectl("get", "--raw", "/openapi/v3/apis/meterflow.io/v1alpha1").stdout),
        what="the published OpenAPI v3 document",
    )
    schemas = document["components"]["schemas"]
    root = next(s for k, s in schemas.items() if k.endswith("meterflow.v1alpha1.MeterPipeline"))
    fields = _paths(root["properties"]["spec"], "spec") + _paths(root["properties"]["status"], "status")
    assert len(fields) > 60
    undocumented = [path for path, sub in fields if not sub.get("description")]
    assert undocumented == []

    explained = cluster.server.kubectl("explain", "mp.spec.windows").stdout
    for text in ("slide", "Hop between window starts", "watermarkDelay", "enum: tumbling, hopping"):
        assert text in explained
    explained = cluster.server.kubectl("explain", "mp.spec.sinks.clickhouse.secretRef").stdout
    assert "Secret key holding the DSN" in explained and "Name of the Secret" in explained
    recursive = cluster.server.kubectl("explain", "mp.spec", "--recursive").stdout
    for field in ("kafkaCluster", "watermarkDelay", "upgradeMode", "retention", "suspend", "secretRef"):
        assert field in recursive
