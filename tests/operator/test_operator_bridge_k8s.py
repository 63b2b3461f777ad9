"""The MQTT bridge on Kubernetes (issue 16): the operator renders a Deployment and its own
ServiceAccount for a pipeline with ``spec.source.mqtt``, validated by the real API server; the
account can do nothing with the API; the bridge waits for a broker URL and for the topics,
reports BridgeReady from the Deployment's status, and goes away when ``spec.source.mqtt`` does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from operator_support import Cluster, example, sinks_in

from tests.k8s.kopf_process import KopfProcess
from tests.k8s.wait import until

pytestmark = [pytest.mark.integration, pytest.mark.k8s]

NAME = "smart-building-mqtt"
BRIDGE = f"{NAME}-mqtt-bridge"


def bridge_objects(cluster: Cluster) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    apps, found = client.AppsV1Api(cluster.api), []
    for read in (
        lambda: apps.read_namespaced_deployment(BRIDGE, cluster.namespace),
        lambda: cluster.core.read_namespaced_service_account(BRIDGE, cluster.namespace),
    ):
        try:
            found.append(cluster.api.sanitize_for_serialization(read()))
        except ApiException as exc:
            if exc.status != 404:
                raise
            found.append(None)
    return found[0], found[1]


def test_a_pipeline_over_mqtt_gets_its_bridge(cluster: Cluster, operator: KopfProcess, tmp_path: Path) -> None:
    manifest = example(NAME, cluster.namespace, sinks_in(tmp_path / "sinks"))
    source = manifest["spec"]["source"]
    cluster.apply(manifest)
    # no broker URL anywhere (the operator has no METERFLOW_OPERATOR_MQTT_URL here): no bridge yet
    cluster.wait_condition(NAME, "BridgeReady", "False", "MqttUrlMissing")
    assert bridge_objects(cluster) == (None, None)

    cluster.patch_spec(NAME, {"source": source | {"mqtt": source["mqtt"] | {"url": "mqtt://mosquitto:1883"}}})
    cluster.wait_condition(NAME, "BridgeReady", "False", "WaitingForTopics")
    assert bridge_objects(cluster) == (None, None)
    cluster.mark_topics_ready(NAME)
    cluster.wait_condition(NAME, "BridgeReady", "False", "WaitingForPods")

    deployment, account = bridge_objects(cluster)
    assert deployment is not None and account is not None
    uid = (cluster.pipeline(NAME) or {})["metadata"]["uid"]
    for child in (deployment, account):
        assert [r["uid"] for r in child["metadata"]["ownerReferences"]] == [uid]
    assert account.get("automountServiceAccountToken") is False
    pod = deployment["spec"]["template"]["spec"]
    assert (pod["serviceAccountName"], pod["automountServiceAccountToken"]) == (BRIDGE, False)
    assert pod["containers"][0]["command"] == ["meterflow", "bridge", "--file", "/opt/meterflow/pipeline.yaml"]
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "Recreate"
    mounted = yaml.safe_load(cluster.config_maps(NAME)[f"{NAME}-pipeline"]["data"]["pipeline.yaml"])
    assert mounted["spec"]["source"]["mqtt"]["url"] == "mqtt://mosquitto:1883"

    # least privilege: no binding names the bridge's account, and it may do nothing but ask who it is
    user = f"system:serviceaccount:{cluster.namespace}:{BRIDGE}"
    listing = cluster.server.kubectl("auth", "can-i", "--list", "-n", cluster.namespace, "--as", user).stdout
    rows = [line.split() for line in listing.splitlines()[1:]]
    resources = {parts[0] for parts in rows if parts and not parts[0].startswith("[")}  # not URL rows
    assert resources == {
        "selfsubjectreviews.authentication.k8s.io",
        "selfsubjectaccessreviews.authorization.k8s.io",
        "selfsubjectrulesreviews.authorization.k8s.io",
    }, listing
    for verb, what in (("get", "configmaps"), ("get", "secrets"), ("list", "pods"), ("get", "meterpipelines")):
        assert cluster.server.kubectl("auth", "can-i", verb, what, "-n", cluster.namespace, "--as", user,
                                      check=False).stdout.strip() == "no"  # fmt: skip

    # the Deployment controller's report, as it would write it
    from kubernetes import client

    client.AppsV1Api(cluster.api).patch_namespaced_deployment_status(
        BRIDGE, cluster.namespace,
        {"status": {"observedGeneration": deployment["metadata"]["generation"], "replicas": 1, "readyReplicas": 1,
                    "availableReplicas": 1}},
    )  # fmt: skip
    running = cluster.wait_condition(NAME, "BridgeReady", "True", "BridgeRunning")
    assert running["message"] == f"{BRIDGE}: bridging mqtt://mosquitto:1883"
    cluster.set_flink_status(f"{NAME}-streaming", "RUNNING", "STABLE")
    ready = cluster.wait_condition(NAME, "Ready", "True")
    assert ready["message"] == "topics, schema, streaming job, MQTT bridge and batch schedule are ready"
    assert (cluster.pipeline(NAME) or {})["status"]["children"]["bridge"] == BRIDGE

    # drift: a deleted bridge comes back; without spec.source.mqtt it goes
    client.AppsV1Api(cluster.api).delete_namespaced_deployment(BRIDGE, cluster.namespace)
    until(lambda: bridge_objects(cluster)[0] is not None, timeout=30, what="the bridge Deployment recreated")
    cluster.patch_spec(NAME, {"source": {"mqtt": None}})
    until(lambda: bridge_objects(cluster) == (None, None), timeout=30, what="the bridge deleted with spec.source.mqtt")
    until(lambda: "BridgeReady" not in cluster.conditions(NAME), timeout=30, what="BridgeReady gone")
