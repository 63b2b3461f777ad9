"""The Helm chart without a cluster: `helm lint` (also --strict), what `helm template` renders for
each mode (namespaced, cluster-wide, every extra on), and what values.schema.json refuses.

The rendered objects are checked field by field here; tests/packaging/test_chart_k8s.py then has
the real API server accept them and enforce their RBAC.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from meterflow.spec.crd import crd_yaml
from tests.packaging.chart import CHART, RELEASE, find, helm, missing_helm_reason, one, render, template_text

pytestmark = pytest.mark.skipif(missing_helm_reason() is not None, reason=missing_helm_reason() or "")

OPERATOR_RULES = [
    {"apiGroups": ["meterflow.io"], "resources": ["meterpipelines"], "verbs": ["get", "list", "watch", "patch"]},
    {"apiGroups": ["meterflow.io"], "resources": ["meterpipelines/status"], "verbs": ["patch"]},
    {"apiGroups": ["meterflow.io"], "resources": ["meterpipelines/finalizers"], "verbs": ["update"]},
    {"apiGroups": ["kafka.strimzi.io"], "resources": ["kafkatopics"], "verbs": ["list", "create", "patch", "delete"]},
    {
        "apiGroups": ["flink.apache.org"],
        "resources": ["flinkdeployments"],
        "verbs": ["get", "list", "create", "patch", "delete"],
    },
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "create", "patch", "delete"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "create", "patch", "delete"]},
    {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["get", "list", "create", "patch", "delete"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
]

# Every optional part on (namespace scope): what test_chart_k8s.py dry-runs against the API server.
ALL_ON: dict[str, Any] = {
    "rbac": {"secretNames": ["meterflow-clickhouse", "meterflow-iceberg"], "kopfObservation": True},
    "flinkServiceAccount": {"create": True},
    "defaultSinks": {
        "clickhouseDsn": {"secretName": "meterflow-defaults", "key": "dsn"},
        "icebergCatalogUri": {"secretName": "meterflow-defaults", "key": "uri"},
    },
    "objectStore": {"credentialsSecret": "meterflow-s3", "endpoint": "http://minio.meterflow:9000"},
    "examplePipeline": {"enabled": True},
    "simulator": {"enabled": True},
    "mosquitto": {"enabled": True},
    "grafana": {"dashboards": {"enabled": True}, "datasource": {"enabled": True}},
    "metrics": {"serviceMonitor": {"enabled": True}, "podMonitor": {"enabled": True}},
    "extraEnv": [{"name": "EXTRA", "value": "1"}],
    "extraArgs": ["--verbose"],
    "podAnnotations": {"example.com/a": "b"},
}


def env_of(deployment: dict[str, Any]) -> dict[str, Any]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_helm_lint_is_clean_also_strict() -> None:
    for args in ([], ["--strict"]):
        result = helm("lint", *args, str(CHART))
        assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout
        assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout, result.stdout
    # every optional part on lints clean too
    result = helm(
        "lint", "--strict", str(CHART), "--set", "examplePipeline.enabled=true,simulator.enabled=true",
        "--set", "grafana.dashboards.enabled=true,grafana.datasource.enabled=true,flinkServiceAccount.create=true",
    )  # fmt: skip
    assert "0 chart(s) failed" in result.stdout and "[WARNING]" not in result.stdout, result.stdout


def test_chart_metadata_and_crd() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["appVersion"] == "0.1.0"
    assert chart["kubeVersion"] == ">=1.30.0-0"
    # the CRD in crds/ is exactly what `meterflow crd` generates (make crd)
    assert (CHART / "crds" / "meterpipelines.meterflow.io.yaml").read_text() == crd_yaml()


def test_default_render_is_the_operator_with_a_namespaced_role() -> None:
    objects = render(namespace="mf")
    assert sorted((o["kind"], o["metadata"]["name"]) for o in objects) == [
        ("Deployment", "meterflow-operator"),
        ("Role", "meterflow-operator"),
        ("RoleBinding", "meterflow-operator"),
        ("ServiceAccount", "meterflow-operator"),
    ]
    assert all(o["metadata"]["namespace"] == "mf" for o in objects)
    assert one(objects, "Role")["rules"] == OPERATOR_RULES
    binding = one(objects, "RoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "meterflow-operator"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "meterflow-operator", "namespace": "mf"}]


def test_operator_deployment_is_hardened_and_probed() -> None:
    deployment = one(render(namespace="mf"), "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "meterflow-operator"
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/meterflow/meterflow-operator:0.1.0"
    assert container["args"] == ["--namespace=mf", "--liveness=http://0.0.0.0:8080/healthz"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
    }
    probe = {"httpGet": {"path": "/healthz", "port": "health"}}
    assert container["livenessProbe"] == probe | {
        "initialDelaySeconds": 10, "periodSeconds": 20, "timeoutSeconds": 5, "failureThreshold": 3,
    }  # fmt: skip
    assert container["readinessProbe"] == probe | {
        "initialDelaySeconds": 5, "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3,
    }  # fmt: skip
    assert container["ports"] == [
        {"name": "health", "containerPort": 8080, "protocol": "TCP"},
        {"name": "metrics", "containerPort": 9464, "protocol": "TCP"},
    ]
    assert container["resources"] == {
        "requests": {"cpu": "100m", "memory": "256Mi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    }
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}]


def test_operator_settings_reach_the_environment() -> None:
    """Every field of meterflow_operator.settings.Settings has its METERFLOW_OPERATOR_* variable."""
    from dataclasses import fields

    from meterflow_operator.settings import PREFIX, Settings

    env = env_of(one(render(namespace="mf"), "Deployment"))
    assert env == {
        "METERFLOW_OPERATOR_FLINK_SERVICE_ACCOUNT": "flink",
        "METERFLOW_OPERATOR_STATE_URI": "s3://meterflow/flink",
        "METERFLOW_OPERATOR_ICEBERG_WAREHOUSE": "s3://meterflow/warehouse",
        "METERFLOW_OPERATOR_RESYNC_SECONDS": "10",
        "METERFLOW_OPERATOR_BATCH_HISTORY": "3",
        "METERFLOW_OPERATOR_RETRY_SECONDS": "5",
        "METERFLOW_OPERATOR_MAX_RETRY_SECONDS": "120",
        "METERFLOW_OPERATOR_BLOCKED_RETRY_SECONDS": "600",
        "METERFLOW_OPERATOR_DEFAULT_BACKOFF": "10",
        "METERFLOW_OPERATOR_SERVER_TIMEOUT": "300",
        "METERFLOW_OPERATOR_CLIENT_TIMEOUT": "330",
        "METERFLOW_OPERATOR_MAX_WORKERS": "8",
        "METERFLOW_OPERATOR_POSTING_LEVEL": "INFO",
        "METERFLOW_OPERATOR_MQTT_URL": "",
        "METERFLOW_OPERATOR_BRIDGE_IMAGE": "ghcr.io/meterflow/meterflow-operator:0.1.0",
        "METERFLOW_OPERATOR_METRICS_PORT": "9464",
        "METERFLOW_OPERATOR_PUSHGATEWAY_URL": "",
        "AWS_REGION": "us-east-1",
        "HOME": "/tmp",
    }
    # the defaults of the chart are the operator's own defaults
    settings = Settings.from_env({k: str(v) for k, v in env.items()})
    assert settings == Settings()
    # ... and the two that come from Secrets are the remaining fields
    chart_fields = {k.removeprefix(PREFIX).lower() for k in env if k.startswith(PREFIX)}
    assert {f.name for f in fields(Settings)} - chart_fields == {"clickhouse_dsn", "iceberg_catalog_uri"}


def test_default_sinks_and_object_store_come_from_secrets_never_inline() -> None:
    objects = render(ALL_ON, "mf")
    deployment = one(objects, "Deployment", "meterflow-operator")
    env = env_of(deployment)
    assert env["METERFLOW_OPERATOR_CLICKHOUSE_DSN"] == {"secretKeyRef": {"name": "meterflow-defaults", "key": "dsn"}}
    assert env["METERFLOW_OPERATOR_ICEBERG_CATALOG_URI"] == {
        "secretKeyRef": {"name": "meterflow-defaults", "key": "uri"}
    }
    assert env["AWS_ENDPOINT_URL"] == "http://minio.meterflow:9000"
    assert env["EXTRA"] == "1"
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": "meterflow-s3"}}]
    assert container["args"] == ["--namespace=mf", "--liveness=http://0.0.0.0:8080/healthz", "--verbose"]
    # no Secret objects and no credentials anywhere in the rendered chart
    assert not find(objects, "Secret")
    # the only password is the Grafana datasource's reference to Grafana's own environment
    passwords = [line.strip() for line in template_text(ALL_ON, "mf").splitlines() if "password" in line.lower()]
    assert passwords == ["password: $MF_CLICKHOUSE_PASSWORD"]


def test_watched_namespaces_get_one_role_each() -> None:
    objects = render({"watch": {"namespaces": ["a", "b"]}}, "mf")
    roles = find(objects, "Role")
    assert [(r["metadata"]["namespace"], r["rules"]) for r in roles] == [("a", OPERATOR_RULES), ("b", OPERATOR_RULES)]
    bindings = find(objects, "RoleBinding")
    assert [b["metadata"]["namespace"] for b in bindings] == ["a", "b"]
    # the subject is the operator's account in the release namespace
    assert all(b["subjects"][0]["namespace"] == "mf" for b in bindings)
    container = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:2] == ["--namespace=a", "--namespace=b"]
    assert not find(objects, "ClusterRole") and not find(objects, "ClusterRoleBinding")


def test_cluster_wide_mode_uses_a_cluster_role_and_all_namespaces() -> None:
    objects = render({"watch": {"clusterWide": True}}, "mf")
    assert not find(objects, "Role") and not find(objects, "RoleBinding")
    assert one(objects, "ClusterRole", "meterflow-operator")["rules"] == OPERATOR_RULES
    binding = one(objects, "ClusterRoleBinding", "meterflow-operator")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "meterflow-operator", "namespace": "mf"}]
    container = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["--all-namespaces", "--liveness=http://0.0.0.0:8080/healthz"]


def test_kopf_observation_and_secret_names() -> None:
    objects = render({"rbac": {"kopfObservation": True, "secretNames": ["ch"]}}, "mf")
    observation = one(objects, "ClusterRole", "meterflow-kopf-observation")
    assert observation["rules"] == [
        {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"], "verbs": ["list", "watch"]},
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
    ]
    secrets_rule = next(r for r in one(objects, "Role")["rules"] if r["resources"] == ["secrets"])
    assert secrets_rule == {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["ch"]}
    # cluster-wide kopf never lists namespaces: only the CRD rule
    cluster = render({"watch": {"clusterWide": True}, "rbac": {"kopfObservation": True}}, "mf")
    assert one(cluster, "ClusterRole", "meterflow-kopf-observation")["rules"] == observation["rules"][:1]


def test_flink_service_account_has_the_flink_operators_job_role() -> None:
    objects = render({"flinkServiceAccount": {"create": True}, "watch": {"namespaces": ["a", "b"]}}, "mf")
    accounts = [o for o in find(objects, "ServiceAccount") if o["metadata"]["name"] == "flink"]
    assert [a["metadata"]["namespace"] for a in accounts] == ["a", "b"]
    role = find(objects, "Role", "flink")[0]
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["pods", "configmaps"],
            "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
        },
        {
            "apiGroups": ["apps"],
            "resources": ["deployments", "deployments/finalizers"],
            "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
        },
    ]
    binding = find(objects, "RoleBinding", "flink")[0]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "flink", "namespace": "a"}]


def test_extras_render_the_pipeline_simulator_and_grafana() -> None:
    objects = render(ALL_ON, "mf")
    pipeline = one(objects, "MeterPipeline", "water-meters")
    assert pipeline["metadata"]["namespace"] == "mf"
    assert pipeline["spec"]["sinks"]["clickhouse"] == {"secretRef": {"name": "meterflow-clickhouse", "key": "dsn"}}
    # the example spec is a valid MeterPipeline for the shared model too
    from meterflow.spec.loader import parse_manifest

    assert parse_manifest(pipeline).name == "water-meters"

    simulator = one(objects, "Deployment", "meterflow-simulator")
    pod = simulator["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/meterflow/meterflow-operator:0.1.0"
    assert container["args"] == [
        "exec meterflow simulate --file /opt/meterflow/pipeline.yaml --meters 200 --speedup 60 --duration 7d "
        '--start "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --inject --via kafka --no-progress'
    ]
    assert pod["volumes"][0] == {"name": "manifest", "configMap": {"name": "water-meters-pipeline"}}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True

    dashboards = one(objects, "ConfigMap", "meterflow-dashboards")
    assert dashboards["metadata"]["labels"]["grafana_dashboard"] == "1"
    for name in ("meterflow.json", "pipeline-health.json"):
        assert json.loads(dashboards["data"][name]) == json.loads((CHART / "dashboards" / name).read_text())
    datasource = one(objects, "ConfigMap", "meterflow-grafana-datasource")
    assert datasource["metadata"]["labels"]["grafana_datasource"] == "1"
    provisioning = yaml.safe_load(datasource["data"]["meterflow-clickhouse.yaml"])
    assert provisioning["datasources"][0] == {
        "name": "meterflow ClickHouse",
        "uid": "meterflow-clickhouse",
        "type": "grafana-clickhouse-datasource",
        "jsonData": {
            "host": "clickhouse",
            "port": 8123,
            "protocol": "http",
            "secure": False,
            "username": "default",
            "defaultDatabase": "water_meters",
        },
        "secureJsonData": {"password": "$MF_CLICKHOUSE_PASSWORD"},
    }


def test_monitors_are_off_by_default_and_scrape_the_operator_and_the_pipelines() -> None:
    assert not find(render(namespace="mf"), "ServiceMonitor") and not find(render(namespace="mf"), "PodMonitor")
    values = {
        "metrics": {
            "serviceMonitor": {"enabled": True, "interval": "15s", "labels": {"release": "prometheus"}},
            "podMonitor": {"enabled": True},
        },
        "watch": {"namespaces": ["a", "b"]},
    }
    objects = render(values, "mf")
    service = one(objects, "Service", "meterflow-operator-metrics")
    selector = {"app.kubernetes.io/name": "meterflow", "app.kubernetes.io/instance": "meterflow"}
    assert service["spec"]["selector"] == selector | {"app.kubernetes.io/component": "operator"}
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9464, "targetPort": "metrics", "protocol": "TCP"}]
    monitor = one(objects, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    # the ServiceMonitor selects the Service, the Service the operator's pod
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    endpoint = {"port": "metrics", "path": "/metrics", "interval": "15s", "honorLabels": True}
    assert monitor["spec"]["endpoints"] == [endpoint]
    pods = one(objects, "PodMonitor")
    assert pods["spec"]["namespaceSelector"] == {"matchNames": ["a", "b"]}
    assert pods["spec"]["selector"]["matchExpressions"] == [
        {"key": "meterflow.io/pipeline", "operator": "Exists"},
        {"key": "meterflow.io/component", "operator": "In", "values": ["streaming", "batch"]},
    ]
    # the ports the operator's FlinkDeployments declare (operator/meterflow_operator/render/flink.py)
    from meterflow_operator.render.flink import FLINK_METRICS_PORT_NAME, METRICS_PORT_NAME

    assert [e["port"] for e in pods["spec"]["podMetricsEndpoints"]] == [FLINK_METRICS_PORT_NAME, METRICS_PORT_NAME]
    cluster_wide = one(render(values | {"watch": {"clusterWide": True}}, "mf"), "PodMonitor")
    assert cluster_wide["spec"]["namespaceSelector"] == {"any": True}
    # the Pushgateway reaches the operator, which gives it to the batch runs
    pushing = env_of(one(render({"metrics": {"pushgateway": "http://pg.monitoring:9091"}}, "mf"), "Deployment"))
    assert pushing["METERFLOW_OPERATOR_PUSHGATEWAY_URL"] == "http://pg.monitoring:9091"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["--set", "replicaCount=-1"], "at '/replicaCount': minimum: got -1, want 0"),
        (["--set", "replicaCount=2"], "at '/replicaCount': maximum: got 2, want 1"),
        (["--set", "settings.postingLevel=LOUD"], "at '/settings/postingLevel': value must be one of"),
        (["--set", "settings.resyncSeconds=0"], "at '/settings/resyncSeconds': exclusiveMinimum: got 0, want 0"),
        (["--set", "settings.stateUri=/tmp/state"], "at '/settings/stateUri': '/tmp/state' does not match pattern"),
        (["--set", "image.pullPolicy=Sometimes"], "at '/image/pullPolicy': value must be one of"),
        (["--set", "replicas=1"], "additional properties 'replicas' not allowed"),
        (
            ["--set", "watch.namespaces[0]=Not_A_Namespace"],
            "at '/watch/namespaces/0': 'Not_A_Namespace' does not match",
        ),
        (["--set", "simulator.meters=0"], "at '/simulator/meters': minimum: got 0, want 1"),
        (["--set", "resources.limits.memory=lots"], "at '/resources/limits/memory'"),
        (["--set", "mosquitto.autosaveInterval=0"], "at '/mosquitto/autosaveInterval': minimum: got 0, want 1"),
        (["--set", "metrics.port=0"], "at '/metrics/port': minimum: got 0, want 1"),
        (["--set", "metrics.podMonitor.interval=often"], "at '/metrics/podMonitor/interval': 'often' does not match"),
        (["--set", "metrics.pushgateway=pg:9091"], "at '/metrics/pushgateway': 'pg:9091' does not match"),
        (["--set", "metrics.serviceMonitor.on=true"], "additional properties 'on' not allowed"),
        (["--set", "mosquitto.persistence.size=big"], "at '/mosquitto/persistence/size': 'big' does not match"),
        (["--set", "mosquitto.replicas=2"], "additional properties 'replicas' not allowed"),
        (["--set", "settings.mqttUrl=http://broker"], "at '/settings/mqttUrl': 'http://broker' does not match"),
        (["--set", "simulator.via=pigeon"], "at '/simulator/via': value must be one of"),
    ],
)
def test_values_schema_rejects_bad_values_with_a_clear_message(values: list[str], message: str) -> None:
    result = helm("template", RELEASE, str(CHART), *values, check=False)
    assert result.returncode == 1
    assert "values don't meet the specifications of the schema(s)" in result.stderr
    assert message in result.stderr, result.stderr


def test_cluster_wide_and_namespaces_exclude_each_other() -> None:
    result = helm(
        "template",
        RELEASE,
        str(CHART),
        "--set",
        "watch.clusterWide=true",
        "--set",
        "watch.namespaces[0]=a",
        check=False,
    )
    assert result.returncode == 1
    assert "watch.namespaces and watch.clusterWide exclude each other" in result.stderr


def test_kube_version_is_enforced() -> None:
    result = helm("template", RELEASE, str(CHART), "--kube-version", "1.29.0", check=False)
    assert result.returncode == 1
    assert "chart requires kubeVersion: >=1.30.0-0 which is incompatible with Kubernetes v1.29.0" in result.stderr


def test_mosquitto_for_the_kind_demo() -> None:
    """Off by default; on: a persistent Mosquitto that drops nothing, and its URL is the operator's default."""
    assert find(render({}, "mf"), "Deployment", "meterflow-mosquitto") == []
    objects = render({"mosquitto": {"enabled": True}}, "mf")
    config = one(objects, "ConfigMap", "meterflow-mosquitto")["data"]["mosquitto.conf"].splitlines()
    assert config == [
        "listener 1883",
        "allow_anonymous true",
        "persistence true",
        "persistence_location /mosquitto/data/",
        "autosave_interval 10",
        "max_queued_messages 0",
        "max_queued_bytes 536870912",
        "max_inflight_messages 1000",
        "persistent_client_expiration 14d",
        "log_dest stdout",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
    ]
    service = one(objects, "Service", "meterflow-mosquitto")
    assert service["spec"]["ports"] == [{"name": "mqtt", "port": 1883, "targetPort": "mqtt"}]
    claim = one(objects, "PersistentVolumeClaim", "meterflow-mosquitto")
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    deployment = one(objects, "Deployment", "meterflow-mosquitto")
    assert deployment["spec"]["strategy"] == {"type": "Recreate"} and deployment["spec"]["replicas"] == 1
    pod = deployment["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsUser"] == 1883
    (container,) = pod["containers"]
    assert container["image"] == "eclipse-mosquitto:2.0.20"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {v["name"]: v for v in pod["volumes"]}["data"] == {
        "name": "data",
        "persistentVolumeClaim": {"claimName": "meterflow-mosquitto"},
    }
    env = env_of(one(objects, "Deployment", "meterflow-operator"))
    assert env["METERFLOW_OPERATOR_MQTT_URL"] == "mqtt://meterflow-mosquitto.mf.svc:1883"
    ephemeral = render({"mosquitto": {"enabled": True, "persistence": {"enabled": False, "size": "1Gi"}}}, "mf")
    assert find(ephemeral, "PersistentVolumeClaim", "meterflow-mosquitto") == []
    own = render({"mosquitto": {"enabled": True}, "settings": {"mqttUrl": "mqtts://broker.example:8883"}}, "mf")
    assert env_of(one(own, "Deployment", "meterflow-operator"))["METERFLOW_OPERATOR_MQTT_URL"] == (
        "mqtts://broker.example:8883"
    )
