"""The pipeline's ClickHouse schema and Iceberg table, with credentials from the referenced Secrets.

Where a sink is: the Secret key in ``secretRef`` (read with the Kubernetes API, never copied
anywhere), else the manifest's ``dsn``/``catalogUri``, else the operator's defaults
(:class:`~meterflow_operator.settings.Settings`). What happens there: the same migrations the
speed layer uses (:func:`meterflow_clickhouse.migrate.apply_migrations`) and
:func:`meterflow_iceberg.tables.ensure_readings_table`; on deletion with the Delete policy, the
database and the namespace are dropped. Every failure is a :class:`SchemaError` with the
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
import re
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from meterflow.spec.model import CLICKHOUSE_DSN_PATTERN, MeterPipeline, SecretKeyRef
from meterflow.spec.names import names_for
from meterflow.stack.endpoints import IcebergLocation
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


@dataclass(frozen=True)
class Endpoints:
    """Where a pipeline's sinks are, resolved (may hold credentials: never log or store it)."""

    clickhouse_dsn: str
    iceberg: IcebergLocation


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


def resolve(kube: Kube, pipeline: MeterPipeline, settings: Settings) -> Endpoints:
    """The sinks' endpoints: Secret, else manifest, else the operator's defaults."""
    namespace = namespace_of(pipeline)
    sinks = pipeline.spec.sinks
    if sinks.clickhouse.secret_ref:
        dsn: str | None = read_secret(kube, namespace, sinks.clickhouse.secret_ref, "spec.sinks.clickhouse.secretRef")
    else:
        dsn = sinks.clickhouse.dsn or settings.clickhouse_dsn
    if not dsn:
        raise SchemaError(
            "ClickHouseNotConfigured",
            "set spec.sinks.clickhouse.secretRef (or dsn), or the operator's METERFLOW_OPERATOR_CLICKHOUSE_DSN",
        )
    if not re.match(CLICKHOUSE_DSN_PATTERN, dsn):
        scheme = urlsplit(dsn).scheme
        # the model checks a manifest's dsn; a Secret's value and the operator's default arrive unchecked
        where = "the Secret's value" if sinks.clickhouse.secret_ref else "METERFLOW_OPERATOR_CLICKHOUSE_DSN"
        raise SchemaError(
            "ClickHouseDsnInvalid",
            f"{where} is not a ClickHouse DSN (scheme {scheme or 'missing'!r}); "
            "use http(s)://user:password@host:8123/ or chdb:///path",
            transient=False,
        )
    if sinks.iceberg.secret_ref:
        uri: str | None = read_secret(kube, namespace, sinks.iceberg.secret_ref, "spec.sinks.iceberg.secretRef")
    else:
        uri = sinks.iceberg.catalog_uri or settings.iceberg_catalog_uri
    if not uri:
        raise SchemaError(
            "IcebergNotConfigured",
            "set spec.sinks.iceberg.secretRef (or catalogUri), "
            "or the operator's METERFLOW_OPERATOR_ICEBERG_CATALOG_URI",
        )
    location = IcebergLocation(
        catalog_name=sinks.iceberg.catalog_name,
        catalog_uri=uri,
        warehouse=sinks.iceberg.warehouse or settings.iceberg_warehouse,
    )
    return Endpoints(dsn, location)


def ensure_schema(kube: Kube, pipeline: MeterPipeline, settings: Settings) -> str:
    """Apply the ClickHouse migrations and serving views and create the Iceberg table; return a one-line summary."""
    endpoints = resolve(kube, pipeline, settings)
    names = names_for(pipeline)
    from meterflow_clickhouse.client import session  # heavy imports: only where needed
    from meterflow_clickhouse.schema import ensure_schema as ensure_clickhouse
    from meterflow_iceberg.catalog import open_catalog
    from meterflow_iceberg.tables import ensure_readings_table

    with _ENGINE_LOCK:
        try:
            with session(endpoints.clickhouse_dsn) as client:
                applied = ensure_clickhouse(client, pipeline)
        except Exception as exc:  # the driver raises many types; classified by type and code
            raise clickhouse_failure(exc) from None
        try:
            ensure_readings_table(open_catalog(endpoints.iceberg), names.iceberg_namespace)
        except Exception as exc:
            raise iceberg_failure(exc) from None
    done = f"{len(applied)} migration(s) applied" if applied else "migrations up to date"
    return f"ClickHouse database {names.clickhouse_database} ({done}); Iceberg table {names.readings_table}"


def drop_schema(kube: Kube, pipeline: MeterPipeline, settings: Settings) -> str:
    """Drop the ClickHouse database and the Iceberg namespace (the Delete retention policy)."""
    endpoints = resolve(kube, pipeline, settings)
    names = names_for(pipeline)
    from pyiceberg.exceptions import NoSuchNamespaceError

    from meterflow_clickhouse.migrate import drop_database
    from meterflow_iceberg.catalog import open_catalog
    from meterflow_iceberg.tables import drop_namespace

    with _ENGINE_LOCK:
        try:
            drop_database(endpoints.clickhouse_dsn, names.clickhouse_database)
        except Exception as exc:
            raise clickhouse_failure(exc) from None
        try:
            drop_namespace(open_catalog(endpoints.iceberg), names.iceberg_namespace)
        except NoSuchNamespaceError:
            pass
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
