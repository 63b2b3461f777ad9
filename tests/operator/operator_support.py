"""What the operator tests share: manifests with per-test sinks, reads of the cluster, and playing
the parts that do not run here (Strimzi marking KafkaTopics Ready, the Flink Kubernetes Operator
reporting a job's state) through the status subresource, as those operators would.

Imported by the tests in tests/operator (the conftest builds a :class:`Cluster` per test).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import yaml

from tests.k8s.apiserver import ApiServer
from tests.k8s.wait import until

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = ("water-meters", "smart-building", "household-power")
GROUP, VERSION, PLURAL = "meterflow.io", "v1alpha1", "meterpipelines"
OPERATOR_MODULE = "meterflow_operator.main"
PIPELINE_LABEL = "meterflow.io/pipeline"

# Faster than a cluster install (resync every 10 s, backoff from 5 s to 2 min), same code paths.
TEST_OPERATOR_ENV = {
    "METERFLOW_OPERATOR_RESYNC_SECONDS": "2",
    "METERFLOW_OPERATOR_RETRY_SECONDS": "1",
    "METERFLOW_OPERATOR_MAX_RETRY_SECONDS": "4",
    "METERFLOW_OPERATOR_STATE_URI": "file:///tmp/meterflow-test-flink-state",
}


def sinks_in(folder: Path) -> dict[str, Any]:
    """``spec.sinks`` pointing at an embedded chDB and a SQLite catalog under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "clickhouse": {"dsn": f"chdb://{folder / 'clickhouse'}"},
        "iceberg": {"catalogUri": f"sqlite:///{folder / 'catalog.db'}", "warehouse": f"file://{folder / 'warehouse'}"},
    }


def example(name: str, namespace: str, sinks: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    """examples/<name>.yaml in ``namespace``, with ``sinks`` and top-level spec fields overridden."""
    document: dict[str, Any] = yaml.safe_load((REPO / "examples" / f"{name}.yaml").read_text())
    document["metadata"]["namespace"] = namespace
    if sinks is not None:
        document["spec"]["sinks"] = sinks
    document["spec"].update(spec)
    return document


class Cluster:
    """The test API server seen from one test's namespace."""

    def __init__(self, server: ApiServer, namespace: str) -> None:
        from kubernetes import client

        self.server = server
        self.namespace = namespace
        self.api = server.api_client()
        self.custom = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)

    # MeterPipelines

    def apply(self, manifest: dict[str, Any] | list[dict[str, Any]]) -> str:
        return self.server.apply(manifest)

    def pipeline(self, name: str) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            obj: dict[str, Any] = self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return obj

    def patch_spec(self, name: str, spec: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name, {"spec": spec}, _content_type="application/merge-patch+json"
        )

    def delete_pipeline(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)

    def conditions(self, name: str) -> dict[str, dict[str, Any]]:
        obj = self.pipeline(name) or {}
        return {c["type"]: c for c in (obj.get("status") or {}).get("conditions", [])}

    def wait_condition(
        self, name: str, type_: str, status: str = "True", reason: str | None = None, timeout: float = 60.0
    ) -> dict[str, Any]:
        """Wait until condition ``type_`` of pipeline ``name`` has ``status`` (and ``reason``)."""

        def probe() -> dict[str, Any] | None:
            cond = self.conditions(name).get(type_)
            if cond and cond["status"] == status and (reason is None or cond.get("reason") == reason):
                return cond
            return None

        return until(
            probe,
            timeout=timeout,
            what=f"{name} {type_}={status}{f' ({reason})' if reason else ''}",
            describe=lambda: f"conditions: {json.dumps(self.conditions(name), indent=1)}",
        )

    # children

    def objects(self, group: str, version: str, plural: str, pipeline: str | None = None) -> list[dict[str, Any]]:
        selector = f"{PIPELINE_LABEL}={pipeline}" if pipeline else ""
        result = self.custom.list_namespaced_custom_object(
            group, version, self.namespace, plural, label_selector=selector
        )
        items: list[dict[str, Any]] = result["items"]
        return items

    def topics(self, pipeline: str | None = None) -> dict[str, dict[str, Any]]:
        return {t["metadata"]["name"]: t for t in self.objects("kafka.strimzi.io", "v1", "kafkatopics", pipeline)}

    def flink_deployments(self, pipeline: str | None = None) -> dict[str, dict[str, Any]]:
        items = self.objects("flink.apache.org", "v1beta1", "flinkdeployments", pipeline)
        return {d["metadata"]["name"]: d for d in items}

    def config_maps(self, pipeline: str) -> dict[str, dict[str, Any]]:
        result = self.core.list_namespaced_config_map(self.namespace, label_selector=f"{PIPELINE_LABEL}={pipeline}")
        return {cm.metadata.name: self.api.sanitize_for_serialization(cm) for cm in result.items}

    def events(self) -> list[dict[str, Any]]:
        return [self.api.sanitize_for_serialization(e) for e in self.core.list_namespaced_event(self.namespace).items]

    def create_secret(self, name: str, data: dict[str, str]) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": self.namespace},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        }
        self.server.apply(body)

    # playing Strimzi and the Flink Kubernetes Operator

    def mark_topics_ready(self, pipeline: str) -> None:
        """What Strimzi's Topic Operator writes once a topic exists in Kafka."""
        for name, topic in self.topics(pipeline).items():
            status = {
                "observedGeneration": topic["metadata"]["generation"],
                "topicName": topic["spec"].get("topicName", name),
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            }
            self.custom.patch_namespaced_custom_object_status(
                "kafka.strimzi.io", "v1", self.namespace, "kafkatopics", name, {"status": status},
                _content_type="application/merge-patch+json",
            )  # fmt: skip

    def set_flink_status(self, name: str, state: str, lifecycle: str, error: str | None = None) -> None:
        """What the Flink Kubernetes Operator writes about a FlinkDeployment's job."""
        status: dict[str, Any] = {
            "lifecycleState": lifecycle,
            "jobManagerDeploymentStatus": "READY",
            "jobStatus": {"state": state, "jobId": "0123456789abcdef0123456789abcdef", "jobName": name},
            "error": error,
        }
        self.custom.patch_namespaced_custom_object_status(
            "flink.apache.org", "v1beta1", self.namespace, "flinkdeployments", name, {"status": status},
            _content_type="application/merge-patch+json",
        )  # fmt: skip


def schema_exists(
    clickhouse_dsn: str, database: str, catalog_uri: str, warehouse: str, namespace: str
) -> dict[str, Any]:
    """What exists of a pipeline's schema, read in a separate process (chDB: one opener per process)."""
    script = textwrap.dedent(
        f"""
        import json
        from meterflow_clickhouse.client import session
        from meterflow_iceberg.catalog import open_catalog
        from meterflow.stack.endpoints import IcebergLocation
        with session({clickhouse_dsn!r}) as client:
            databases = [r[0] for r in client.query("SHOW DATABASES").result_rows]
            tables = [r[0] for r in client.query(
                "SELECT name FROM system.tables WHERE database = {{db:String}}", parameters={{"db": {database!r}}}
            ).result_rows]
        catalog = open_catalog(IcebergLocation("meterflow", {catalog_uri!r}, {warehouse!r}))
        namespaces = [".".join(n) for n in catalog.list_namespaces()]
        lake = [".".join(t) for t in catalog.list_tables({namespace!r})] if {namespace!r} in namespaces else []
        found = {{"database": {database!r} in databases, "tables": tables, "namespaces": namespaces, "lake": lake}}
        print(json.dumps(found))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return data
