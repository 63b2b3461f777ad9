"""The lake's tables: the raw readings, partitioned by day of event time.

Created here (pyiceberg, idempotently) before the streaming job starts; Flink then appends on
every checkpoint. Table properties keep a streaming writer's metadata in check.
"""

from __future__ import annotations

import contextlib

from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import (
    NamespaceAlreadyExistsError,
    NoSuchNamespaceError,
    NoSuchTableError,
    TableAlreadyExistsError,
)
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.transforms import DayTransform
from pyiceberg.types import BooleanType, DoubleType, IntegerType, LongType, NestedField, StringType, TimestamptzType

READINGS = "readings"

READINGS_SCHEMA = Schema(
    NestedField(1, "meter_id", StringType(), required=True),
    NestedField(2, "measurement_type", StringType(), required=True),
    NestedField(3, "series", StringType(), required=True),
    NestedField(4, "unit", StringType(), required=True),
    NestedField(5, "value", DoubleType(), required=True),
    NestedField(6, "event_time", TimestamptzType(), required=True, doc="the reading's instant (UTC)"),
    NestedField(7, "ingest_time", TimestamptzType(), required=False, doc="Kafka record timestamp"),
    NestedField(8, "kafka_partition", IntegerType(), required=False),
    NestedField(9, "kafka_offset", LongType(), required=False),
    NestedField(10, "late", BooleanType(), required=False, doc="arrived after its windows had closed"),
)

READINGS_PARTITION_SPEC = PartitionSpec(
    PartitionField(source_id=6, field_id=1000, transform=DayTransform(), name="event_day")
)

READINGS_PROPERTIES = {
    "format-version": "2",
    "write.format.default": "parquet",
    "write.parquet.compression-codec": "zstd",
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "100",
    "commit.manifest-merge.enabled": "true",
}


def ensure_namespace(catalog: Catalog, namespace: str) -> None:
    with contextlib.suppress(NamespaceAlreadyExistsError):  # idempotent
        catalog.create_namespace(namespace)


def ensure_readings_table(catalog: Catalog, namespace: str) -> Table:
    """Create ``<namespace>.readings`` if absent and return it."""
    ensure_namespace(catalog, namespace)
    identifier = f"{namespace}.{READINGS}"
    try:
        return catalog.load_table(identifier)
    except NoSuchTableError:
        pass
    try:
        return catalog.create_table(
            identifier,
            schema=READINGS_SCHEMA,
            partition_spec=READINGS_PARTITION_SPEC,
            properties=READINGS_PROPERTIES,
        )
    except TableAlreadyExistsError:
        return catalog.load_table(identifier)


def drop_namespace(catalog: Catalog, namespace: str) -> None:
    """Drop the readings table and the namespace (the operator's Delete retention policy, and
    ``meterflow reset``); a namespace that does not exist is already dropped."""
    with contextlib.suppress(NoSuchNamespaceError):
        for identifier in catalog.list_tables(namespace):
            catalog.purge_table(identifier)
        catalog.drop_namespace(namespace)
