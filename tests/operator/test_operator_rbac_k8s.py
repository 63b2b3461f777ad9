"""The operator with only the permissions docs/operator.md lists (RBAC enforced by the API server).

The operator runs as a ServiceAccount (impersonated), bound to a namespaced Role with exactly
the rules below plus a ClusterRole for what kopf reads cluster-wide. If a rule is missing the
operator cannot create its children, write its status or remove its finalizer, and this fails.
The Helm chart's RBAC should grant the same (docs/operator.md, "Permissions").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from operator_support import OPERATOR_MODULE, TEST_OPERATOR_ENV, Cluster, example, sinks_in

from tests.k8s.kopf_process import KopfProcess
from tests.k8s.wait import until

pytestmark = [pytest.mark.integration, pytest.mark.k8s]

ROLE_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": ["meterflow.io"],
        "resources": ["meterpipelines"],
        "verbs": ["get", "list", "watch", "patch", "update"],
    },
    {"apiGroups": ["meterflow.io"], "resources": ["meterpipelines/status"], "verbs": ["get", "patch", "update"]},
    {"apiGroups": ["meterflow.io"], "resources": ["meterpipelines/finalizers"], "verbs": ["update"]},
    {
        "apiGroups": ["kafka.strimzi.io", "flink.apache.org"],
        "resources": ["kafkatopics", "flinkdeployments"],
        "verbs": ["get", "list", "watch", "create", "patch", "update", "delete"],
    },
    {
        "apiGroups": [""],
        "resources": ["configmaps"],
        "verbs": ["get", "list", "watch", "create", "patch", "update", "delete"],
    },
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "create", "patch", "delete"]},
    {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["get", "list", "create", "patch", "delete"]},
    {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
]
CLUSTER_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "verbs": ["get", "list", "watch"],
    },
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
]


def rbac(namespace: str, account: str) -> list[dict[str, Any]]:
    """A Role and RoleBinding in ``namespace``, a ClusterRole and ClusterRoleBinding, for ``account``."""
    group = "rbac.authorization.k8s.io/v1"
    subjects = [{"kind": "ServiceAccount", "name": account, "namespace": namespace}]
    cluster_name = f"{account}-{namespace}"
    return [
        {
            "apiVersion": group,
            "kind": "Role",
            "metadata": {"name": account, "namespace": namespace},
            "rules": ROLE_RULES,
        },
        {
            "apiVersion": group,
            "kind": "RoleBinding",
            "metadata": {"name": account, "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account},
            "subjects": subjects,
        },
        {"apiVersion": group, "kind": "ClusterRole", "metadata": {"name": cluster_name}, "rules": CLUSTER_RULES},
        {
            "apiVersion": group,
            "kind": "ClusterRoleBinding",
            "metadata": {"name": cluster_name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_name},
            "subjects": subjects,
        },
    ]


def test_operator_runs_with_least_privilege(cluster: Cluster, tmp_path: Path) -> None:
    ns = cluster.namespace
    kubeconfig = cluster.server.create_service_account(ns, "meterflow-operator")
    user = f"system:serviceaccount:{ns}:meterflow-operator"
    cluster.apply(rbac(ns, "meterflow-operator"))
    # the identity is really constrained: it may not touch Secrets beyond reading them
    denied = cluster.server.kubectl("auth", "can-i", "create", "secrets", "-n", ns, "--as", user, check=False)
    assert denied.stdout.strip() == "no"

    operator = KopfProcess(
        module=OPERATOR_MODULE,
        namespace=ns,
        kubeconfig=kubeconfig,
        log=tmp_path / "operator.log",
        env=TEST_OPERATOR_ENV,
    ).start()
    try:
        sinks = sinks_in(tmp_path)
        sinks["clickhouse"] = {"secretRef": {"name": "clickhouse", "key": "dsn"}}
        cluster.create_secret("clickhouse", {"dsn": f"chdb://{tmp_path / 'clickhouse'}"})
        cluster.apply(example("water-meters", ns, sinks, retention="Delete"))
        until(lambda: len(cluster.topics("water-meters")) == 7, what="topics created by the service account")
        cluster.wait_condition("water-meters", "SchemaReady", "True")
        until(lambda: cluster.flink_deployments("water-meters"), what="the FlinkDeployment")
        # a pipeline over MQTT: its bridge Deployment and ServiceAccount, created and deleted by the account
        building = example("smart-building-mqtt", ns, sinks_in(tmp_path / "building"), retention="Delete")
        building["spec"]["source"]["mqtt"]["url"] = "mqtt://mosquitto:1883"
        cluster.apply(building)
        until(lambda: len(cluster.topics("smart-building-mqtt")) == 7, what="the MQTT pipeline's topics")
        cluster.mark_topics_ready("smart-building-mqtt")
        cluster.wait_condition("smart-building-mqtt", "BridgeReady", "False", "WaitingForPods")
        for name in ("water-meters", "smart-building-mqtt"):
            cluster.delete_pipeline(name)
            until(lambda: cluster.pipeline(name) is None, timeout=30, what="the finalizer to be removed")  # noqa: B023
            assert cluster.topics(name) == {}
        apps = cluster.server.kubectl("get", "deployments,serviceaccounts", "-n", ns, "-o", "name").stdout.split()
        assert "deployment.apps/smart-building-mqtt-mqtt-bridge" not in apps
        assert "serviceaccount/smart-building-mqtt-mqtt-bridge" not in apps
        assert "Forbidden" not in operator.log_text() and " 403" not in operator.log_text(), operator.log_tail()
    finally:
        operator.stop()
        cluster.server.kubectl("delete", "clusterrolebinding,clusterrole", f"meterflow-operator-{ns}", check=False)
