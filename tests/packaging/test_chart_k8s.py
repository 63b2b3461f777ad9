"""The chart against the real test API server (kube-apiserver + etcd, no controllers).

* every rendering (defaults; every option on, namespaced and cluster-wide) passes
  ``kubectl apply --dry-run=server`` with our CRD and the upstream Strimzi and Flink CRDs installed;
* the rendered RBAC, applied for real, grants the operator's ServiceAccount exactly what the
  operator does (``kubectl auth can-i --as``) and nothing else;
* the operator, started exactly as the chart's Deployment starts it (its args and environment),
  logged in with a token of the chart's ServiceAccount from the TokenRequest API, reconciles a
  pipeline end to end — schema, children, status, a batch run, deletion with the Delete policy —
  without one refused request: proof that the RBAC is enough.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.k8s.apiserver import ApiServer, die_with_parent, free_ports
from tests.k8s.fixtures import MONITORING_API, prometheus_operator_crds
from tests.k8s.wait import until
from tests.packaging.chart import CHART, REPO, find, helm, one, render, template_text
from tests.packaging.test_chart import ALL_ON

pytestmark = [pytest.mark.integration, pytest.mark.k8s]

SA = "meterflow-operator"


def dry_run(server: ApiServer, text: str) -> subprocess.CompletedProcess[str]:
    return server.kubectl("apply", "--dry-run=server", "-f", "-", input=text, check=False)


def test_every_rendering_passes_server_side_dry_run(chart_crds: ApiServer, k8s_namespace: str) -> None:
    """Every object, the PodMonitor and ServiceMonitor included when the Prometheus Operator's CRDs
    are found (``$METERFLOW_PROMETHEUS_CRDS``; they are not in ../shared/crds): else those two
    are left out of the dry run by their apiVersion, and only they."""
    server, ns = chart_crds, k8s_namespace
    other = server.create_namespace("packaging-other")
    renderings = {
        "defaults": template_text(None, ns),
        "every option, namespaced": template_text(ALL_ON | {"watch": {"namespaces": [ns, other]}}, ns),
        "every option, cluster-wide": template_text(ALL_ON | {"watch": {"clusterWide": True}}, ns),
    }
    for what, rendered in renderings.items():
        objects = [d for d in yaml.safe_load_all(rendered) if d]
        text = rendered
        if prometheus_operator_crds() is None:
            monitors = [o for o in objects if o["apiVersion"] == MONITORING_API]
            assert what == "defaults" or {o["kind"] for o in monitors} == {"PodMonitor", "ServiceMonitor"}
            objects = [o for o in objects if o["apiVersion"] != MONITORING_API]
            text = yaml.safe_dump_all(objects)
        result = dry_run(server, text)
        assert result.returncode == 0, f"{what}: {result.stderr}"
        lines = result.stdout.strip().splitlines()
        assert len(lines) == len(objects), f"{what}: {result.stdout}"
        assert all(line.endswith("(server dry run)") for line in lines), result.stdout
    # the API server really validates here: a broken MeterPipeline in the values is refused by the CRD
    bad = ALL_ON | {"examplePipeline": {"enabled": True, "spec": {"meterKind": "gas"}}}
    refused = dry_run(server, template_text(bad, ns))
    assert refused.returncode == 1
    assert 'spec.meterKind: Unsupported value: "gas"' in refused.stderr


def test_helm_install_dry_run_against_the_server_and_its_notes(chart_crds: ApiServer, k8s_namespace: str) -> None:
    result = helm(
        "install", "meterflow", str(CHART), "--dry-run=server", "--skip-crds", "--namespace", k8s_namespace,
        "--set", "watch.namespaces={a,b}", kubeconfig=chart_crds.kubeconfig,
    )  # fmt: skip
    notes = result.stdout.split("NOTES:", 1)[1]
    assert "The operator (meterflow-operator) serves MeterPipelines in:\n  - a\n  - b\n" in notes
    assert "No default sinks are set (defaultSinks.*)" in notes
    assert (
        "for about a minute after each\nstart kopf retries listing namespaces and CRDs (logged as Forbidden errors)"
        in notes
    )


# --- RBAC: can-i ---------------------------------------------------------------------------------

# (verb, resource, subresource or "", namespace key, expected): "ns" = the watched namespace,
# "other" = a namespace the operator does not watch, "" = cluster scope.
OPERATOR_CAN = [
    *[(v, "meterpipelines.meterflow.io", "", "ns", "yes") for v in ("get", "list", "watch", "patch")],
    ("patch", "meterpipelines.meterflow.io", "status", "ns", "yes"),
    ("update", "meterpipelines.meterflow.io", "finalizers", "ns", "yes"),
    *[(v, "kafkatopics.kafka.strimzi.io", "", "ns", "yes") for v in ("list", "create", "patch", "delete")],
    *[(v, "flinkdeployments.flink.apache.org", "", "ns", "yes") for v in ("get", "list", "create", "patch", "delete")],
    *[(v, "configmaps", "", "ns", "yes") for v in ("get", "list", "create", "patch", "delete")],
    ("get", "secrets", "", "ns", "yes"),
    ("create", "events", "", "ns", "yes"),
    # the MQTT bridge: a Deployment and its own ServiceAccount
    *[(v, "deployments.apps", "", "ns", "yes") for v in ("get", "list", "create", "patch", "delete")],
    *[(v, "serviceaccounts", "", "ns", "yes") for v in ("get", "list", "create", "patch", "delete")],
]
OPERATOR_CANNOT = [
    # no more than it uses on its own kinds
    *[(v, "meterpipelines.meterflow.io", "", "ns", "no") for v in ("create", "update", "delete", "deletecollection")],
    ("update", "meterpipelines.meterflow.io", "status", "ns", "no"),
    ("watch", "kafkatopics.kafka.strimzi.io", "", "ns", "no"),
    ("update", "flinkdeployments.flink.apache.org", "", "ns", "no"),
    ("patch", "flinkdeployments.flink.apache.org", "status", "ns", "no"),
    ("deletecollection", "configmaps", "", "ns", "no"),
    # Secrets: get by name only, never list, watch or write
    *[(v, "secrets", "", "ns", "no") for v in ("list", "watch", "create", "update", "patch", "delete")],
    ("patch", "events", "", "ns", "no"),
    # nothing in namespaces it does not watch
    ("get", "secrets", "", "other", "no"),
    ("get", "configmaps", "", "other", "no"),
    ("list", "meterpipelines.meterflow.io", "", "other", "no"),
    ("create", "flinkdeployments.flink.apache.org", "", "other", "no"),
    # no workloads, no exec, no identities
    ("create", "pods", "exec", "ns", "no"),
    ("get", "pods", "log", "ns", "no"),
    ("create", "pods", "", "ns", "no"),
    ("update", "deployments.apps", "", "ns", "no"),
    ("patch", "deployments.apps", "status", "ns", "no"),
    ("create", "deployments.apps", "", "other", "no"),
    ("create", "statefulsets.apps", "", "ns", "no"),
    ("create", "serviceaccounts", "token", "ns", "no"),
    ("impersonate", "serviceaccounts", "", "ns", "no"),
    # no RBAC, nothing cluster-scoped (kopf's observation is off by default)
    ("create", "roles.rbac.authorization.k8s.io", "", "ns", "no"),
    ("create", "rolebindings.rbac.authorization.k8s.io", "", "ns", "no"),
    ("create", "clusterroles.rbac.authorization.k8s.io", "", "", "no"),
    ("bind", "clusterroles.rbac.authorization.k8s.io", "", "", "no"),
    ("escalate", "roles.rbac.authorization.k8s.io", "", "ns", "no"),
    ("list", "namespaces", "", "", "no"),
    ("list", "customresourcedefinitions.apiextensions.k8s.io", "", "", "no"),
    ("list", "secrets", "", "", "no"),
    ("get", "nodes", "", "", "no"),
]


def can_i(server: ApiServer, user: str, verb: str, resource: str, sub: str, namespace: str | None) -> str:
    args = ["auth", "can-i", verb, resource, "--as", user]
    if sub:
        args.append(f"--subresource={sub}")
    args += ["-n", namespace] if namespace else ["--all-namespaces"]  # all namespaces = the cluster scope
    result = server.kubectl(*args, check=False)
    return result.stdout.strip()


def check_table(
    server: ApiServer, user: str, table: list[tuple[str, str, str, str, str]], namespaces: dict[str, str | None]
) -> None:
    wrong = []
    for verb, resource, sub, where, expected in table:
        got = can_i(server, user, verb, resource, sub, namespaces[where])
        if got != expected:
            wrong.append(f"{verb} {resource}{'/' + sub if sub else ''} in {where or 'cluster'}: {got}, want {expected}")
    assert not wrong, "\n".join(wrong)


def apply_rendered(server: ApiServer, objects: list[dict[str, Any]]) -> None:
    server.apply(objects)


def wait_granted(server: ApiServer, user: str, verb: str, resource: str, namespace: str | None) -> None:
    """The authorizer sees new bindings a moment after they are written: wait for one of them."""
    until(lambda: can_i(server, user, verb, resource, "", namespace) == "yes", what=f"{user} may {verb} {resource}")


def test_rbac_is_least_privilege(chart_crds: ApiServer, k8s_namespace: str) -> None:
    server, ns = chart_crds, k8s_namespace
    other = server.create_namespace("packaging-other")
    apply_rendered(server, render(None, ns))
    user = f"system:serviceaccount:{ns}:{SA}"
    wait_granted(server, user, "watch", "meterpipelines.meterflow.io", ns)
    check_table(server, user, OPERATOR_CAN + OPERATOR_CANNOT, {"ns": ns, "other": other, "": None})

    # the complete list of what the account may do in its namespace: the operator's rules plus
    # what every authenticated identity gets from Kubernetes' bootstrap roles (reviews, discovery)
    listing = server.kubectl("auth", "can-i", "--list", "-n", ns, "--as", user).stdout
    resources = {}
    for line in listing.splitlines()[1:]:
        parts = line.split()
        if parts and not parts[0].startswith("["):  # resource rows (non-resource URLs start with '[')
            resources[parts[0]] = line.split("[")[-1].rstrip("]").split()
    assert resources == {
        "selfsubjectreviews.authentication.k8s.io": ["create"],
        "selfsubjectaccessreviews.authorization.k8s.io": ["create"],
        "selfsubjectrulesreviews.authorization.k8s.io": ["create"],
        "configmaps": ["get", "list", "create", "patch", "delete"],
        "kafkatopics.kafka.strimzi.io": ["list", "create", "patch", "delete"],
        "flinkdeployments.flink.apache.org": ["get", "list", "create", "patch", "delete"],
        "meterpipelines.meterflow.io": ["get", "list", "watch", "patch"],
        "meterpipelines.meterflow.io/status": ["patch"],
        "meterpipelines.meterflow.io/finalizers": ["update"],
        "secrets": ["get"],
        "events": ["create"],
        "deployments.apps": ["get", "list", "create", "patch", "delete"],
        "serviceaccounts": ["get", "list", "create", "patch", "delete"],
    }, listing


def test_rbac_options_cluster_wide_observation_flink_account(chart_crds: ApiServer, k8s_namespace: str) -> None:
    server, ns = chart_crds, k8s_namespace
    other = server.create_namespace("packaging-other")
    release = f"mf-{ns}"  # cluster-scoped names must not collide with other tests'
    values = {
        "watch": {"clusterWide": True},
        "rbac": {"kopfObservation": True, "secretNames": ["meterflow-clickhouse"]},
        "flinkServiceAccount": {"create": True},
    }
    objects = render(values, ns, release=release)
    apply_rendered(server, objects)
    account = one(objects, "ServiceAccount", f"{release}-meterflow-operator")["metadata"]["name"]
    user = f"system:serviceaccount:{ns}:{account}"
    wait_granted(server, user, "list", "customresourcedefinitions.apiextensions.k8s.io", None)
    wait_granted(server, user, "list", "meterpipelines.meterflow.io", None)
    wait_granted(server, f"system:serviceaccount:{ns}:flink", "create", "pods", ns)
    check_table(
        server,
        user,
        [
            # cluster-wide: the operator's verbs in every namespace ...
            ("list", "meterpipelines.meterflow.io", "", "", "yes"),
            ("create", "flinkdeployments.flink.apache.org", "", "other", "yes"),
            ("patch", "meterpipelines.meterflow.io", "status", "other", "yes"),
            # ... Secrets only by the names given
            ("get", "secrets", "", "other", "no"),
            ("list", "secrets", "", "", "no"),
            ("create", "pods", "exec", "other", "no"),
            ("create", "clusterroles.rbac.authorization.k8s.io", "", "", "no"),
            # kopf's observation: CRDs (no namespaces in cluster-wide mode)
            ("list", "customresourcedefinitions.apiextensions.k8s.io", "", "", "yes"),
            ("watch", "customresourcedefinitions.apiextensions.k8s.io", "", "", "yes"),
            ("get", "customresourcedefinitions.apiextensions.k8s.io", "", "", "no"),
            ("list", "namespaces", "", "", "no"),
        ],
        {"ns": ns, "other": other, "": None},
    )
    secret_get = server.kubectl(
        "auth", "can-i", "get", "secrets/meterflow-clickhouse", "-n", other, "--as", user, check=False
    ).stdout.strip()
    assert secret_get == "yes"
    # the Flink job account: what the Flink operator documents for job pods, nothing more
    flink = f"system:serviceaccount:{ns}:flink"
    check_table(
        server,
        flink,
        [
            ("create", "pods", "", "ns", "yes"),
            ("delete", "pods", "", "ns", "yes"),
            ("update", "configmaps", "", "ns", "yes"),
            ("watch", "configmaps", "", "ns", "yes"),
            ("update", "deployments.apps", "finalizers", "ns", "yes"),
            ("get", "secrets", "", "ns", "no"),
            ("create", "pods", "exec", "ns", "no"),
            ("create", "pods", "", "other", "no"),
            ("get", "meterpipelines.meterflow.io", "", "ns", "no"),
        ],
        {"ns": ns, "other": other, "": None},
    )
    # and in namespace mode with observation on, kopf may list namespaces
    namespaced = render({"rbac": {"kopfObservation": True}}, ns, release=f"mfn-{ns}")
    apply_rendered(server, namespaced)
    account = one(namespaced, "ServiceAccount")["metadata"]["name"]
    wait_granted(server, f"system:serviceaccount:{ns}:{account}", "list", "namespaces", None)


# --- the operator as the chart's ServiceAccount ------------------------------------------------------


class ChartOperator:
    """The operator process started with the chart Deployment's own args and literal environment."""

    def __init__(self, deployment: dict[str, Any], kubeconfig: Path, log: Path) -> None:
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        self.port = free_ports(1)[0]
        args = [a for a in container["args"] if not a.startswith("--liveness=")]
        assert len(args) == len(container["args"]) - 1, container["args"]
        # the image's ENTRYPOINT (images/operator/Dockerfile) with the chart's args
        self.argv = [
            sys.executable,
            "-m",
            "meterflow_operator",
            *args,
            f"--liveness=http://127.0.0.1:{self.port}/healthz",
        ]
        literal = {e["name"]: e["value"] for e in container["env"] if "value" in e}
        assert literal["METERFLOW_OPERATOR_METRICS_PORT"] == "9464"
        literal["METERFLOW_OPERATOR_METRICS_PORT"] = str(free_ports(1)[0])  # the machine may run two
        self.env = os.environ | literal | {"KUBECONFIG": str(kubeconfig), "PYTHONUNBUFFERED": "1"}
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> ChartOperator:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env,
                preexec_fn=die_with_parent,  # noqa: PLW1509 (only prctl: async-signal-safe)
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the operator exited with {self.proc.returncode}:\n{self.log_text()[-4000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"no liveness answer in {timeout:.0f}s:\n{self.log_text()[-4000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def service_account_kubeconfig(server: ApiServer, namespace: str, account: str, path: Path) -> Path:
    """A kubeconfig with a token of ``account`` issued by the TokenRequest API (no impersonation)."""
    token = server.kubectl("create", "token", account, "-n", namespace, "--duration=3600s").stdout.strip()
    return server.write_kubeconfig(path, token=token, namespace=namespace)


def secret(name: str, namespace: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


# The chart's settings, made quick for a test (the same environment variables the Deployment sets).
FAST = {
    "settings": {
        "resyncSeconds": 2,
        "retrySeconds": 1,
        "maxRetrySeconds": 4,
        "defaultBackoff": 1,
        "serverTimeout": 10,
        "clientTimeout": 15,
        "stateUri": "file:///tmp/meterflow-test-flink-state",
    },
    "rbac": {"secretNames": ["meterflow-clickhouse", "meterflow-iceberg"]},
}


# kopf's optional cluster-scope observation (kopf/_core/reactor/observation.py): refused without
# rbac.kopfObservation, after which kopf falls back to the namespaces it was given.
KOPF_OBSERVATION_URLS = ("/api/v1/namespaces ->", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions ->")


@pytest.mark.parametrize("observation", [False, True], ids=["default-rbac", "kopf-observation"])
def test_operator_reconciles_as_the_chart_service_account(
    chart_crds: ApiServer, k8s_namespace: str, tmp_path: Path, observation: bool
) -> None:
    from kubernetes import client

    server, ns = chart_crds, k8s_namespace
    values = FAST | {"rbac": FAST["rbac"] | {"kopfObservation": observation}}
    objects = render(values, ns, release=f"mf-{ns}")  # cluster-scoped names of their own
    apply_rendered(server, objects)  # ServiceAccount, Role(s), binding(s), Deployment (which never runs here)
    account = one(objects, "ServiceAccount")["metadata"]["name"]
    kubeconfig = service_account_kubeconfig(server, ns, account, tmp_path / "kubeconfig-sa")
    whoami = json.loads(server.kubectl("auth", "whoami", "-o", "json", kubeconfig=kubeconfig).stdout)
    user = f"system:serviceaccount:{ns}:{account}"
    assert whoami["status"]["userInfo"]["username"] == user
    # the operator's first requests must meet the rules under test, not the authorizer's delay
    expected = [("watch", "meterpipelines.meterflow.io", ns)]
    if observation:
        expected += [("list", "namespaces", None), ("watch", "customresourcedefinitions.apiextensions.k8s.io", None)]
    for verb, resource, where in expected:
        wait_granted(server, user, verb, resource, where)

    api = server.api_client()
    custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    server.apply(
        [
            secret("meterflow-clickhouse", ns, {"dsn": f"chdb://{tmp_path / 'clickhouse'}"}),
            secret("meterflow-iceberg", ns, {"uri": f"sqlite:///{tmp_path / 'catalog.db'}"}),
        ]
    )
    pipeline = yaml.safe_load((REPO / "examples" / "water-meters.yaml").read_text())
    pipeline["metadata"]["namespace"] = ns
    pipeline["spec"]["sinks"] = {
        "clickhouse": {"secretRef": {"name": "meterflow-clickhouse", "key": "dsn"}},
        "iceberg": {
            "secretRef": {"name": "meterflow-iceberg", "key": "uri"},
            "warehouse": f"file://{tmp_path / 'warehouse'}",
        },
    }
    pipeline["spec"]["retention"] = "Delete"

    operator = ChartOperator(one(objects, "Deployment"), kubeconfig, tmp_path / "operator.log").start()
    group, version = "meterflow.io", "v1alpha1"

    def children(g: str, v: str, plural: str) -> dict[str, dict[str, Any]]:
        items = custom.list_namespaced_custom_object(
            g, v, ns, plural, label_selector="meterflow.io/pipeline=water-meters"
        )
        return {i["metadata"]["name"]: i for i in items["items"]}

    def conditions() -> dict[str, str]:
        obj = custom.get_namespaced_custom_object(group, version, ns, "meterpipelines", "water-meters")
        return {c["type"]: c["status"] for c in (obj.get("status") or {}).get("conditions", [])}

    try:
        server.apply(pipeline)
        topics = until(lambda: (t := children("kafka.strimzi.io", "v1", "kafkatopics")) and len(t) == 7 and t,
                       what="7 KafkaTopics created by the chart's account")  # fmt: skip
        until(lambda: conditions().get("SchemaReady") == "True", what="SchemaReady (Secrets read)")
        until(lambda: "water-meters-streaming" in children("flink.apache.org", "v1beta1", "flinkdeployments"),
              what="the streaming FlinkDeployment")  # fmt: skip
        assert core.read_namespaced_config_map("water-meters-pipeline", ns).data["pipeline.yaml"]

        # play Strimzi and the Flink operator; the operator's status write makes the pipeline Ready
        ready = [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]
        for name, topic in topics.items():
            status = {"observedGeneration": topic["metadata"]["generation"], "conditions": ready}
            custom.patch_namespaced_custom_object_status(
                "kafka.strimzi.io", "v1", ns, "kafkatopics", name, {"status": status}
            )
        custom.patch_namespaced_custom_object_status(
            "flink.apache.org", "v1beta1", ns, "flinkdeployments", "water-meters-streaming",
            {"status": {"lifecycleState": "STABLE", "jobStatus": {"state": "RUNNING"}}},
        )  # fmt: skip
        until(lambda: conditions().get("Ready") == "True", what="Ready=True", describe=lambda: str(conditions()))

        # a batch run on request: the operator creates it and removes the annotation (patch)
        server.kubectl("annotate", "mp", "water-meters", "-n", ns, "meterflow.io/run-batch=1")
        until(lambda: any("-batch-manual-" in n for n in children("flink.apache.org", "v1beta1", "flinkdeployments")),
              what="a batch-run FlinkDeployment")  # fmt: skip

        def annotation_removed() -> bool:
            obj = custom.get_namespaced_custom_object(group, version, ns, "meterpipelines", "water-meters")
            return "meterflow.io/run-batch" not in (obj["metadata"].get("annotations") or {})

        until(annotation_removed, what="the run-batch annotation to be removed")

        reasons = {e.reason for e in core.list_namespaced_event(ns).items}
        assert {"Created", "BatchStarted"} <= reasons

        # deletion with the Delete policy: the finalizer runs, every child is deleted
        custom.delete_namespaced_custom_object(group, version, ns, "meterpipelines", "water-meters")

        def gone() -> bool:
            items = custom.list_namespaced_custom_object(group, version, ns, "meterpipelines")["items"]
            return not items

        until(gone, timeout=60, what="the finalizer to be removed")
        assert children("kafka.strimzi.io", "v1", "kafkatopics") == {}
        assert children("flink.apache.org", "v1beta1", "flinkdeployments") == {}
        assert not core.list_namespaced_config_map(ns, label_selector="meterflow.io/pipeline=water-meters").items
    finally:
        operator.stop()
    log = operator.log_text()
    refused = [line for line in log.splitlines() if "Forbidden" in line or " 403" in line]
    if observation:
        assert refused == [], "\n".join(refused)
        assert "Not enough permissions" not in log
    else:
        # nothing the operator does is refused; only kopf's optional observation, which falls back
        assert find(objects, "ClusterRole") == []
        assert all(any(url in line for url in KOPF_OBSERVATION_URLS) for line in refused), "\n".join(refused)
        if refused:  # kopf 1.45 without settings.scanning.disabled: it retries, then falls back
            assert "Not enough permissions to list namespaces. Falling back" in log
            assert "Not enough permissions to watch for resources" in log
