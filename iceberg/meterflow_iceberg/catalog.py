"""One Iceberg SQL catalog, opened from Python (pyiceberg) and from Flink (JdbcCatalog).

pyiceberg's ``SqlCatalog`` and Java's ``JdbcCatalog`` share the same tables
(``iceberg_tables``, ``iceberg_namespace_properties``) as long as the catalog *name* is the same
on both sides. Flink has no ``catalog-type='jdbc'``: it needs ``catalog-impl`` and a ``jdbc:`` URI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pyiceberg.catalog.sql import SqlCatalog

from meterflow.errors import MeterflowError
from meterflow.stack.endpoints import IcebergLocation


class LakeError(MeterflowError):
    """The Iceberg catalog or warehouse cannot be used."""


def open_catalog(location: IcebergLocation) -> SqlCatalog:
    """The pyiceberg catalog of ``location`` (a local SQLite catalog is created on first use)."""
    if location.catalog_uri.startswith("sqlite:///"):
        Path(location.catalog_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if location.warehouse.startswith("file://"):
        Path(location.warehouse.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
    try:
        return SqlCatalog(location.catalog_name, uri=location.catalog_uri, warehouse=location.warehouse)
    except Exception as exc:
        raise LakeError(f"cannot open the Iceberg catalog at {_redact(location.catalog_uri)}: {exc}") from exc


def flink_catalog_options(location: IcebergLocation) -> dict[str, str]:
    """``CREATE CATALOG`` options for Flink's Iceberg connector pointing at the same catalog."""
    options = {
        "type": "iceberg",
        "catalog-impl": "org.apache.iceberg.jdbc.JdbcCatalog",
        "warehouse": location.warehouse,
        "jdbc.schema-version": "V1",
    }
    uri = location.catalog_uri
    if uri.startswith("sqlite:///"):
        options["uri"] = "jdbc:sqlite:" + uri.removeprefix("sqlite:///")
    elif uri.startswith(("postgresql://", "postgresql+psycopg2://", "postgresql+psycopg://")):
        parsed = urlparse(uri)
        options["uri"] = f"jdbc:postgresql://{parsed.hostname}:{parsed.port or 5432}{parsed.path}"
        if parsed.username:
            options["jdbc.user"] = parsed.username
        if parsed.password:
            options["jdbc.password"] = parsed.password
    else:
        raise LakeError(f"catalog URI {_redact(uri)} is not supported; use sqlite:///path or postgresql://host/db")
    return options


def flink_catalog_ddl(location: IcebergLocation) -> str:
    """The Flink SQL statement that registers the catalog under its shared name."""
    body = ",\n  ".join(f"'{k}' = '{_escape(v)}'" for k, v in flink_catalog_options(location).items())
    return f"CREATE CATALOG IF NOT EXISTS `{location.catalog_name}` WITH (\n  {body}\n)"


def _escape(value: Any) -> str:
    return str(value).replace("'", "''")


def _redact(uri: str) -> str:
    parsed = urlparse(uri)
    return uri.replace(f":{parsed.password}@", ":***@") if parsed.password else uri
