"""The ConfigMap that carries the pipeline's manifest to the Flink jobs (pure).

Mounted at ``/opt/meterflow/pipeline.yaml`` in every streaming and batch pod: the jobs' entry
contract is ``--manifest /opt/meterflow/pipeline.yaml``. The manifest is the resource's spec
with the cluster's defaults made explicit — the Kafka bootstrap address of the Strimzi cluster,
the MQTT broker URL (``METERFLOW_OPERATOR_MQTT_URL``) when ``spec.source.mqtt`` names none and,
for sinks the manifest leaves open, the operator's default endpoints. Credentials never
land here: sinks with a ``secretRef`` reach the pods as environment variables from the Secret.
Called by :mod:`meterflow_operator.reconcile`.
"""

from __future__ import annotations

from typing import Any

import yaml

from meterflow.spec.model import MeterPipeline
from meterflow.stack.endpoints import Defaults, no_secret, resolve
from meterflow_operator.render.common import COMPONENT_CONFIG, MANIFEST_FILE, config_map_name, metadata, namespace_of
from meterflow_operator.settings import Settings


def bootstrap_servers(pipeline: MeterPipeline) -> str:
    """The manifest's bootstrap servers, else the Strimzi cluster's plain listener service."""
    return resolve(pipeline, Defaults(), no_secret).kafka_bootstrap


def cluster_manifest(pipeline: MeterPipeline, settings: Settings) -> dict[str, Any]:
    """The manifest the jobs read on the cluster (defaults of the cluster filled in)."""
    manifest = pipeline.to_manifest()
    manifest["metadata"] = {"name": pipeline.name, "namespace": namespace_of(pipeline)}
    spec = manifest["spec"]
    spec["source"]["bootstrapServers"] = bootstrap_servers(pipeline)
    clickhouse = spec["sinks"]["clickhouse"]
    if "secretRef" not in clickhouse and "dsn" not in clickhouse and settings.clickhouse_dsn:
        clickhouse["dsn"] = settings.clickhouse_dsn
    iceberg = spec["sinks"]["iceberg"]
    if "secretRef" not in iceberg and "catalogUri" not in iceberg and settings.iceberg_catalog_uri:
        iceberg["catalogUri"] = settings.iceberg_catalog_uri
    iceberg.setdefault("warehouse", settings.iceberg_warehouse)
    mqtt = spec["source"].get("mqtt")
    if mqtt is not None and "url" not in mqtt and settings.mqtt_url:
        mqtt["url"] = settings.mqtt_url
    return manifest


def render_config_map(pipeline: MeterPipeline, settings: Settings) -> dict[str, Any]:
    """``<pipeline>-pipeline`` with one key, ``pipeline.yaml``."""
    text = yaml.safe_dump(cluster_manifest(pipeline, settings), sort_keys=False)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(pipeline, config_map_name(pipeline), COMPONENT_CONFIG),
        "data": {MANIFEST_FILE: text},
    }
