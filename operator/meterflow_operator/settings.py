"""The operator's own settings, read once from ``METERFLOW_OPERATOR_*`` environment variables.

The Helm chart sets them on the operator's Deployment; tests set them on the operator
subprocess. Called by :mod:`meterflow_operator.main` (kopf start-up settings) and passed to the
render functions and the reconcile step, so those never read the environment themselves.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

PREFIX = "METERFLOW_OPERATOR_"


@dataclass(frozen=True)
class Settings:
    """Every knob of the operator, with the defaults a cluster install uses."""

    flink_service_account: str = "flink"
    """ServiceAccount the Flink pods run as (the Flink Kubernetes Operator's chart creates ``flink``)."""

    state_uri: str = "s3://meterflow/flink"
    """Base of checkpoints, savepoints and HA data: ``<stateUri>/<namespace>/<pipeline>/{checkpoints,...}``."""

    clickhouse_dsn: str | None = None
    """DSN for manifests with neither ``sinks.clickhouse.secretRef`` nor ``dsn`` (no credentials in it)."""

    iceberg_catalog_uri: str | None = None
    """Catalog URI for manifests with neither ``sinks.iceberg.secretRef`` nor ``catalogUri``."""

    iceberg_warehouse: str = "s3://meterflow/warehouse"
    """Warehouse for manifests without ``sinks.iceberg.warehouse``."""

    mqtt_url: str | None = None
    """Broker URL for manifests with ``spec.source.mqtt`` but no ``url`` (the chart's Mosquitto sets it)."""

    bridge_image: str = "ghcr.io/meterflow/meterflow-operator:0.1.0"
    """Image of the MQTT bridge Deployments (it needs the ``meterflow`` CLI: the operator image has it)."""

    resync_seconds: float = 10.0
    """How often every pipeline is reconciled again (drift repair, children's status, batch schedule)."""

    batch_history: int = 3
    """How many batch-run FlinkDeployments to keep per pipeline (older ones are deleted)."""

    retry_seconds: float = 5.0
    """First delay of the retry backoff (doubled on every retry of the same error)."""

    max_retry_seconds: float = 120.0
    """Longest delay of the retry backoff."""

    blocked_retry_seconds: float = 600.0
    """How long a pipeline blocked by a cause only a person can fix (a migration edited after it was
    applied, a Secret without the key, credentials ClickHouse or the catalog refuse) waits before the
    resync timer tries its schema again: no hot retry. A change of the spec reconciles at once."""

    default_backoff: float = 10.0
    """kopf's delay before retrying a handler after an unexpected exception."""

    server_timeout: int = 300
    """Watch requests end after this many seconds on the server side (and are re-opened); whole seconds."""

    client_timeout: float = 330.0
    """Client-side timeout of watch requests (a little longer than the server's)."""

    max_workers: int = 8
    """Threads running the (synchronous) handlers."""

    posting_level: str = "INFO"
    """Lowest level of the messages posted as Kubernetes Events (DEBUG, INFO, WARNING, ERROR)."""

    metrics_port: int = 9464
    """Port of the operator's Prometheus /metrics (docs/metrics.md); 0 serves none."""

    pushgateway_url: str | None = None
    """A Pushgateway the batch runs push their metrics to (``METERFLOW_PUSHGATEWAY`` in their pods)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``METERFLOW_OPERATOR_<FIELD>`` (e.g. ``METERFLOW_OPERATOR_RESYNC_SECONDS=5``)."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for field in fields(cls):
            raw = env.get(PREFIX + field.name.upper())
            if raw is None or raw == "":
                continue
            default = getattr(cls, field.name)
            try:
                if isinstance(default, bool):
                    values[field.name] = raw.lower() in {"1", "true", "yes"}
                elif isinstance(default, int):
                    values[field.name] = int(raw)
                elif isinstance(default, float):
                    values[field.name] = float(raw)
                else:
                    values[field.name] = raw
            except ValueError:
                raise ValueError(f"{PREFIX}{field.name.upper()}={raw!r} is not a {type(default).__name__}") from None
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        """Raise ValueError naming the first setting that cannot work."""
        if self.posting_level.upper() not in logging.getLevelNamesMapping():
            raise ValueError(
                f"{PREFIX}POSTING_LEVEL={self.posting_level!r} is not a logging level; use INFO or WARNING"
            )
        if not 0 <= self.metrics_port <= 65535:
            raise ValueError(f"{PREFIX}METRICS_PORT={self.metrics_port} is not a port (0 turns the metrics off)")
        if (
            self.resync_seconds <= 0 or self.retry_seconds <= 0 or self.blocked_retry_seconds <= 0
            or self.max_workers < 1 or self.batch_history < 1
        ):  # fmt: skip
            raise ValueError(
                f"{PREFIX}RESYNC_SECONDS, RETRY_SECONDS, BLOCKED_RETRY_SECONDS, MAX_WORKERS and BATCH_HISTORY "
                "must be positive"
            )
        if self.mqtt_url and not self.mqtt_url.startswith(("mqtt://", "mqtts://")):
            raise ValueError(f"{PREFIX}MQTT_URL={self.mqtt_url!r} must be mqtt://host:port or mqtts://host:port")
        if not self.state_uri.startswith(("s3://", "s3a://", "gs://", "abfs://", "hdfs://", "file://")):
            raise ValueError(f"{PREFIX}STATE_URI={self.state_uri!r} must be a durable URI (s3://, file://, ...)")

    @property
    def posting_level_number(self) -> int:
        return logging.getLevelNamesMapping()[self.posting_level.upper()]

    def retry_delay(self, retry: int) -> float:
        """The backoff before retry number ``retry`` (0-based): retry_seconds * 2**retry, capped."""
        return float(min(self.max_retry_seconds, self.retry_seconds * (2 ** min(retry, 16))))
