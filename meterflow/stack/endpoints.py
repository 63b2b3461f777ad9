"""Where a pipeline's Kafka, ClickHouse and Iceberg are: one rule, on every runtime.

For each endpoint the first of these that has a value wins (:func:`resolve`):

1. **the Secret the spec references**, as the runtime sees it: the operator reads it through the
   Kubernetes API; a job reads the environment variable the operator injected from it
   (:data:`CLICKHOUSE_DSN_ENV`, :data:`ICEBERG_CATALOG_URI_ENV`), and locally the same variables
   may be set by hand. A spec that references a Secret whose value cannot be had is an error,
   never a silent fall-back to a default;
2. **the manifest** (``spec.source.bootstrapServers``, ``spec.sinks.*``);
3. **the runtime's default** (:class:`Defaults`): the embedded stack under the state folder
   locally (:func:`meterflow.stack.local.local_defaults`); the Strimzi bootstrap service in a
   Flink cluster (:func:`cluster_defaults`); the operator's own settings in the operator.

Every caller goes through :func:`resolve`: the CLI and the jobs with :func:`job_endpoints`, the
operator with its Secret reader and settings. Kafka is resolved when first asked for: the batch
never needs it, and locally asking means the embedded broker must be running.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import urlsplit

from meterflow.errors import SpecError
from meterflow.spec.model import CLICKHOUSE_DSN_PATTERN, MeterPipeline, SecretKeyRef

CLICKHOUSE_DSN_ENV = "METERFLOW_CLICKHOUSE_DSN"
ICEBERG_CATALOG_URI_ENV = "METERFLOW_ICEBERG_CATALOG_URI"
CLICKHOUSE_FIELD = "spec.sinks.clickhouse"
ICEBERG_FIELD = "spec.sinks.iceberg"
FIELD_ENV = {CLICKHOUSE_FIELD: CLICKHOUSE_DSN_ENV, ICEBERG_FIELD: ICEBERG_CATALOG_URI_ENV}
"""The environment variable that carries each sink's Secret value to a job."""

STRIMZI_BOOTSTRAP_PORT = 9092
"""The plain listener of a Strimzi cluster's bootstrap service."""

FLINK_CLUSTER_ENV = "PYFLINK_GATEWAY_PORT"
"""Set in a Flink cluster's PythonDriver (application mode on Kubernetes), never by a local run."""


@dataclass(frozen=True)
class IcebergLocation:
    """An Iceberg SQL catalog (name and URI) and its warehouse."""

    catalog_name: str
    catalog_uri: str
    warehouse: str


class EndpointError(SpecError):
    """An endpoint has no value, or a bad one; ``reason`` names the cause for status conditions."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


SecretChannel = Callable[[str, SecretKeyRef | None], str | None]
"""How a runtime sees a sink's Secret: (the spec field, its secretRef) → the value, or None."""


@dataclass(frozen=True)
class Defaults:
    """What a runtime supplies where the Secret and the manifest are silent."""

    clickhouse_dsn: str | None = None
    iceberg_catalog_uri: str | None = None
    iceberg_warehouse: str | None = None
    kafka_bootstrap: Callable[[], str] | None = None
    """Asked only when Kafka is needed (locally: the running embedded broker); None: Strimzi's service."""
    clickhouse_dsn_from: str = "the default DSN"
    iceberg_from: str = "the default catalog URI"
    """Where this runtime's defaults are set, for the errors that name them."""


class Endpoints:
    """A pipeline's endpoints by the rule of this module, each worked out when first asked for
    (so a command that needs only Kafka never trips on a sink's Secret). May hold credentials:
    never log or store them."""

    def __init__(self, pipeline: MeterPipeline, defaults: Defaults, secret: SecretChannel) -> None:
        self._pipeline = pipeline
        self._defaults = defaults
        self._secret = secret

    @cached_property
    def kafka_bootstrap(self) -> str:
        """The Kafka bootstrap servers: the manifest's, else the runtime's default."""
        if servers := self._pipeline.spec.source.bootstrap_servers:
            return servers
        if self._defaults.kafka_bootstrap is not None:
            return self._defaults.kafka_bootstrap()
        return strimzi_bootstrap(self._pipeline)

    @cached_property
    def clickhouse_dsn(self) -> str:
        """The ClickHouse DSN: the Secret's, the manifest's, else the runtime's default."""
        sink, defaults = self._pipeline.spec.sinks.clickhouse, self._defaults
        dsn = self._secret(CLICKHOUSE_FIELD, sink.secret_ref) or sink.dsn or defaults.clickhouse_dsn
        if not dsn:
            raise EndpointError(
                "ClickHouseNotConfigured",
                f"set {CLICKHOUSE_FIELD}.secretRef (or dsn), or {defaults.clickhouse_dsn_from}",
            )
        if not re.match(CLICKHOUSE_DSN_PATTERN, dsn):
            # the model checks a manifest's dsn; a Secret's value and a default arrive unchecked
            scheme = urlsplit(dsn).scheme
            where = "the Secret's value" if sink.secret_ref else defaults.clickhouse_dsn_from
            raise EndpointError(
                "ClickHouseDsnInvalid",
                f"{where} is not a ClickHouse DSN (scheme {scheme or 'missing'!r}); "
                "use http(s)://user:password@host:8123/ or chdb:///path",
            )
        return dsn

    @cached_property
    def iceberg(self) -> IcebergLocation:
        """The Iceberg catalog (the Secret's URI, the manifest's, else the default) and warehouse."""
        sink, defaults = self._pipeline.spec.sinks.iceberg, self._defaults
        uri = self._secret(ICEBERG_FIELD, sink.secret_ref) or sink.catalog_uri or defaults.iceberg_catalog_uri
        if not uri:
            raise EndpointError(
                "IcebergNotConfigured", f"set {ICEBERG_FIELD}.secretRef (or catalogUri), or {defaults.iceberg_from}"
            )
        warehouse = sink.warehouse or defaults.iceberg_warehouse
        if not warehouse:
            raise EndpointError("IcebergNotConfigured", f"set {ICEBERG_FIELD}.warehouse")
        return IcebergLocation(sink.catalog_name, uri, warehouse)


def strimzi_bootstrap(pipeline: MeterPipeline) -> str:
    """The bootstrap service of the Strimzi cluster ``spec.source.kafkaCluster`` names."""
    return f"{pipeline.spec.source.kafka_cluster}-kafka-bootstrap:{STRIMZI_BOOTSTRAP_PORT}"


def in_flink_cluster() -> bool:
    """True inside a Flink cluster's PythonDriver (application mode on Kubernetes)."""
    return FLINK_CLUSTER_ENV in os.environ


def cluster_defaults() -> Defaults:
    """A job in a Flink cluster: Kafka is the Strimzi service; the sinks come from the manifest
    the operator wrote (its defaults filled in) or the Secrets it injected."""
    return Defaults(
        clickhouse_dsn_from="the operator's METERFLOW_OPERATOR_CLICKHOUSE_DSN (it fills in the manifest)",
        iceberg_from="the operator's METERFLOW_OPERATOR_ICEBERG_CATALOG_URI (it fills in the manifest)",
    )


def environment(field_name: str, ref: SecretKeyRef | None) -> str | None:
    """The jobs' and the CLI's :data:`SecretChannel`: the environment variable of ``field_name``."""
    variable = FIELD_ENV[field_name]
    if value := os.environ.get(variable):
        return value
    if ref is not None:
        raise EndpointError(
            "SecretNotInEnvironment",
            f"{field_name}.secretRef ({ref.name}/{ref.key}) is resolved on Kubernetes only; locally set "
            f"{variable} or {field_name}.{'dsn' if field_name == CLICKHOUSE_FIELD else 'catalogUri'}",
        )
    return None


def no_secret(field_name: str, ref: SecretKeyRef | None) -> None:
    """The :data:`SecretChannel` of a caller that needs no sink (e.g. only Kafka)."""
    return None


def resolve(pipeline: MeterPipeline, defaults: Defaults, secret: SecretChannel) -> Endpoints:
    """``pipeline``'s endpoints by the one rule of this module: Secret > manifest > default."""
    return Endpoints(pipeline, defaults, secret)


def job_endpoints(pipeline: MeterPipeline, *, start_broker: bool = False) -> Endpoints:
    """The endpoints as the CLI and the jobs see them: the environment as the Secret channel, and
    the defaults of the runtime they run on (``start_broker``: locally, start the embedded broker
    when Kafka is asked for)."""
    if in_flink_cluster():
        return resolve(pipeline, cluster_defaults(), environment)
    from meterflow.stack.local import local_defaults

    return resolve(pipeline, local_defaults(start_broker=start_broker), environment)


def kafka_bootstrap(pipeline: MeterPipeline, *, start_broker: bool = False) -> str:
    """The Kafka bootstrap servers of ``pipeline`` (:func:`job_endpoints`)."""
    return job_endpoints(pipeline, start_broker=start_broker).kafka_bootstrap


def clickhouse_dsn(pipeline: MeterPipeline) -> str:
    """The ClickHouse DSN of ``pipeline`` (:func:`job_endpoints`)."""
    return job_endpoints(pipeline).clickhouse_dsn


def iceberg_location(pipeline: MeterPipeline) -> IcebergLocation:
    """The Iceberg catalog and warehouse of ``pipeline`` (:func:`job_endpoints`)."""
    return job_endpoints(pipeline).iceberg
