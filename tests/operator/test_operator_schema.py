"""What a schema failure means for a pipeline, without a cluster: blocked (a person must act, no hot
retry) or transient (retried with backoff). Real chDB, a real SQLite catalog, real refused connections."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from meterflow.spec import parse_manifest
from meterflow.stack.endpoints import IcebergLocation
from meterflow_clickhouse.client import ClickHouseError, session
from meterflow_clickhouse.migrate import apply_migrations, migrations
from meterflow_iceberg.catalog import LakeError, open_catalog
from meterflow_operator.kube import Kube
from meterflow_operator.schema import SchemaError, clickhouse_failure, iceberg_failure, resolve
from meterflow_operator.settings import Settings
from tests.conftest import example_manifest

NO_KUBE = cast(Kube, None)  # the sinks below reference no Secret: resolve makes no API call


def failure(error: SchemaError) -> tuple[str, bool]:
    return error.reason, error.transient


def test_an_edited_migration_is_blocked_and_named(tmp_path: Path) -> None:
    dsn = f"chdb://{tmp_path / 'clickhouse'}"
    apply_migrations(dsn, "wm")
    first = next(m for m in migrations() if m.version == 1)
    with session(dsn) as client:
        client.insert("wm.schema_migrations", [[1, first.name, "edited"]], column_names=["version", "name", "checksum"])
    with pytest.raises(ClickHouseError) as refused:
        apply_migrations(dsn, "wm")
    error = clickhouse_failure(refused.value)
    assert failure(error) == ("MigrationChanged", False)
    assert error.message == (
        "ClickHouse: migration 0001_speed_layer.sql changed after it was applied to wm; "
        "add a new migration instead of editing an applied one"
    )


def test_nothing_listening_is_transient() -> None:
    with pytest.raises(ClickHouseError) as refused, session("http://127.0.0.1:9/"):
        pass
    assert failure(clickhouse_failure(refused.value)) == ("ClickHouseUnreachable", True)


@pytest.mark.parametrize(
    ("code", "expected"),
    [(516, ("ClickHouseRefused", False)), (497, ("ClickHouseRefused", False)), (159, ("ClickHouseUnreachable", True))],
)
def test_refused_credentials_are_blocked_a_timeout_is_not(code: int, expected: tuple[str, bool]) -> None:
    # the exception clickhouse-connect raises for a server's error answer, wrapped by our client factory
    answer = DatabaseError(f"Received ClickHouse exception, code: {code}", code=code)
    try:
        raise ClickHouseError("cannot connect to ClickHouse at http://ch:8123/: refused") from answer
    except ClickHouseError as exc:
        assert failure(clickhouse_failure(exc)) == expected


def test_a_value_that_is_no_dsn_is_blocked_before_any_connection() -> None:
    # the model checks a manifest's dsn; the operator's default (like a Secret's value) arrives unchecked
    document = example_manifest("water-meters")
    document["metadata"]["namespace"] = "utility"
    document["spec"]["sinks"] = {"iceberg": {"catalogUri": "sqlite:///x.db"}}
    with pytest.raises(SchemaError) as refused:
        resolve(NO_KUBE, parse_manifest(document), Settings(clickhouse_dsn="ch.example:8123"))
    assert failure(refused.value) == ("ClickHouseDsnInvalid", False)
    assert refused.value.message == (
        "METERFLOW_OPERATOR_CLICKHOUSE_DSN is not a ClickHouse DSN (scheme 'ch.example'); "
        "use http(s)://user:password@host:8123/ or chdb:///path"
    )


def test_an_unknown_catalog_database_is_blocked(tmp_path: Path) -> None:
    location = IcebergLocation("lake", "notadb://x", f"file://{tmp_path}")
    with pytest.raises(LakeError) as refused:
        open_catalog(location)
    error = iceberg_failure(refused.value)
    assert failure(error) == ("IcebergCatalogInvalid", False)
    assert error.message == (
        "Iceberg: cannot open the Iceberg catalog at notadb://x: Can't load plugin: sqlalchemy.dialects:notadb"
    )
