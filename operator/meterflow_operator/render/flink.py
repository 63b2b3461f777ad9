"""The streaming job as a Flink Kubernetes Operator ``FlinkDeployment`` (pure).

Application mode, PyFlink: Flink's ``PythonDriver`` runs ``-pym flink_jobs.streaming --manifest
/opt/meterflow/pipeline.yaml`` (the streaming job's entry contract) from the image in
``spec.flink.image``; the manifest comes from the ConfigMap of
:mod:`meterflow_operator.render.configmap`, the sinks' credentials from the Secrets the spec
references (``valueFrom.secretKeyRef``, never inline), and a digest of the manifest in the
pod template makes the Flink operator upgrade the job when the manifest changes. Flink's
Prometheus reporter is on in every FlinkDeployment (port ``flink-metrics``, 9249, every pod; the
``pipeline`` label on every metric), and the streaming JobManager also declares meterflow's own
endpoint (port ``metrics``, 9464: the serving sink runs there) for the chart's PodMonitor;
batch runs push to ``METERFLOW_PUSHGATEWAY`` when the operator has one (docs/metrics.md). The pieces
shared with the batch runs (:mod:`meterflow_operator.render.batch`) live here too. Called by
:mod:`meterflow_operator.reconcile`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from meterflow.metrics import CLUSTER_PORT, FLINK_REPORTER_PORT, PUSHGATEWAY_ENV, flink_reporter_config
from meterflow.spec.durations import to_millis
from meterflow.spec.model import MeterPipeline, SecretKeyRef, UpgradeMode
from meterflow.stack.endpoints import CLICKHOUSE_DSN_ENV, ICEBERG_CATALOG_URI_ENV
from meterflow_operator.render.common import (
    COMPONENT_BATCH,
    COMPONENT_LABEL,
    COMPONENT_STREAMING,
    MANIFEST_DIR,
    MANIFEST_PATH,
    PIPELINE_LABEL,
    config_map_name,
    metadata,
    namespace_of,
    streaming_name,
)
from meterflow_operator.render.configmap import render_config_map
from meterflow_operator.settings import Settings

FLINK_API_VERSION = "flink.apache.org/v1beta1"
FLINK_VERSION = "v2_2"
PYFLINK_JAR = "local:///opt/flink/opt/flink-python-2.2.1.jar"
PYTHON_DRIVER = "org.apache.flink.client.python.PythonDriver"
MAIN_CONTAINER = "flink-main-container"  # the name the Flink operator merges pod templates into
MANIFEST_VOLUME = "pipeline-manifest"
MANIFEST_DIGEST_ANNOTATION = "meterflow.io/manifest-digest"
FLINK_METRICS_PORT_NAME = "flink-metrics"
METRICS_PORT_NAME = "metrics"


def job_args(module: str) -> list[str]:
    """The jobs' entry contract: ``-pym <module> --manifest /opt/meterflow/pipeline.yaml``."""
    return ["-pym", module, "--manifest", MANIFEST_PATH]


def state_dir(pipeline: MeterPipeline, settings: Settings, kind: str) -> str:
    """``<stateUri>/<namespace>/<pipeline>/<kind>``: the default home of checkpoints, savepoints, HA."""
    return f"{settings.state_uri.rstrip('/')}/{namespace_of(pipeline)}/{pipeline.name}/{kind}"


def checkpoint_dir(pipeline: MeterPipeline, settings: Settings) -> str:
    return pipeline.spec.flink.checkpoint_dir or state_dir(pipeline, settings, "checkpoints")


def savepoint_dir(pipeline: MeterPipeline, settings: Settings) -> str:
    return pipeline.spec.flink.savepoint_dir or state_dir(pipeline, settings, "savepoints")


def flink_configuration(pipeline: MeterPipeline, settings: Settings, upgrade_mode: str) -> dict[str, str]:
    """Flink's configuration (strings only): slots, checkpointing, state directories, HA for
    last-state, the Prometheus reporter.

    Flink 2 names the directories ``execution.checkpointing.dir`` / ``.savepoint-dir``; the
    ``state.*`` names are their deprecated fallbacks, still read by Flink 2.2 and by tooling, and
    are set to the same values so either reader agrees.
    """
    flink = pipeline.spec.flink
    checkpoints, savepoints = checkpoint_dir(pipeline, settings), savepoint_dir(pipeline, settings)
    config = {
        "taskmanager.numberOfTaskSlots": str(flink.task_slots),
        "execution.checkpointing.interval": f"{to_millis(flink.checkpoint_interval)}ms",
        "execution.checkpointing.dir": checkpoints,
        "execution.checkpointing.savepoint-dir": savepoints,
        "state.checkpoints.dir": checkpoints,
        "state.savepoints.dir": savepoints,
    } | flink_reporter_config(pipeline.name, FLINK_REPORTER_PORT)
    if upgrade_mode == UpgradeMode.last_state.value:
        config |= {
            "high-availability.type": "kubernetes",
            "high-availability.storageDir": state_dir(pipeline, settings, "ha"),
        }
    return config


def secret_env(name: str, ref: SecretKeyRef) -> dict[str, Any]:
    """An environment variable read from a Secret key by the kubelet."""
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}


def sink_env(pipeline: MeterPipeline) -> list[dict[str, Any]]:
    """The sinks' connection strings from the referenced Secrets (they win over the manifest)."""
    sinks = pipeline.spec.sinks
    env = []
    if sinks.clickhouse.secret_ref:
        env.append(secret_env(CLICKHOUSE_DSN_ENV, sinks.clickhouse.secret_ref))
    if sinks.iceberg.secret_ref:
        env.append(secret_env(ICEBERG_CATALOG_URI_ENV, sinks.iceberg.secret_ref))
    return env


def manifest_digest(pipeline: MeterPipeline, settings: Settings) -> str:
    """A digest of the mounted manifest: in the pod template, so a manifest change upgrades the job."""
    data = render_config_map(pipeline, settings)["data"]
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def pod_template(pipeline: MeterPipeline, settings: Settings, component: str) -> dict[str, Any]:
    """The pod template of JobManager and TaskManagers: the manifest volume, the sinks' env, the
    Flink reporter's port (and a batch run's Pushgateway)."""
    container: dict[str, Any] = {
        "name": MAIN_CONTAINER,
        "ports": [{"name": FLINK_METRICS_PORT_NAME, "containerPort": FLINK_REPORTER_PORT, "protocol": "TCP"}],
        "volumeMounts": [{"name": MANIFEST_VOLUME, "mountPath": MANIFEST_DIR, "readOnly": True}],
    }
    env = sink_env(pipeline)
    if component == COMPONENT_BATCH and settings.pushgateway_url:
        env.append({"name": PUSHGATEWAY_ENV, "value": settings.pushgateway_url})
    if env:
        container["env"] = env
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "labels": {PIPELINE_LABEL: pipeline.name, COMPONENT_LABEL: component},
            "annotations": {MANIFEST_DIGEST_ANNOTATION: manifest_digest(pipeline, settings)},
        },
        "spec": {
            "containers": [container],
            "volumes": [{"name": MANIFEST_VOLUME, "configMap": {"name": config_map_name(pipeline)}}],
        },
    }


def flink_deployment(
    pipeline: MeterPipeline,
    settings: Settings,
    *,
    name: str,
    component: str,
    module: str,
    upgrade_mode: str,
    state: str,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A FlinkDeployment running ``module`` in application mode (shared by streaming and batch)."""
    flink = pipeline.spec.flink
    mode = UpgradeMode(upgrade_mode).value
    meta = metadata(pipeline, name, component)
    if annotations:
        meta["annotations"] = dict(annotations)
    return {
        "apiVersion": FLINK_API_VERSION,
        "kind": "FlinkDeployment",
        "metadata": meta,
        "spec": {
            "image": flink.image,
            "flinkVersion": FLINK_VERSION,
            "mode": "native",
            "serviceAccount": settings.flink_service_account,
            "flinkConfiguration": flink_configuration(pipeline, settings, mode),
            "podTemplate": pod_template(pipeline, settings, component),
            "jobManager": {
                "replicas": 1,
                "resource": {"cpu": flink.job_manager.cpu, "memory": flink.job_manager.memory},
            }
            | ({"podTemplate": job_manager_template()} if component == COMPONENT_STREAMING else {}),
            "taskManager": {"resource": {"cpu": flink.task_manager.cpu, "memory": flink.task_manager.memory}},
            "job": {
                "jarURI": PYFLINK_JAR,
                "entryClass": PYTHON_DRIVER,
                "args": job_args(module),
                "parallelism": flink.parallelism,
                "upgradeMode": mode,
                "state": state,
            },
        },
    }


def job_manager_template() -> dict[str, Any]:
    """The streaming JobManager's own pod template (merged into the shared one by the Flink
    operator): the port of meterflow's /metrics, served by the serving sink's process there."""
    port = {"name": METRICS_PORT_NAME, "containerPort": CLUSTER_PORT, "protocol": "TCP"}
    return {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{"name": MAIN_CONTAINER, "ports": [port]}]}}


def render_flink_deployment(pipeline: MeterPipeline, settings: Settings) -> dict[str, Any]:
    """The streaming job: ``<pipeline>-streaming``, suspended when ``spec.suspend``."""
    return flink_deployment(
        pipeline,
        settings,
        name=streaming_name(pipeline),
        component=COMPONENT_STREAMING,
        module="flink_jobs.streaming",
        upgrade_mode=pipeline.spec.flink.upgrade_mode,
        state="suspended" if pipeline.spec.suspend else "running",
    )
