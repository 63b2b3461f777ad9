"""The operator against a real kube-apiserver: children, status, updates, drift, crashes, Secrets.

Every object the operator renders is validated by the API server against the upstream Strimzi
and Flink operator CRDs. No controllers run, so the tests play Strimzi and the Flink operator by
writing the children's status subresources, and assert ownerReferences instead of garbage
collection.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from operator_support import EXAMPLES, Cluster, example, schema_exists, sinks_in

from meterflow.spec import parse_manifest
from meterflow.spec.names import names_for
from meterflow.spec.topics import topic_plan
from meterflow_clickhouse.client import session
from meterflow_clickhouse.migrate import apply_migrations, migrations
from tests.k8s.kopf_process import KopfProcess
from tests.k8s.wait import until

pytestmark = [pytest.mark.integration, pytest.mark.k8s]

FLINK_JAR = "local:///opt/flink/opt/flink-python-2.2.1.jar"


def owner_uids(obj: dict[str, Any]) -> list[str]:
    return [ref["uid"] for ref in obj["metadata"].get("ownerReferences", [])]


def wait_children(cluster: Cluster, name: str, topics: int = 7) -> dict[str, Any]:
    """Wait until the pipeline's ConfigMap, topics and streaming FlinkDeployment exist."""

    def probe() -> dict[str, Any] | None:
        found = {
            "topics": cluster.topics(name),
            "deployments": cluster.flink_deployments(name),
            "config_maps": cluster.config_maps(name),
        }
        if len(found["topics"]) == topics and found["deployments"] and found["config_maps"]:
            return found
        return None

    return until(probe, timeout=60, what=f"the children of {name}")


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_creates_exactly_its_children(
    cluster: Cluster, operator: KopfProcess, tmp_path: Path, name: str
) -> None:
    manifest = example(name, cluster.namespace, sinks_in(tmp_path / "sinks"))
    cluster.apply(manifest)
    live = cluster.pipeline(name)
    assert live is not None
    uid = live["metadata"]["uid"]
    pipeline = parse_manifest(live)
    plan = {t.name: t for t in topic_plan(pipeline)}

    children = wait_children(cluster, name)
    # exactly the planned topics, as Strimzi expects them, owned by the pipeline
    assert set(children["topics"]) == set(plan)
    for topic_name, topic in children["topics"].items():
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == pipeline.spec.source.kafka_cluster
        assert topic["spec"] == {
            "topicName": topic_name,
            "partitions": plan[topic_name].partitions,
            "replicas": plan[topic_name].replicas,
            "config": plan[topic_name].config,
        }
        assert owner_uids(topic) == [uid]
    # one streaming FlinkDeployment and one ConfigMap, owned
    assert list(children["deployments"]) == [f"{name}-streaming"]
    deployment = children["deployments"][f"{name}-streaming"]
    assert owner_uids(deployment) == [uid]
    assert deployment["spec"]["job"]["jarURI"] == FLINK_JAR
    assert deployment["spec"]["job"]["args"] == [
        "-pym", "flink_jobs.streaming", "--manifest", "/opt/meterflow/pipeline.yaml",
    ]  # fmt: skip
    assert deployment["spec"]["job"]["parallelism"] == pipeline.spec.flink.parallelism
    assert list(children["config_maps"]) == [f"{name}-pipeline"]
    config_map = children["config_maps"][f"{name}-pipeline"]
    assert owner_uids(config_map) == [uid]
    mounted = yaml.safe_load(config_map["data"]["pipeline.yaml"])
    assert mounted["metadata"] == {"name": name, "namespace": cluster.namespace}
    assert mounted["spec"]["measurements"] == live["spec"]["measurements"]

    # Strimzi has not reported yet; the schema is there
    cluster.wait_condition(name, "TopicsReady", "False", "WaitingForStrimzi")
    cluster.wait_condition(name, "SchemaReady", "True")
    cluster.wait_condition(name, "BatchScheduled", "True")
    cluster.wait_condition(name, "StreamingJobReady", "False", "WaitingForFlinkOperator")
    cluster.mark_topics_ready(name)
    cluster.wait_condition(name, "TopicsReady", "True")
    cluster.wait_condition(name, "Ready", "False", "ComponentsNotReady")

    # the streaming job's state, as the Flink operator reports it
    cluster.set_flink_status(f"{name}-streaming", "RUNNING", "STABLE")
    cluster.wait_condition(name, "StreamingJobReady", "True", "JobRunning")
    ready = cluster.wait_condition(name, "Ready", "True")
    status = (cluster.pipeline(name) or {})["status"]
    assert status["streamingJobState"] == "RUNNING"
    assert status["observedGeneration"] == live["metadata"]["generation"]
    assert status["children"] == {
        "topics": [t.name for t in topic_plan(pipeline)],
        "configMap": f"{name}-pipeline",
        "flinkDeployment": f"{name}-streaming",
    }
    assert ready["lastTransitionTime"]
    cluster.set_flink_status(f"{name}-streaming", "FAILED", "FAILED", error="java.lang.OutOfMemoryError")
    failed = cluster.wait_condition(name, "StreamingJobReady", "False", "JobFailed")
    assert "OutOfMemoryError" in failed["message"]
    until(lambda: (cluster.pipeline(name) or {})["status"].get("streamingJobState") == "FAILED", what="FAILED mirrored")

    # an Event for each action (kopf posts them in the background: wait for the last one)
    def reasons() -> set[tuple[str, str]]:
        return {(e["reason"], e["message"]) for e in cluster.events() if e["involvedObject"]["name"] == name}

    until(lambda: any(r == "JobFailed" for r, _ in reasons()), what="the JobFailed event")
    assert ("Created", f"Created KafkaTopic {name}.readings") in reasons()
    assert ("Created", f"Created FlinkDeployment {name}-streaming") in reasons()

    # nothing rendered twice, nothing else created
    assert len(cluster.topics()) == 7
    assert len(cluster.flink_deployments()) == 1

    if name == "water-meters":
        names = names_for(pipeline)
        sinks = manifest["spec"]["sinks"]
        found = schema_exists(
            sinks["clickhouse"]["dsn"], names.clickhouse_database,
            sinks["iceberg"]["catalogUri"], sinks["iceberg"]["warehouse"], names.iceberg_namespace,
        )  # fmt: skip
        assert found["database"] and "schema_migrations" in found["tables"]
        # the serving views too, rendered for the spec (the same ensure_schema as the CLI's and the batch's)
        assert {"speed_daily", "consumption_daily", "speed_vs_batch"} <= set(found["tables"])
        assert found["lake"] == [names.readings_table]


def test_spec_changes_update_children_in_place(cluster: Cluster, operator: KopfProcess, tmp_path: Path) -> None:
    cluster.apply(example("smart-building", cluster.namespace, sinks_in(tmp_path)))
    before = wait_children(cluster, "smart-building")["deployments"]["smart-building-streaming"]
    digest = before["spec"]["podTemplate"]["metadata"]["annotations"]["meterflow.io/manifest-digest"]

    cluster.patch_spec("smart-building", {"flink": {"parallelism": 3}})

    def updated() -> dict[str, Any] | None:
        deployment = cluster.flink_deployments("smart-building").get("smart-building-streaming")
        return deployment if deployment and deployment["spec"]["job"]["parallelism"] == 3 else None

    after = until(updated, timeout=30, what="parallelism 3 on the FlinkDeployment")
    assert after["metadata"]["uid"] == before["metadata"]["uid"]  # updated in place, not re-created
    assert after["spec"]["podTemplate"]["metadata"]["annotations"]["meterflow.io/manifest-digest"] != digest
    config = yaml.safe_load(cluster.config_maps("smart-building")["smart-building-pipeline"]["data"]["pipeline.yaml"])
    assert config["spec"]["flink"]["parallelism"] == 3
    until(lambda: (cluster.pipeline("smart-building") or {})["status"].get("observedGeneration") == 2, what="gen 2")

    cluster.patch_spec("smart-building", {"source": {"partitions": 4}})
    until(
        lambda: cluster.topics("smart-building")["smart-building.readings"]["spec"]["partitions"] == 4,
        timeout=30,
        what="4 partitions on the readings topic",
    )


def test_suspend_suspends_the_job(cluster: Cluster, operator: KopfProcess, tmp_path: Path) -> None:
    cluster.apply(example("household-power", cluster.namespace, sinks_in(tmp_path)))
    wait_children(cluster, "household-power")
    cluster.patch_spec("household-power", {"suspend": True})
    until(
        lambda: (
            cluster.flink_deployments("household-power")["household-power-streaming"]["spec"]["job"]["state"]
            == "suspended"
        ),
        timeout=30,
        what="job.state suspended",
    )
    cluster.wait_condition("household-power", "Ready", "False", "Suspended")
    cluster.wait_condition("household-power", "StreamingJobReady", "False", "Suspended")
    cluster.patch_spec("household-power", {"suspend": False})
    until(
        lambda: (
            cluster.flink_deployments("household-power")["household-power-streaming"]["spec"]["job"]["state"]
            == "running"
        ),
        timeout=30,
        what="job.state running again",
    )


def test_drift_is_repaired(cluster: Cluster, operator: KopfProcess, tmp_path: Path) -> None:
    cluster.apply(example("water-meters", cluster.namespace, sinks_in(tmp_path)))
    children = wait_children(cluster, "water-meters")
    old_uid = children["topics"]["water-meters.alerts"]["metadata"]["uid"]

    # a deleted KafkaTopic comes back (no controller finalizes it: it is gone at once)
    started = time.monotonic()
    cluster.server.kubectl("delete", "kafkatopic", "water-meters.alerts", "-n", cluster.namespace)

    def recreated() -> bool:
        topic = cluster.topics("water-meters").get("water-meters.alerts")
        return bool(topic and topic["metadata"]["uid"] != old_uid)

    until(recreated, timeout=30, what="the deleted KafkaTopic to be recreated")
    assert time.monotonic() - started < 30

    # an edited FlinkDeployment is set back; a deleted ConfigMap comes back
    cluster.server.kubectl(
        "patch", "flinkdeployment", "water-meters-streaming", "-n", cluster.namespace, "--type=merge",
        "-p", '{"spec": {"job": {"parallelism": 7}, "image": "someone/else:latest"}}',
    )  # fmt: skip
    cluster.server.kubectl("delete", "configmap", "water-meters-pipeline", "-n", cluster.namespace)

    def restored() -> bool:
        deployment = cluster.flink_deployments("water-meters")["water-meters-streaming"]
        return (
            deployment["spec"]["job"]["parallelism"] == 1
            and deployment["spec"]["image"] == "ghcr.io/meterflow/meterflow-flink:0.1.0"
            and "water-meters-pipeline" in cluster.config_maps("water-meters")
        )

    until(restored, timeout=30, what="the edited FlinkDeployment and the deleted ConfigMap to be restored")


def test_killed_mid_reconcile_converges_without_duplicates(
    cluster: Cluster, start_operator: Any, tmp_path: Path
) -> None:
    first = start_operator()
    cluster.apply(example("water-meters", cluster.namespace, sinks_in(tmp_path)))
    # SIGKILL as soon as the first child exists: the reconcile is under way
    until(lambda: cluster.config_maps("water-meters"), interval=0.02, timeout=60, what="the first child")
    first.kill()
    killed_with = (len(cluster.topics("water-meters")), len(cluster.flink_deployments("water-meters")))

    start_operator()
    children = wait_children(cluster, "water-meters")
    cluster.wait_condition("water-meters", "SchemaReady", "True")
    cluster.mark_topics_ready("water-meters")
    cluster.wait_condition("water-meters", "TopicsReady", "True")
    assert sorted(children["topics"]) == sorted(
        t.name for t in topic_plan(parse_manifest(cluster.pipeline("water-meters")))
    )
    assert len(cluster.topics()) == 7, f"killed with {killed_with} (topics, deployments)"
    assert list(cluster.flink_deployments()) == ["water-meters-streaming"]
    assert list(cluster.config_maps("water-meters")) == ["water-meters-pipeline"]
    finalizers = (cluster.pipeline("water-meters") or {})["metadata"]["finalizers"]
    assert finalizers == ["meterflow.io/finalizer"]


def test_missing_secret_then_unreachable_then_ready(cluster: Cluster, operator: KopfProcess, tmp_path: Path) -> None:
    sinks = sinks_in(tmp_path)
    dsn = sinks["clickhouse"].pop("dsn")
    sinks["clickhouse"]["secretRef"] = {"name": "clickhouse", "key": "dsn"}
    cluster.apply(example("water-meters", cluster.namespace, sinks))

    missing = cluster.wait_condition("water-meters", "SchemaReady", "False", "SecretNotFound")
    assert "clickhouse" in missing["message"]
    cluster.wait_condition("water-meters", "StreamingJobReady", "False", "WaitingForSchema")
    assert cluster.flink_deployments("water-meters") == {}  # the job waits for its schema

    cluster.create_secret("clickhouse", {"dsn": "http://127.0.0.1:9/"})  # nothing listens on port 9
    unreachable = cluster.wait_condition("water-meters", "SchemaReady", "False", "ClickHouseUnreachable", timeout=30)
    assert "127.0.0.1" in unreachable["message"]

    cluster.create_secret("clickhouse", {"dsn": dsn})
    cluster.wait_condition("water-meters", "SchemaReady", "True", timeout=30)
    deployment = until(
        lambda: cluster.flink_deployments("water-meters").get("water-meters-streaming"), what="the FlinkDeployment"
    )
    env = deployment["spec"]["podTemplate"]["spec"]["containers"][0]["env"]
    assert env == [
        {"name": "METERFLOW_CLICKHOUSE_DSN", "valueFrom": {"secretKeyRef": {"name": "clickhouse", "key": "dsn"}}}
    ]
    config_map = cluster.config_maps("water-meters")["water-meters-pipeline"]
    assert dsn not in config_map["data"]["pipeline.yaml"]  # the credentials never leave the Secret
    warnings = {e["reason"] for e in cluster.events() if e["type"] == "Warning"}
    assert {"SecretNotFound", "ClickHouseUnreachable"} <= warnings


def test_an_edited_migration_blocks_the_schema_without_hot_retries(
    cluster: Cluster, start_operator: Any, tmp_path: Path
) -> None:
    sinks = sinks_in(tmp_path)
    manifest = example("water-meters", cluster.namespace, sinks)
    dsn, database = sinks["clickhouse"]["dsn"], names_for(parse_manifest(manifest)).clickhouse_database
    apply_migrations(dsn, database)
    shipped = next(m for m in migrations() if m.version == 1)

    def record_checksum(checksum: str) -> None:  # the newest row of a version wins (ReplacingMergeTree)
        with session(dsn) as client:
            client.insert(f"{database}.schema_migrations", [[1, shipped.name, checksum]],
                          column_names=["version", "name", "checksum"])  # fmt: skip

    record_checksum("applied-in-another-form")
    start_operator(METERFLOW_OPERATOR_BLOCKED_RETRY_SECONDS="4")
    cluster.apply(manifest)
    blocked = cluster.wait_condition("water-meters", "SchemaReady", "False", "MigrationChanged")
    assert blocked["message"] == (
        f"ClickHouse: migration 0001_speed_layer.sql changed after it was applied to {database}; "
        "add a new migration instead of editing an applied one"
    )
    # kopf is done with the spec (no backoff loop): it stored the configuration it handled
    until(lambda: (cluster.pipeline("water-meters") or {})["metadata"].get("annotations", {})
          .get("meterflow.io/last-handled-configuration"), what="kopf to finish the spec")  # fmt: skip
    until(lambda: "MigrationChanged" in {e["reason"] for e in cluster.events() if e["type"] == "Warning"},
          what="the Warning Event")  # fmt: skip

    record_checksum(shipped.checksum)  # the person's fix; the timer tries again blocked_retry_seconds later
    cluster.wait_condition("water-meters", "SchemaReady", "True", timeout=60)


def test_a_bad_object_does_not_crash_the_operator(cluster: Cluster, operator: KopfProcess, tmp_path: Path) -> None:
    # the CRD only bounds timeZone's length; the model knows the IANA zones
    bad = example("water-meters", cluster.namespace, sinks_in(tmp_path), timeZone="Mars/Olympus_Mons")
    cluster.apply(bad)
    cond = cluster.wait_condition("water-meters", "Ready", "False", "InvalidSpec")
    assert "Mars/Olympus_Mons" in cond["message"]
    assert "timeZone" in cond["message"] or "time_zone" in cond["message"]
    # the same operator still serves a good pipeline
    cluster.apply(example("household-power", cluster.namespace, sinks_in(tmp_path)))
    wait_children(cluster, "household-power")
    assert operator.alive
    # fixing the spec reconciles it
    cluster.patch_spec("water-meters", {"timeZone": "Australia/Brisbane"})
    cluster.wait_condition("water-meters", "SchemaReady", "True")
