"""The pipeline's ClickHouse schema and Iceberg table, with credentials from the referenced Secrets.

Where a sink is: the one rule of :mod:`meterflow.stack.endpoints` (Secret > manifest > default),
with the operator's channel to Secrets (the key in ``secretRef``, read with the Kubernetes API,
never copied anywhere) and its defaults (:class:`~meterflow_operator.settings.Settings`). What
happens there is the one provisioning path (:mod:`meterflow_provision`): the migrations and
serving views, the Iceberg table; on deletion with the Delete policy, the database and the
namespace are dropped. Every failure is a :class:`SchemaError` with the
condition reason it maps to, and whether waiting can fix it:

* transient — retried with backoff: SecretNotFound (not created yet), SecretUnreadable,
  ClickHouseUnreachable, IcebergUnreachable;
* blocked — only a person can fix it, so no hot retry: SecretKeyNotFound, ClickHouseDsnInvalid
  (a value that is no ClickHouse DSN), MigrationChanged (an applied migration was edited: ship a
  new one), ClickHouseRefused (credentials or permissions), IcebergCatalogInvalid (an unknown
  database kind or its driver missing). The SQL catalog reports refused credentials like a lost
  connection (SQLAlchemy's OperationalError), so they stay IcebergUnreachable.

Called by :mod:`meterflow_operator.reconcile`.
"""

from __future__ import annotations

import base64
import threading

from meterflow.spec.model import MeterPipeline, SecretKeyRef
from meterflow.spec.names import names_for
from meterflow.stack.endpoints import Defaults, EndpointError, Endpoints
from meterflow.stack.endpoints import resolve as resolve_endpoints
from meterflow_operator.kube import SECRET, Kube, KubeError
from meterflow_operator.render.common import namespace_of
from meterflow_operator.settings import Settings

# chDB (the embedded engine of local runs and tests) lets a process open one data folder at a
# time; the operator's handler threads take turns for every schema operation.
_ENGINE_LOCK = threading.Lock()


# ClickHouse error codes that mean the server answered and refused who we are: UNKNOWN_USER,
# WRONG_PASSWORD, REQUIRED_PASSWORD, ACCESS_DENIED, AUTHENTICATION_FAILED.
_REFUSED_CODES = frozenset({192, 193, 194, 497, 516})


class SchemaError(Exception):
    """The schema could not be ensured; ``reason`` is the SchemaReady condition's reason, and
    ``transient`` says whether waiting can fix it (False: a person must act)."""

    def __init__(self, reason: str, message: str, *, transient: bool = True) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.transient = transient


def read_secret(kube: Kube, namespace: str, ref: SecretKeyRef, field: str) -> str:
    """The value of one Secret key; SecretNotFound / SecretKeyNotFound otherwise."""
    try:
        secret = kube.get(SECRET, namespace, ref.name)
    except KubeError as exc:
        raise SchemaError("SecretUnreadable", f"{field}: cannot read Secret {ref.name}: {exc.message}") from None
    if secret is None:
        raise SchemaError("SecretNotFound", f"{field}: Secret {namespace}/{ref.name} does not exist; create it")
    data = secret.get("data") or {}
    if ref.key not in data:
        keys = ", ".join(sorted(data)) or "none"
        raise SchemaError(
            "SecretKeyNotFound", f"{field}: Secret {ref.name} has no key {ref.key!r} (keys: {keys})", transient=False
        )
    return base64.b64decode(data[ref.key]).decode().strip()


def operator_defaults(settings: Settings) -> Defaults:
    """The operator's defaults for the sinks (its settings); Kafka: the Strimzi cluster's service."""
    return Defaults(
        clickhouse_dsn=settings.clickhouse_dsn,
        iceberg_catalog_uri=settings.iceberg_catalog_uri,
        iceberg_warehouse=settings.iceberg_warehouse,
        clickhouse_dsn_from="METERFLOW_OPERATOR_CLICKHOUSE_DSN",
        iceberg_from="METERFLOW_OPERATOR_ICEBERG_CATALOG_URI",
    )


def resolve(kube: Kube, pipeline: MeterPipeline, settings: Settings) -> Endpoints:
    """The sinks' endpoints (:func:`meterflow.stack.endpoints.resolve` with the operator's Secrets
    and settings), worked out now: a missing or bad one is a :class:`SchemaError`."""
    namespace = namespace_of(pipeline)

    def secret(field: str, ref: SecretKeyRef | None) -> str | None:
        return read_secret(kube, namespace, ref, f"{field}.secretRef") if ref is not None else None

    endpoints = resolve_endpoints(pipeline, operator_defaults(settings), secret)
    try:
        endpoints.clickhouse_dsn  # noqa: B018 - resolved here, so that its failure is classified here
        endpoints.iceberg  # noqa: B018
    except EndpointError as exc:
        raise SchemaError(exc.reason, str(exc), transient=exc.reason != "ClickHouseDsnInvalid") from None
    return endpoints


def ensure_schema(kube: Kube, pipeline: MeterPipeline, settings: Settings) -> str:
    """Provision the ClickHouse migrations and serving views and the Iceberg table (Strimzi owns the
    topics); return a one-line summary."""
    endpoints = resolve(kube, pipeline, settings)
    names = names_for(pipeline)
    from meterflow_provision import ensure_clickhouse, ensure_lake  # heavy imports: only where needed

    with _ENGINE_LOCK:
        try:
            applied = ensure_clickhouse(pipeline, endpoints)
        except Exception as exc:  # the driver raises many types; classified by type and code
            raise clickhouse_failure(exc) from None
        try:
            ensure_lake(pipeline, endpoints)
        except Exception as exc:
            raise iceberg_failure(exc) from None
    done = f"{len(applied)} migration(s) applied" if applied else "migrations up to date"
    return f"ClickHouse database {names.clickhouse_database} ({done}); Iceberg table {names.readings_table}"


def drop_schema(kube: Kube, pipeline: MeterPipeline, settings: Settings) -> str:
    """Deprovision the ClickHouse database and the Iceberg namespace (the Delete retention policy)."""
    endpoints = resolve(kube, pipeline, settings)
    names = names_for(pipeline)
    from meterflow_provision import drop_clickhouse, drop_lake

    with _ENGINE_LOCK:
        try:
            drop_clickhouse(pipeline, endpoints)
        except Exception as exc:
            raise clickhouse_failure(exc) from None
        try:
            drop_lake(pipeline, endpoints)
        except Exception as exc:
            raise iceberg_failure(exc) from None
    return f"dropped ClickHouse database {names.clickhouse_database} and Iceberg namespace {names.iceberg_namespace}"


def clickhouse_failure(exc: Exception) -> SchemaError:
    """What a ClickHouse failure means for the pipeline: blocked (a person must act) or transient."""
    from meterflow_clickhouse.migrate import MigrationChangedError

    message = f"ClickHouse: {_first_line(exc)}"
    causes = [exc, exc.__cause__]
    if isinstance(exc, MigrationChangedError):
        return SchemaError("MigrationChanged", message, transient=False)
    if any(getattr(c, "code", None) in _REFUSED_CODES for c in causes):
        return SchemaError("ClickHouseRefused", message, transient=False)
    return SchemaError("ClickHouseUnreachable", message)


def iceberg_failure(exc: Exception) -> SchemaError:
    """What an Iceberg catalog failure means for the pipeline: blocked (a person must act) or transient."""
    from sqlalchemy.exc import ArgumentError

    message = f"Iceberg: {_first_line(exc)}"
    causes = [exc, exc.__cause__]
    if any(isinstance(c, ArgumentError | ImportError) for c in causes):  # an unknown database, or its driver missing
        return SchemaError("IcebergCatalogInvalid", message, transient=False)
    return SchemaError("IcebergUnreachable", message)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:500] if text else type(exc).__name__
