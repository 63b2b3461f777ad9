"""Provision and deprovision one pipeline at its resolved endpoints (see the package docstring)."""

from __future__ import annotations

import csv
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

from meterflow import kafka_clients
from meterflow.errors import SpecError, StackError
from meterflow.reading import MeterInfo
from meterflow.spec.model import MeterPipeline
from meterflow.spec.names import PipelineNames, names_for
from meterflow.spec.topics import topic_plan
from meterflow.stack.endpoints import Endpoints
from meterflow.stack.topics import delete_topics, ensure_topics
from meterflow_clickhouse.client import session
from meterflow_clickhouse.migrate import drop_database
from meterflow_clickhouse.schema import ensure_schema
from meterflow_iceberg.catalog import open_catalog
from meterflow_iceberg.tables import READINGS, drop_namespace, ensure_readings_table

Echo = Callable[[str], None]


def provision(pipeline: MeterPipeline, endpoints: Endpoints, echo: Echo | None = None) -> PipelineNames:
    """Create what the pipeline reads from and writes to, and re-create what has gone missing
    (idempotent): topics, the Iceberg table, the ClickHouse schema and views, the meters file.
    ``echo`` hears of every repair."""
    from kafka.errors import KafkaError

    names = names_for(pipeline)
    bootstrap = endpoints.kafka_bootstrap
    try:
        ensure_topics(bootstrap, topic_plan(pipeline))
    except KafkaError as exc:
        raise StackError(f"Kafka at {bootstrap} does not answer ({exc}); is it up? see `meterflow status`") from None
    ensure_lake(pipeline, endpoints)
    applied = ensure_clickhouse(pipeline, endpoints)
    if echo is not None:
        for repaired in (a for a in applied if "(recreated" in a):
            echo(f"ClickHouse {names.clickhouse_database}: migration {repaired}")
    publish_meter_file(pipeline, endpoints)
    return names


def deprovision(pipeline: MeterPipeline, endpoints: Endpoints) -> PipelineNames:
    """Delete the pipeline's topics and consumer groups, its ClickHouse database and its Iceberg
    namespace (the local runtime's ``meterflow reset``)."""
    names = names_for(pipeline)
    delete_topics(endpoints.kafka_bootstrap, names.topics.all(), groups=[names.consumer_group, sink_group(names)])
    drop_clickhouse(pipeline, endpoints)
    drop_lake(pipeline, endpoints)
    return names


def ensure_clickhouse(pipeline: MeterPipeline, endpoints: Endpoints) -> list[str]:
    """The ClickHouse migrations and serving views; the migrations applied."""
    with session(endpoints.clickhouse_dsn) as client:
        return ensure_schema(client, pipeline)


def ensure_lake(pipeline: MeterPipeline, endpoints: Endpoints) -> None:
    """The Iceberg readings table (and its namespace)."""
    ensure_readings_table(open_catalog(endpoints.iceberg), names_for(pipeline).iceberg_namespace)


def drop_clickhouse(pipeline: MeterPipeline, endpoints: Endpoints) -> None:
    """The pipeline's ClickHouse database, with every table and view in it."""
    drop_database(endpoints.clickhouse_dsn, names_for(pipeline).clickhouse_database)


def drop_lake(pipeline: MeterPipeline, endpoints: Endpoints) -> None:
    """The pipeline's Iceberg namespace and its readings table, and the anomaly models kept beside
    it (absent: already dropped)."""
    from pyiceberg.exceptions import NoSuchTableError

    from meterflow_iceberg.models import ModelStore  # local: scikit-learn is only needed here

    catalog = open_catalog(endpoints.iceberg)
    namespace = names_for(pipeline).iceberg_namespace
    with suppress(NoSuchTableError):
        ModelStore(catalog.load_table(f"{namespace}.{READINGS}")).drop()
    drop_namespace(catalog, namespace)


def publish_meter_file(pipeline: MeterPipeline, endpoints: Endpoints) -> int:
    """Load ``spec.meters.file`` (CSV with a header row) into the compacted meters topic; the rows
    sent (0 when the meters come from elsewhere)."""
    if pipeline.spec.meters.source != "file":
        return 0
    path = Path(pipeline.spec.meters.file or "")
    try:
        with path.open(newline="") as handle:
            rows = list(csv.reader(handle))[1:]
    except OSError as exc:
        raise SpecError(f"spec.meters.file {path}: cannot read it ({exc.strerror})") from None
    topic = names_for(pipeline).topics.meters
    producer = kafka_clients.producer(endpoints.kafka_bootstrap, "meters", linger_ms=20)
    sent = 0
    for row in rows:
        if len(row) < 5 or not row[0].strip():
            continue
        info = MeterInfo(*(cell.strip() for cell in row[:5]))
        producer.send(topic, key=info.meter_id.encode(), value=info.to_json())
        sent += 1
    producer.flush()
    producer.close()
    return sent


def sink_group(names: PipelineNames) -> str:
    """The consumer group of the serving sink (deprovisioned with the job's own)."""
    return f"{names.consumer_group}.clickhouse"
