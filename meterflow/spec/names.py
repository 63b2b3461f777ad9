"""Every name derived from a pipeline's name: topics, ClickHouse database, Iceberg namespace.

The pipeline name is a DNS-1123 label (checked by the model and the CRD), so every derived
name is valid for Kafka, Kubernetes, ClickHouse and Iceberg without quoting.
"""

from __future__ import annotations

from dataclasses import dataclass

from meterflow.spec.model import MeterPipeline


def sql_identifier(name: str) -> str:
    """``water-meters`` → ``water_meters`` (ClickHouse and Iceberg names without quoting)."""
    return name.replace("-", "_")


@dataclass(frozen=True)
class Topics:
    """The Kafka topics of a pipeline: the five of the contract, the internal counters, and people's
    actions on alerts (acknowledge, resolve), which the streaming job reads."""

    readings: str
    dlq: str
    aggregates: str
    alerts: str
    meters: str
    counters: str
    alert_commands: str

    def all(self) -> list[str]:
        return [self.readings, self.dlq, self.aggregates, self.alerts, self.meters, self.counters, self.alert_commands]


@dataclass(frozen=True)
class PipelineNames:
    """The names a pipeline's parts use."""

    pipeline: str
    topics: Topics
    clickhouse_database: str
    iceberg_namespace: str
    readings_table: str
    consumer_group: str


def names_for(pipeline: MeterPipeline) -> PipelineNames:
    """Derive every name of ``pipeline`` (spec overrides for database and namespace win)."""
    name = pipeline.metadata.name
    sinks = pipeline.spec.sinks
    namespace = sinks.iceberg.namespace or sql_identifier(name)
    return PipelineNames(
        pipeline=name,
        topics=Topics(
            readings=f"{name}.readings",
            dlq=f"{name}.readings.dlq",
            aggregates=f"{name}.aggregates",
            alerts=f"{name}.alerts",
            meters=f"{name}.meters",
            counters=f"{name}.counters",
            alert_commands=f"{name}.alert-commands",
        ),
        clickhouse_database=sinks.clickhouse.database or sql_identifier(name),
        iceberg_namespace=namespace,
        readings_table=f"{namespace}.readings",
        consumer_group=f"meterflow.{name}",
    )
