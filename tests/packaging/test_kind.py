"""The kind path (kind-config.yaml, deploy/kind/, the Makefile's kind-* targets) without Docker:
the manifests pass the real API server's validation (``kubectl apply --dry-run=server``), the
chart renders with the kind values, and the pieces agree with each other (ports, credentials,
image names, the demo pipeline = examples/water-meters.yaml with only the cluster's changes).

Strimzi's Kafka and KafkaNodePool CRDs are not in ../shared/crds (only KafkaTopic and KafkaUser):
those two objects are dry-run only when the CRDs are found in $METERFLOW_STRIMZI_CRDS (a folder
with 040-Crd-kafka.yaml and 045-Crd-kafkanodepool.yaml of Strimzi 1.2.0), else skipped by name.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from meterflow.spec.loader import parse_manifest
from tests.k8s.apiserver import ApiServer
from tests.k8s.fixtures import STRIMZI_CRDS
from tests.packaging.chart import REPO, one, render, template_text

KIND = REPO / "deploy" / "kind"
NS = "meterflow"
STRIMZI_CLUSTER_CRDS = ("040-Crd-kafka.yaml", "045-Crd-kafkanodepool.yaml")


def docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((KIND / name).read_text()) if d]


def manifests() -> list[dict[str, Any]]:
    """Every object under deploy/kind/ that `make kind-*` applies (not the Helm values files)."""
    found = []
    for path in sorted(KIND.glob("*.yaml")):
        if path.name.endswith("values.yaml"):
            continue
        found += docs(path.name)
    return found


def secret_value(name: str, key: str) -> str:
    secret = next(d for d in docs("secrets.yaml") if d["metadata"]["name"] == name)
    return str(secret["stringData"][key])


def strimzi_cluster_crds() -> list[Path] | None:
    folder = Path(os.environ.get("METERFLOW_STRIMZI_CRDS") or STRIMZI_CRDS)
    files = [folder / f for f in STRIMZI_CLUSTER_CRDS]
    return files if all(f.exists() for f in files) else None


def test_kind_config_maps_the_three_uis_to_node_ports() -> None:
    config = yaml.safe_load((REPO / "kind-config.yaml").read_text())
    assert config["kind"] == "Cluster" and config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    (node,) = config["nodes"]
    mappings = {m["hostPort"]: m["containerPort"] for m in node["extraPortMappings"]}
    assert mappings == {8081: 30081, 8123: 30123, 3000: 30300}
    node_ports = {}
    for obj in manifests():
        if obj["kind"] == "Service" and obj["spec"].get("type") == "NodePort":
            for port in obj["spec"]["ports"]:
                if "nodePort" in port:
                    node_ports[obj["metadata"]["name"]] = (port["port"], port["nodePort"])
    assert node_ports == {"flink-ui": (8081, 30081), "clickhouse": (8123, 30123), "grafana": (3000, 30300)}
    # the Flink UI service selects the JobManager of the streaming FlinkDeployment the operator names
    flink_ui = next(o for o in manifests() if o["metadata"]["name"] == "flink-ui")
    assert flink_ui["spec"]["selector"]["app"] == "water-meters-streaming"


def test_demo_pipeline_is_the_example_with_only_the_clusters_changes() -> None:
    (demo,) = docs("water-meters.yaml")
    example = yaml.safe_load((REPO / "examples" / "water-meters.yaml").read_text())
    expected = copy.deepcopy(example)
    expected["metadata"]["namespace"] = NS
    expected["spec"]["source"]["kafkaCluster"] = "meterflow"
    expected["spec"]["sinks"] = {
        "clickhouse": {"secretRef": {"name": "meterflow-clickhouse", "key": "dsn"}},
        "iceberg": {"secretRef": {"name": "meterflow-iceberg", "key": "uri"}, "warehouse": "s3://meterflow/warehouse"},
    }
    expected["spec"]["flink"]["image"] = "ghcr.io/meterflow/meterflow-flink:0.1.0"
    assert demo == expected
    assert parse_manifest(demo).name == "water-meters"


def test_mqtt_demo_pipeline_is_the_example_with_only_the_clusters_changes() -> None:
    (demo,) = docs("smart-building-mqtt.yaml")
    example = yaml.safe_load((REPO / "examples" / "smart-building-mqtt.yaml").read_text())
    expected = copy.deepcopy(example)
    expected["metadata"]["namespace"] = NS
    expected["spec"]["source"]["kafkaCluster"] = "meterflow"
    expected["spec"]["sinks"] = {
        "clickhouse": {"secretRef": {"name": "meterflow-clickhouse", "key": "dsn"}},
        "iceberg": {"secretRef": {"name": "meterflow-iceberg", "key": "uri"}, "warehouse": "s3://meterflow/warehouse"},
    }
    expected["spec"]["flink"]["image"] = "ghcr.io/meterflow/meterflow-flink:0.1.0"
    assert demo == expected
    assert "url" not in demo["spec"]["source"]["mqtt"]  # the chart's Mosquitto, through the operator's default
    assert parse_manifest(demo).name == "smart-building-mqtt"


def test_credentials_agree_across_the_demo() -> None:
    user, password = secret_value("meterflow-clickhouse", "username"), secret_value("meterflow-clickhouse", "password")
    assert secret_value("meterflow-clickhouse", "dsn") == f"http://{user}:{password}@clickhouse.{NS}.svc:8123/"
    pg_user, pg_password = secret_value("meterflow-iceberg", "username"), secret_value("meterflow-iceberg", "password")
    assert secret_value("meterflow-iceberg", "uri") == (
        f"postgresql://{pg_user}:{pg_password}@postgres.{NS}.svc:5432/iceberg"
    )
    values = yaml.safe_load((KIND / "values.yaml").read_text())
    assert values["grafana"]["datasource"]["username"] == user
    assert values["objectStore"]["credentialsSecret"] == "meterflow-s3"
    # the Flink operator's demo configuration carries the same MinIO user (docs/kubernetes.md, Known gaps)
    flink_conf = yaml.safe_load(yaml.safe_load((KIND / "flink-operator-values.yaml").read_text())
                                ["defaultConfiguration"]["flink-conf.yaml"])  # fmt: skip
    key, secret = (
        secret_value("meterflow-s3", "AWS_ACCESS_KEY_ID"),
        secret_value("meterflow-s3", "AWS_SECRET_ACCESS_KEY"),
    )
    assert flink_conf["s3.access-key"] == flink_conf["containerized.taskmanager.env.AWS_ACCESS_KEY_ID"] == key
    assert flink_conf["s3.secret-key"] == flink_conf["containerized.master.env.AWS_SECRET_ACCESS_KEY"] == secret
    assert flink_conf["s3.endpoint"] == values["objectStore"]["endpoint"] == "http://minio.meterflow.svc:9000"


def test_every_secret_key_referenced_exists() -> None:
    keys = {(d["metadata"]["name"], k) for d in docs("secrets.yaml") for k in d["stringData"]}
    referenced = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "secretKeyRef" in node:
                referenced.add((node["secretKeyRef"]["name"], node["secretKeyRef"]["key"]))
            if "secretRef" in node and "key" in node["secretRef"]:  # MeterPipeline sinks
                referenced.add((node["secretRef"]["name"], node["secretRef"]["key"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(manifests())
    assert referenced and referenced <= keys, referenced - keys


def test_kind_values_render_the_operator_for_the_demo() -> None:
    values = yaml.safe_load((KIND / "values.yaml").read_text())
    objects = render(values, NS)
    deployment = one(objects, "Deployment", "meterflow-operator")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/meterflow/meterflow-operator:0.1.0"
    assert container["envFrom"] == [{"secretRef": {"name": "meterflow-s3"}}]
    # the ConfigMaps deploy/kind/grafana.yaml mounts by name
    grafana = next(o for o in docs("grafana.yaml") if o["kind"] == "Deployment")
    mounted = {v["configMap"]["name"] for v in grafana["spec"]["template"]["spec"]["volumes"] if "configMap" in v}
    rendered = {o["metadata"]["name"] for o in objects if o["kind"] == "ConfigMap"}
    assert rendered == {"meterflow-dashboards", "meterflow-grafana-datasource"}
    assert rendered <= mounted
    (job,) = docs("bucket-job.yaml")
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == container["image"]


def test_makefile_applies_files_that_exist() -> None:
    makefile = (REPO / "Makefile").read_text()
    section = makefile[makefile.index("# === packaging") :]
    referenced = set(re.findall(r"deploy/kind/[\w.-]+\.yaml", section))
    assert referenced == {f"deploy/kind/{p.name}" for p in KIND.glob("*.yaml")}
    for target in (
        "images",
        "images-lint",
        "helm-lint",
        "kind-up",
        "kind-deps",
        "kind-deploy",
        "kind-demo",
        "kind-demo-mqtt",
        "kind-down",
    ):
        assert re.search(rf"^{target}:.*## ", section, re.MULTILINE), target


@pytest.mark.integration
@pytest.mark.k8s
def test_kind_manifests_pass_server_side_dry_run(chart_crds: ApiServer) -> None:
    server = chart_crds
    server.kubectl("create", "namespace", NS, check=False)  # AlreadyExists when run twice in a session
    skipped: set[str] = set()
    strimzi = strimzi_cluster_crds()
    if strimzi is not None:
        server.install_crds(strimzi)
    objects = []
    for obj in manifests():
        if obj["kind"] in ("Kafka", "KafkaNodePool") and strimzi is None:
            skipped.add(obj["kind"])
            continue
        if obj["kind"] == "Namespace":
            continue  # created above (a dry-run create of an existing one is refused)
        objects.append(obj)
    text = yaml.safe_dump_all(objects, sort_keys=False)
    result = server.kubectl("apply", "--dry-run=server", "-f", "-", input=text, check=False)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == len(objects)
    assert skipped in (set(), {"Kafka", "KafkaNodePool"})
    # the chart with the kind values, too
    kind_values = yaml.safe_load((KIND / "values.yaml").read_text())
    chart = server.kubectl("apply", "--dry-run=server", "-f", "-", input=template_text(kind_values, NS), check=False)
    assert chart.returncode == 0, chart.stderr
