"""The operator's pure render functions, without a cluster: the exact objects they return."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from operator_support import REPO

from meterflow.spec import load_manifest
from meterflow.spec.model import MeterPipeline
from meterflow_operator.apply import owned, owner_reference
from meterflow_operator.render import (
    render_batch,
    render_bridge_deployment,
    render_bridge_service_account,
    render_config_map,
    render_flink_deployment,
    render_topics,
)
from meterflow_operator.render.batch import (
    due_run,
    last_due,
    latest_run,
    manual_run_name,
    next_due,
    rfc3339,
    runs_to_prune,
    scheduled_run_name,
)
from meterflow_operator.render.bridge import bridge_name
from meterflow_operator.render.common import flink_name
from meterflow_operator.render.flink import manifest_digest
from meterflow_operator.settings import Settings
from meterflow_operator.status import bridge_condition

SETTINGS = Settings()


def pipeline(name: str = "water-meters", namespace: str = "prod", **spec: Any) -> MeterPipeline:
    document = yaml.safe_load((REPO / "examples" / f"{name}.yaml").read_text())
    document["metadata"]["namespace"] = namespace
    for key, value in spec.items():
        document["spec"][key] = value
    from meterflow.spec import parse_manifest

    return parse_manifest(document)


LABELS = {
    "app.kubernetes.io/name": "meterflow",
    "app.kubernetes.io/instance": "water-meters",
    "app.kubernetes.io/part-of": "meterflow",
    "app.kubernetes.io/managed-by": "meterflow-operator",
    "meterflow.io/pipeline": "water-meters",
}


def test_render_topics() -> None:
    topics = render_topics(pipeline())
    assert [t["metadata"]["name"] for t in topics] == [
        "water-meters.readings",
        "water-meters.readings.dlq",
        "water-meters.aggregates",
        "water-meters.alerts",
        "water-meters.meters",
        "water-meters.counters",
        "water-meters.alert-commands",
    ]
    assert topics[0] == {
        "apiVersion": "kafka.strimzi.io/v1",
        "kind": "KafkaTopic",
        "metadata": {
            "name": "water-meters.readings",
            "namespace": "prod",
            "labels": LABELS
            | {
                "app.kubernetes.io/component": "topic",
                "meterflow.io/component": "topic",
                "meterflow.io/role": "readings",
                "strimzi.io/cluster": "meterflow",
            },
        },
        "spec": {
            "topicName": "water-meters.readings",
            "partitions": 3,
            "replicas": 1,
            "config": {"retention.ms": "604800000", "cleanup.policy": "delete"},
        },
    }
    meters = topics[4]
    assert meters["spec"] == {
        "topicName": "water-meters.meters",
        "partitions": 1,
        "replicas": 1,
        "config": {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1", "segment.ms": "3600000"},
    }
    assert meters["metadata"]["labels"]["meterflow.io/role"] == "meters"


def test_render_topics_follows_the_source_spec() -> None:
    topics = render_topics(
        pipeline(source={"partitions": 12, "replicas": 3, "kafkaCluster": "events", "retention": "1d"})
    )
    readings = topics[0]
    assert readings["metadata"]["labels"]["strimzi.io/cluster"] == "events"
    assert readings["spec"]["partitions"] == 12 and readings["spec"]["replicas"] == 3
    assert readings["spec"]["config"]["retention.ms"] == "86400000"
    assert {t["spec"]["replicas"] for t in topics} == {3}


def test_render_config_map() -> None:
    cm = render_config_map(pipeline(), SETTINGS)
    assert cm["apiVersion"] == "v1" and cm["kind"] == "ConfigMap"
    assert cm["metadata"] == {
        "name": "water-meters-pipeline",
        "namespace": "prod",
        "labels": LABELS | {"app.kubernetes.io/component": "config", "meterflow.io/component": "config"},
    }
    mounted = yaml.safe_load(cm["data"]["pipeline.yaml"])
    assert list(cm["data"]) == ["pipeline.yaml"]
    assert mounted["metadata"] == {"name": "water-meters", "namespace": "prod"}
    assert mounted["spec"]["source"]["bootstrapServers"] == "meterflow-kafka-bootstrap:9092"
    assert mounted["spec"]["sinks"]["clickhouse"] == {}  # no default configured: nothing invented
    assert mounted["spec"]["sinks"]["iceberg"]["warehouse"] == "s3://meterflow/warehouse"
    # the mounted manifest loads back into the same pipeline
    assert load_manifest_text(cm["data"]["pipeline.yaml"]).spec.measurements == pipeline().spec.measurements


def load_manifest_text(text: str) -> MeterPipeline:
    from meterflow.spec import parse_manifest

    return parse_manifest(yaml.safe_load(text))


def test_render_config_map_uses_operator_defaults_only_for_open_sinks() -> None:
    settings = Settings(clickhouse_dsn="http://clickhouse:8123", iceberg_catalog_uri="postgresql://pg/iceberg")
    open_sinks = yaml.safe_load(render_config_map(pipeline(), settings)["data"]["pipeline.yaml"])["spec"]["sinks"]
    assert open_sinks["clickhouse"] == {"dsn": "http://clickhouse:8123"}
    assert open_sinks["iceberg"]["catalogUri"] == "postgresql://pg/iceberg"
    secret = {
        "clickhouse": {"secretRef": {"name": "ch", "key": "dsn"}},
        "iceberg": {"secretRef": {"name": "lake", "key": "uri"}},
    }
    closed = yaml.safe_load(render_config_map(pipeline(sinks=secret), settings)["data"]["pipeline.yaml"])["spec"][
        "sinks"
    ]
    assert closed["clickhouse"] == {"secretRef": {"name": "ch", "key": "dsn"}}
    assert "catalogUri" not in closed["iceberg"]
    given = {"clickhouse": {"dsn": "chdb:///data/ch"}, "iceberg": {"catalogUri": "sqlite:////data/c.db"}}
    kept = yaml.safe_load(render_config_map(pipeline(sinks=given), settings)["data"]["pipeline.yaml"])["spec"]["sinks"]
    assert kept["clickhouse"] == {"dsn": "chdb:///data/ch"}
    assert kept["iceberg"]["catalogUri"] == "sqlite:////data/c.db"


def test_render_flink_deployment() -> None:
    p = pipeline()
    fd = render_flink_deployment(p, SETTINGS)
    state = "s3://meterflow/flink/prod/water-meters"
    assert fd == {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {
            "name": "water-meters-streaming",
            "namespace": "prod",
            "labels": LABELS | {"app.kubernetes.io/component": "streaming", "meterflow.io/component": "streaming"},
        },
        "spec": {
            "image": "ghcr.io/meterflow/meterflow-flink:0.1.0",
            "flinkVersion": "v2_2",
            "mode": "native",
            "serviceAccount": "flink",
            "flinkConfiguration": {
                "taskmanager.numberOfTaskSlots": "2",
                "execution.checkpointing.interval": "10000ms",
                "execution.checkpointing.dir": f"{state}/checkpoints",
                "execution.checkpointing.savepoint-dir": f"{state}/savepoints",
                "state.checkpoints.dir": f"{state}/checkpoints",
                "state.savepoints.dir": f"{state}/savepoints",
                "metrics.reporter.prom.factory.class": "org.apache.flink.metrics.prometheus.PrometheusReporterFactory",
                "metrics.reporter.prom.port": "9249",
                "metrics.reporter.prom.scope.variables.additional": "pipeline:water-meters",
                "metrics.reporter.prom.filterLabelValueCharacters": "false",
            },
            "podTemplate": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "labels": {"meterflow.io/pipeline": "water-meters", "meterflow.io/component": "streaming"},
                    "annotations": {"meterflow.io/manifest-digest": manifest_digest(p, SETTINGS)},
                },
                "spec": {
                    "containers": [
                        {
                            "name": "flink-main-container",
                            "ports": [{"name": "flink-metrics", "containerPort": 9249, "protocol": "TCP"}],
                            "volumeMounts": [
                                {"name": "pipeline-manifest", "mountPath": "/opt/meterflow", "readOnly": True}
                            ],
                        }
                    ],
                    "volumes": [{"name": "pipeline-manifest", "configMap": {"name": "water-meters-pipeline"}}],
                },
            },
            "jobManager": {
                "replicas": 1,
                "resource": {"cpu": 1.0, "memory": "1600m"},
                # meterflow's own /metrics: the serving sink runs in the JobManager
                "podTemplate": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "spec": {
                        "containers": [
                            {
                                "name": "flink-main-container",
                                "ports": [{"name": "metrics", "containerPort": 9464, "protocol": "TCP"}],
                            }
                        ]
                    },
                },
            },
            "taskManager": {"resource": {"cpu": 1.0, "memory": "2048m"}},
            "job": {
                "jarURI": "local:///opt/flink/opt/flink-python-2.2.1.jar",
                "entryClass": "org.apache.flink.client.python.PythonDriver",
                "args": ["-pym", "flink_jobs.streaming", "--manifest", "/opt/meterflow/pipeline.yaml"],
                "parallelism": 1,
                "upgradeMode": "savepoint",
                "state": "running",
            },
        },
    }


def test_render_flink_deployment_follows_the_flink_spec() -> None:
    flink = {
        "image": "registry.local/mf:2",
        "parallelism": 4,
        "taskSlots": 4,
        "jobManager": {"cpu": 0.5, "memory": "1Gi"},
        "taskManager": {"cpu": 2, "memory": "4Gi"},
        "upgradeMode": "last-state",
        "checkpointInterval": "1m",
        "checkpointDir": "s3://ckpt/wm",
        "savepointDir": "s3://svp/wm",
    }
    settings = Settings(flink_service_account="flink-jobs", state_uri="s3://state/")
    spec = render_flink_deployment(pipeline(flink=flink, suspend=True), settings)["spec"]
    assert spec["image"] == "registry.local/mf:2"
    assert spec["serviceAccount"] == "flink-jobs"
    assert spec["job"]["parallelism"] == 4
    assert spec["job"]["upgradeMode"] == "last-state"
    assert spec["job"]["state"] == "suspended"
    assert spec["jobManager"]["resource"] == {"cpu": 0.5, "memory": "1Gi"}
    assert spec["taskManager"]["resource"] == {"cpu": 2.0, "memory": "4Gi"}
    assert spec["flinkConfiguration"] == {
        "taskmanager.numberOfTaskSlots": "4",
        "execution.checkpointing.interval": "60000ms",
        "execution.checkpointing.dir": "s3://ckpt/wm",
        "execution.checkpointing.savepoint-dir": "s3://svp/wm",
        "state.checkpoints.dir": "s3://ckpt/wm",
        "state.savepoints.dir": "s3://svp/wm",
        "metrics.reporter.prom.factory.class": "org.apache.flink.metrics.prometheus.PrometheusReporterFactory",
        "metrics.reporter.prom.port": "9249",
        "metrics.reporter.prom.scope.variables.additional": "pipeline:water-meters",
        "metrics.reporter.prom.filterLabelValueCharacters": "false",
        "high-availability.type": "kubernetes",
        "high-availability.storageDir": "s3://state/prod/water-meters/ha",
    }


def test_secrets_reach_the_pods_by_reference_only() -> None:
    sinks = {
        "clickhouse": {"secretRef": {"name": "ch-cred", "key": "dsn"}},
        "iceberg": {"secretRef": {"name": "lake-cred", "key": "catalog-uri"}, "warehouse": "s3://lake/wh"},
    }
    p = pipeline(sinks=sinks)
    container = render_flink_deployment(p, SETTINGS)["spec"]["podTemplate"]["spec"]["containers"][0]
    assert container["env"] == [
        {"name": "METERFLOW_CLICKHOUSE_DSN", "valueFrom": {"secretKeyRef": {"name": "ch-cred", "key": "dsn"}}},
        {
            "name": "METERFLOW_ICEBERG_CATALOG_URI",
            "valueFrom": {"secretKeyRef": {"name": "lake-cred", "key": "catalog-uri"}},
        },
    ]


def test_manifest_digest_changes_with_the_manifest() -> None:
    assert manifest_digest(pipeline(), SETTINGS) == manifest_digest(pipeline(), SETTINGS)
    assert manifest_digest(pipeline(), SETTINGS) != manifest_digest(pipeline(rules=[]), SETTINGS)


def test_render_batch() -> None:
    when = datetime(2026, 11, 22, 15, 30, tzinfo=UTC)  # 01:30 in Brisbane
    run = render_batch(pipeline(), SETTINGS, when)
    assert run["metadata"]["name"] == "water-meters-batch-202611221530"
    assert run["metadata"]["annotations"] == {
        "meterflow.io/scheduled-time": "2026-11-22T15:30:00Z",
        "meterflow.io/trigger": "schedule",
    }
    assert run["metadata"]["labels"]["meterflow.io/component"] == "batch"
    job = run["spec"]["job"]
    assert job["args"] == ["-pym", "flink_jobs.batch", "--manifest", "/opt/meterflow/pipeline.yaml"]
    assert job["upgradeMode"] == "stateless" and job["state"] == "running"
    assert "high-availability.type" not in run["spec"]["flinkConfiguration"]
    volumes = run["spec"]["podTemplate"]["spec"]["volumes"]
    assert volumes == [{"name": "pipeline-manifest", "configMap": {"name": "water-meters-pipeline"}}]
    # Flink's reporter on, no meterflow endpoint (a batch run pushes), and no Pushgateway unless set
    assert run["spec"]["flinkConfiguration"]["metrics.reporter.prom.port"] == "9249"
    assert "podTemplate" not in run["spec"]["jobManager"]
    assert "env" not in run["spec"]["podTemplate"]["spec"]["containers"][0]
    pushing = render_batch(pipeline(), Settings(pushgateway_url="http://pushgateway.monitoring:9091"), when)
    assert pushing["spec"]["podTemplate"]["spec"]["containers"][0]["env"] == [
        {"name": "METERFLOW_PUSHGATEWAY", "value": "http://pushgateway.monitoring:9091"}
    ]
    manual = render_batch(pipeline(), SETTINGS, when, manual_token="now")
    assert manual["metadata"]["name"] == manual_run_name(pipeline(), "now")
    assert manual["metadata"]["name"].startswith("water-meters-batch-manual-")
    assert manual["metadata"]["annotations"]["meterflow.io/trigger"] == "manual"


def test_flink_names_are_valid_flink_deployment_names() -> None:
    assert flink_name(pipeline(), "streaming") == "water-meters-streaming"
    long = pipeline().model_copy(
        update={
            "metadata": pipeline().metadata.model_copy(
                update={"name": "a-very-long-pipeline-name-for-the-sunshine-coast"}
            )
        }
    )
    names = {flink_name(long, "streaming"), scheduled_run_name(long, datetime(2026, 1, 1, tzinfo=UTC))}
    for name in names:
        assert len(name) <= 45 and name[0].isalpha() and name[-1].isalnum()
    assert flink_name(long, "streaming").endswith("-streaming")
    digit = pipeline().model_copy(update={"metadata": pipeline().metadata.model_copy(update={"name": "7th-floor"})})
    assert flink_name(digit, "streaming") == "mf-7th-floor-streaming"


def test_owner_reference() -> None:
    owner = {
        "apiVersion": "meterflow.io/v1alpha1",
        "kind": "MeterPipeline",
        "metadata": {"name": "water-meters", "namespace": "prod", "uid": "1234"},
    }
    assert owner_reference(owner) == {
        "apiVersion": "meterflow.io/v1alpha1",
        "kind": "MeterPipeline",
        "name": "water-meters",
        "uid": "1234",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    topic = render_topics(pipeline())[0]
    child = owned(topic, owner)
    assert child["metadata"]["ownerReferences"] == [owner_reference(owner)]
    assert "ownerReferences" not in topic["metadata"]  # the render result is not touched


# --- the schedule ------------------------------------------------------------------------------


BRISBANE = "Australia/Brisbane"


def test_last_and_next_due_read_the_cron_in_the_time_zone() -> None:
    now = datetime(2026, 11, 22, 16, 0, tzinfo=UTC)  # 02:00 in Brisbane (UTC+10)
    assert last_due("30 1 * * *", BRISBANE, now) == datetime(2026, 11, 22, 15, 30, tzinfo=UTC)
    assert next_due("30 1 * * *", BRISBANE, now).isoformat() == "2026-11-24T01:30:00+10:00"
    exactly = datetime(2026, 11, 22, 15, 30, tzinfo=UTC)
    assert last_due("30 1 * * *", BRISBANE, exactly) == exactly  # at the minute: due now


def test_due_run() -> None:
    created = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    slot = datetime(2026, 11, 22, 15, 30, tzinfo=UTC)
    assert due_run("30 1 * * *", BRISBANE, datetime(2026, 11, 22, 15, 29, tzinfo=UTC), created) == datetime(
        2026, 11, 21, 15, 30, tzinfo=UTC
    )
    assert due_run("30 1 * * *", BRISBANE, datetime(2026, 11, 22, 15, 31, tzinfo=UTC), created) == slot
    # already run for that slot: nothing due until the next one
    assert due_run("30 1 * * *", BRISBANE, datetime(2026, 11, 22, 18, 0, tzinfo=UTC), slot) is None
    # created after the last slot: the first run is the next slot, not a catch-up
    assert due_run("30 1 * * *", BRISBANE, datetime(2026, 11, 22, 18, 0, tzinfo=UTC), slot.replace(minute=45)) is None
    # down for three days: one run (the latest missed slot), not three
    later = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
    assert due_run("30 1 * * *", BRISBANE, later, slot) == datetime(2026, 11, 25, 15, 30, tzinfo=UTC)


def test_due_run_across_daylight_saving() -> None:
    # Europe/Paris leaves summer time on 2026-10-25: 00:15 local is 22:15 UTC before, 23:15 UTC after
    assert last_due("15 0 * * *", "Europe/Paris", datetime(2026, 10, 24, 23, 0, tzinfo=UTC)) == datetime(
        2026, 10, 24, 22, 15, tzinfo=UTC
    )
    assert last_due("15 0 * * *", "Europe/Paris", datetime(2026, 10, 26, 0, 0, tzinfo=UTC)) == datetime(
        2026, 10, 25, 23, 15, tzinfo=UTC
    )


def _run(name: str, scheduled: str | None, created: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "creationTimestamp": created}
    if scheduled:
        meta["annotations"] = {"meterflow.io/scheduled-time": scheduled}
    return {"metadata": meta}


def test_runs_to_prune_keeps_the_latest() -> None:
    runs = [
        _run("wm-batch-202611220130", "2026-11-22T01:30:00Z"),
        _run("wm-batch-202611240130", "2026-11-24T01:30:00Z"),
        _run("wm-batch-manual-abc123", "2026-11-23T09:00:00Z"),
        _run("wm-batch-202611230130", "2026-11-23T01:30:00Z"),
    ]
    assert runs_to_prune(runs, 2) == ["wm-batch-202611220130", "wm-batch-202611230130"]
    assert runs_to_prune(runs, 10) == []
    latest = latest_run(runs)
    assert latest is not None and latest["metadata"]["name"] == "wm-batch-202611240130"
    assert latest_run([]) is None


def test_rfc3339() -> None:
    assert rfc3339(datetime(2026, 11, 22, 15, 30, 5, 999, tzinfo=UTC)) == "2026-11-22T15:30:05Z"


@pytest.mark.parametrize(
    "name",
    [
        "water-meters",
        "smart-building",
        "household-power",
        "smart-building-mqtt",
        "industrial-sensors",
    ],
)
def test_every_example_renders(name: str) -> None:
    p = pipeline(name)
    assert len(render_topics(p)) == 7
    assert render_flink_deployment(p, SETTINGS)["metadata"]["name"] == f"{name}-streaming"
    assert load_manifest(REPO / "examples" / f"{name}.yaml").name == name


# --- the MQTT bridge -----------------------------------------------------------------------------


def mqtt_pipeline(**mqtt: Any) -> MeterPipeline:
    document = yaml.safe_load((REPO / "examples" / "smart-building-mqtt.yaml").read_text())
    document["metadata"]["namespace"] = "prod"
    document["spec"]["source"]["mqtt"] |= mqtt
    from meterflow.spec import parse_manifest

    return parse_manifest(document)


BRIDGE_LABELS = {
    "app.kubernetes.io/name": "meterflow",
    "app.kubernetes.io/instance": "smart-building-mqtt",
    "app.kubernetes.io/part-of": "meterflow",
    "app.kubernetes.io/component": "bridge",
    "app.kubernetes.io/managed-by": "meterflow-operator",
    "meterflow.io/pipeline": "smart-building-mqtt",
    "meterflow.io/component": "bridge",
}


def test_render_bridge_service_account_grants_nothing() -> None:
    assert render_bridge_service_account(mqtt_pipeline()) == {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "smart-building-mqtt-mqtt-bridge", "namespace": "prod", "labels": BRIDGE_LABELS},
        "automountServiceAccountToken": False,
    }


def test_render_bridge_deployment() -> None:
    p = mqtt_pipeline()
    settings = Settings(bridge_image="registry.example/meterflow-operator:9", mqtt_url="mqtt://mosquitto:1883")
    assert render_bridge_deployment(p, settings) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "smart-building-mqtt-mqtt-bridge", "namespace": "prod", "labels": BRIDGE_LABELS},
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {
                "matchLabels": {
                    "meterflow.io/pipeline": "smart-building-mqtt",
                    "app.kubernetes.io/managed-by": "meterflow-operator",
                    "meterflow.io/component": "bridge",
                }
            },
            "template": {
                "metadata": {
                    "labels": BRIDGE_LABELS,
                    "annotations": {"meterflow.io/manifest-digest": manifest_digest(p, settings)},
                },
                "spec": {
                    "serviceAccountName": "smart-building-mqtt-mqtt-bridge",
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "runAsGroup": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "terminationGracePeriodSeconds": 45,
                    "containers": [
                        {
                            "name": "bridge",
                            "image": "registry.example/meterflow-operator:9",
                            "command": ["meterflow", "bridge", "--file", "/opt/meterflow/pipeline.yaml"],
                            "env": [{"name": "HOME", "value": "/tmp"}],
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "128Mi"},
                                "limits": {"cpu": "1", "memory": "512Mi"},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "runAsNonRoot": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [
                                {"name": "pipeline-manifest", "mountPath": "/opt/meterflow", "readOnly": True},
                                {"name": "tmp", "mountPath": "/tmp"},
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "pipeline-manifest", "configMap": {"name": "smart-building-mqtt-pipeline"}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def test_bridge_password_comes_from_its_secret_and_the_url_from_the_manifest() -> None:
    p = mqtt_pipeline(username="bridge", passwordSecretRef={"name": "mqtt", "key": "password"})
    container = render_bridge_deployment(p, Settings())["spec"]["template"]["spec"]["containers"][0]
    assert container["env"] == [
        {"name": "HOME", "value": "/tmp"},
        {"name": "METERFLOW_MQTT_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "mqtt", "key": "password"}}},
    ]
    mounted = yaml.safe_load(render_config_map(p, Settings(mqtt_url="mqtt://mosquitto:1883"))["data"]["pipeline.yaml"])
    assert mounted["spec"]["source"]["mqtt"]["url"] == "mqtt://mosquitto:1883"  # the operator's default
    assert mounted["spec"]["source"]["mqtt"]["username"] == "bridge"
    assert mounted["spec"]["source"]["mqtt"]["passwordSecretRef"] == {"name": "mqtt", "key": "password"}  # a reference
    own = mqtt_pipeline(url="mqtts://broker.example:8883")
    mounted = yaml.safe_load(
        render_config_map(own, Settings(mqtt_url="mqtt://mosquitto:1883"))["data"]["pipeline.yaml"]
    )
    assert mounted["spec"]["source"]["mqtt"]["url"] == "mqtts://broker.example:8883"  # the manifest wins


def test_bridge_names_are_dns_labels() -> None:
    long = "b" * 60
    document = yaml.safe_load((REPO / "examples" / "smart-building-mqtt.yaml").read_text())
    document["metadata"] |= {"name": long, "namespace": "prod"}
    from meterflow.spec import parse_manifest

    name = bridge_name(parse_manifest(document))
    assert len(name) == 63 and name.endswith("-mqtt-bridge") and name.startswith("b" * 45)
    assert bridge_name(mqtt_pipeline()) == "smart-building-mqtt-mqtt-bridge"


def test_bridge_condition() -> None:
    deployment: dict[str, Any] = {"metadata": {"name": "b", "generation": 2}, "status": {"observedGeneration": 1}}
    url = "mqtt://m:1883"
    assert bridge_condition(None, url=None, topics_ready=True).reason == "MqttUrlMissing"
    assert bridge_condition(None, url=url, topics_ready=False).reason == "WaitingForTopics"
    assert bridge_condition(None, url=url, topics_ready=True).reason == "NotCreated"
    assert bridge_condition(deployment, url=url, topics_ready=True).reason == "RolloutPending"
    deployment["status"] = {
        "observedGeneration": 2,
        "conditions": [{"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"}],
    }
    waiting = bridge_condition(deployment, url=url, topics_ready=True)
    assert (waiting.status, waiting.reason, waiting.message) == (
        "False",
        "WaitingForPods",
        "b: no replica available (MinimumReplicasUnavailable)",
    )
    deployment["status"]["availableReplicas"] = 1
    running = bridge_condition(deployment, url=url, topics_ready=True)
    assert (running.status, running.reason, running.message) == ("True", "BridgeRunning", "b: bridging mqtt://m:1883")
