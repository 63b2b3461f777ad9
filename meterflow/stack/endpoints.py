"""Where a pipeline's ClickHouse and Iceberg live, on either runtime.

Order of precedence, so one manifest works everywhere: the environment (on Kubernetes the
operator injects values from the Secrets the spec references) > the manifest > the embedded
defaults under the local state folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from meterflow.errors import SpecError
from meterflow.paths import state_home
from meterflow.spec.model import MeterPipeline

CLICKHOUSE_DSN_ENV = "METERFLOW_CLICKHOUSE_DSN"
ICEBERG_CATALOG_URI_ENV = "METERFLOW_ICEBERG_CATALOG_URI"


@dataclass(frozen=True)
class IcebergLocation:
    """An Iceberg SQL catalog (name and URI) and its warehouse."""

    catalog_name: str
    catalog_uri: str
    warehouse: str


def clickhouse_dsn(pipeline: MeterPipeline) -> str:
    """The ClickHouse DSN: env, manifest, or the embedded chDB folder."""
    sink = pipeline.spec.sinks.clickhouse
    if env := os.environ.get(CLICKHOUSE_DSN_ENV):
        return env
    if sink.dsn:
        return sink.dsn
    if sink.secret_ref:
        raise SpecError(
            f"spec.sinks.clickhouse.secretRef ({sink.secret_ref.name}/{sink.secret_ref.key}) is resolved on "
            f"Kubernetes only; locally set {CLICKHOUSE_DSN_ENV} or spec.sinks.clickhouse.dsn"
        )
    return f"chdb://{state_home() / 'clickhouse'}"


def iceberg_location(pipeline: MeterPipeline) -> IcebergLocation:
    """The Iceberg catalog and warehouse: env, manifest, or SQLite and a folder under state."""
    sink = pipeline.spec.sinks.iceberg
    uri = os.environ.get(ICEBERG_CATALOG_URI_ENV) or sink.catalog_uri
    if not uri and sink.secret_ref:
        raise SpecError(
            f"spec.sinks.iceberg.secretRef ({sink.secret_ref.name}/{sink.secret_ref.key}) is resolved on "
            f"Kubernetes only; locally set {ICEBERG_CATALOG_URI_ENV} or spec.sinks.iceberg.catalogUri"
        )
    lake = state_home() / "lake"
    return IcebergLocation(
        catalog_name=sink.catalog_name,
        catalog_uri=uri or f"sqlite:///{lake / 'catalog.db'}",
        warehouse=sink.warehouse or f"file://{lake / 'warehouse'}",
    )
