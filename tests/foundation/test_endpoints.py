"""Where a pipeline's places are: one rule (Secret > manifest > the runtime's default) for every runtime."""

from __future__ import annotations

from typing import Any

import pytest

from meterflow.spec import MeterPipeline, parse_manifest
from meterflow.spec.model import SecretKeyRef
from meterflow.stack.endpoints import (
    CLICKHOUSE_DSN_ENV,
    Defaults,
    EndpointError,
    IcebergLocation,
    environment,
    no_secret,
    resolve,
    strimzi_bootstrap,
)
from tests.conftest import example_manifest

DEFAULTS = Defaults(
    clickhouse_dsn="chdb:///default",
    iceberg_catalog_uri="sqlite:///default.db",
    iceberg_warehouse="file:///default-wh",
    kafka_bootstrap=lambda: "embedded:9092",
    clickhouse_dsn_from="THE_DEFAULT_DSN",
)


def pipeline(source: dict[str, Any] | None = None, **sinks: dict[str, Any]) -> MeterPipeline:
    document = example_manifest("water-meters")
    document["spec"]["source"] = document["spec"].get("source", {}) | (source or {})
    document["spec"]["sinks"] = sinks
    return parse_manifest(document)


def secrets(values: dict[str, str]) -> Any:
    def channel(field: str, ref: SecretKeyRef | None) -> str | None:
        return values.get(f"{ref.name}/{ref.key}") if ref is not None else None

    return channel


REF = {"secretRef": {"name": "ch", "key": "dsn"}}


def test_the_secret_wins_then_the_manifest_then_the_default() -> None:
    secret = resolve(pipeline(clickhouse=REF), DEFAULTS, secrets({"ch/dsn": "https://secret:8443/"}))
    assert secret.clickhouse_dsn == "https://secret:8443/"
    manifest = resolve(pipeline(clickhouse={"dsn": "https://manifest:8443/"}), DEFAULTS, no_secret)
    assert manifest.clickhouse_dsn == "https://manifest:8443/"
    default = resolve(pipeline(), DEFAULTS, no_secret)
    assert default.clickhouse_dsn == "chdb:///default"
    assert default.iceberg == IcebergLocation("meterflow", "sqlite:///default.db", "file:///default-wh")
    lake = resolve(pipeline(iceberg={"catalogUri": "postgresql://cat/db", "warehouse": "s3://wh"}), DEFAULTS, no_secret)
    assert lake.iceberg == IcebergLocation("meterflow", "postgresql://cat/db", "s3://wh")


def test_kafka_is_the_manifests_else_the_runtimes_else_strimzis() -> None:
    named = pipeline(source={"bootstrapServers": "kafka-a:9092"})
    assert resolve(named, DEFAULTS, no_secret).kafka_bootstrap == "kafka-a:9092"
    assert resolve(pipeline(), DEFAULTS, no_secret).kafka_bootstrap == "embedded:9092"
    assert resolve(pipeline(), Defaults(), no_secret).kafka_bootstrap == strimzi_bootstrap(pipeline())
    assert strimzi_bootstrap(pipeline()) == "meterflow-kafka-bootstrap:9092"


def test_a_referenced_secret_without_a_value_is_an_error_never_a_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CLICKHOUSE_DSN_ENV, raising=False)
    endpoints = resolve(pipeline(clickhouse=REF), DEFAULTS, environment)
    assert endpoints.kafka_bootstrap == "embedded:9092"  # what needs only Kafka is not stopped by a sink
    with pytest.raises(EndpointError) as missing:
        _ = endpoints.clickhouse_dsn
    assert str(missing.value) == (
        "spec.sinks.clickhouse.secretRef (ch/dsn) is resolved on Kubernetes only; locally set "
        "METERFLOW_CLICKHOUSE_DSN or spec.sinks.clickhouse.dsn"
    )
    monkeypatch.setenv(CLICKHOUSE_DSN_ENV, "http://from-env:8123/")
    assert resolve(pipeline(clickhouse=REF), DEFAULTS, environment).clickhouse_dsn == "http://from-env:8123/"


def test_a_value_that_is_no_dsn_is_refused_naming_where_it_came_from() -> None:
    with pytest.raises(EndpointError) as bad:
        _ = resolve(pipeline(), Defaults(clickhouse_dsn="ch.example:9000"), no_secret).clickhouse_dsn
    assert (bad.value.reason, str(bad.value)) == (
        "ClickHouseDsnInvalid",
        "the default DSN is not a ClickHouse DSN (scheme 'ch.example'); use http(s)://user:password@host:8123/ or "
        "chdb:///path",
    )
    with pytest.raises(EndpointError) as secret:
        _ = resolve(pipeline(clickhouse=REF), DEFAULTS, secrets({"ch/dsn": "tcp://x"})).clickhouse_dsn
    assert secret.value.reason == "ClickHouseDsnInvalid" and str(secret.value).startswith("the Secret's value")
    with pytest.raises(EndpointError) as none:
        _ = resolve(pipeline(), Defaults(clickhouse_dsn_from="THE_DEFAULT_DSN"), no_secret).clickhouse_dsn
    assert (none.value.reason, str(none.value)) == (
        "ClickHouseNotConfigured",
        "set spec.sinks.clickhouse.secretRef (or dsn), or THE_DEFAULT_DSN",
    )
