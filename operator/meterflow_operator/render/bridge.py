"""The MQTT bridge of a pipeline with ``spec.source.mqtt``: a Deployment and its own ServiceAccount (pure).

The bridge (``meterflow bridge --file /opt/meterflow/pipeline.yaml``, in the operator's image, which
holds the ``meterflow`` CLI) reads the same mounted manifest as the Flink jobs, where the operator
has filled in the Kafka bootstrap address and the broker URL (:mod:`meterflow_operator.render.configmap`).

* **One replica, ``Recreate``.** The bridge's persistent MQTT session belongs to one client id; two
  pods with the same id would take the session from each other, and a rolling update would run two.
  Un-acknowledged messages stay with the broker while no pod runs and are redelivered.
* **Least privilege.** Its ServiceAccount ``<pipeline>-mqtt-bridge`` has no Role at all and its
  token is not mounted (``automountServiceAccountToken: false``): the bridge talks to MQTT and
  Kafka, never to the Kubernetes API. Non-root, read-only root filesystem (``/tmp`` is an
  ``emptyDir``), no capabilities, no privilege escalation, seccomp ``RuntimeDefault``.
* **Secrets referenced.** ``spec.source.mqtt.passwordSecretRef`` reaches the pod as
  ``METERFLOW_MQTT_PASSWORD`` through ``valueFrom.secretKeyRef``.
* The manifest digest in the pod template restarts the bridge when the spec changes.

Called by :mod:`meterflow_operator.reconcile`.
"""

from __future__ import annotations

import hashlib
from typing import Any

from meterflow.spec.model import MeterPipeline
from meterflow.stack.mqtturl import MQTT_PASSWORD_ENV
from meterflow_operator.render.common import (
    COMPONENT_BRIDGE,
    MANIFEST_DIR,
    MANIFEST_PATH,
    config_map_name,
    metadata,
    selector,
)
from meterflow_operator.render.flink import MANIFEST_DIGEST_ANNOTATION, MANIFEST_VOLUME, manifest_digest, secret_env
from meterflow_operator.settings import Settings

NAME_MAX = 63
BRIDGE_USER = 10001  # the operator image's user
CONTAINER = "bridge"


def bridge_name(pipeline: MeterPipeline) -> str:
    """``<pipeline>-mqtt-bridge`` (a DNS-1123 label, shortened with a hash when the pipeline name is long)."""
    name = f"{pipeline.name}-mqtt-bridge"
    if len(name) <= NAME_MAX:
        return name
    digest = hashlib.sha256(pipeline.name.encode()).hexdigest()[:5]
    return f"{pipeline.name[: NAME_MAX - len('-mqtt-bridge') - 6].rstrip('-')}-{digest}-mqtt-bridge"


def render_bridge_service_account(pipeline: MeterPipeline) -> dict[str, Any]:
    """The bridge's own ServiceAccount: bound to nothing, its token never mounted."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(pipeline, bridge_name(pipeline), COMPONENT_BRIDGE),
        "automountServiceAccountToken": False,
    }


def render_bridge_deployment(pipeline: MeterPipeline, settings: Settings) -> dict[str, Any]:
    """The bridge Deployment (one replica, Recreate) running ``meterflow bridge`` on the mounted manifest."""
    source = pipeline.spec.source.mqtt
    if source is None:
        raise ValueError(f"MeterPipeline {pipeline.name} has no spec.source.mqtt; it has no bridge")
    name = bridge_name(pipeline)
    match = selector(pipeline, COMPONENT_BRIDGE)
    env = [{"name": "HOME", "value": "/tmp"}]
    if source.password_secret_ref:
        env.append(secret_env(MQTT_PASSWORD_ENV, source.password_secret_ref))
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": settings.bridge_image,
        "command": ["meterflow", "bridge", "--file", MANIFEST_PATH],
        "env": env,
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
            {"name": MANIFEST_VOLUME, "mountPath": MANIFEST_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(pipeline, name, COMPONENT_BRIDGE),
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": match},
            "template": {
                "metadata": {
                    "labels": metadata(pipeline, name, COMPONENT_BRIDGE)["labels"],
                    "annotations": {MANIFEST_DIGEST_ANNOTATION: manifest_digest(pipeline, settings)},
                },
                "spec": {
                    "serviceAccountName": name,
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": BRIDGE_USER,
                        "runAsGroup": BRIDGE_USER,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "terminationGracePeriodSeconds": 45,  # the bridge drains up to 30 s on SIGTERM
                    "containers": [container],
                    "volumes": [
                        {"name": MANIFEST_VOLUME, "configMap": {"name": config_map_name(pipeline)}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }
