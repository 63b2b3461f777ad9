"""Configure and submit the streaming job's statement set (both runtimes).

:func:`job_config` holds every Flink setting the job relies on, as data; :func:`submit` registers
the Iceberg catalog, runs the DDL of :mod:`flink_jobs.streaming.sql` and submits the INSERTs as
one job (sharing one Kafka source and one parse).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flink_jobs.streaming.restore import checkpoint_root, savepoint_root
from flink_jobs.streaming.sql import KafkaEndpoint, statements
from meterflow.spec.durations import to_millis
from meterflow.spec.model import MeterPipeline
from meterflow.stack.endpoints import IcebergLocation
from meterflow_iceberg.catalog import flink_catalog_ddl

STATE_TTL = "26 h"
"""How long de-duplication and join state outlives its last use (processing time)."""


def job_name(pipeline: MeterPipeline) -> str:
    return f"meterflow-streaming-{pipeline.name}"


def job_config(
    pipeline: MeterPipeline,
    state_dir: Path | None = None,
    restore_from: Path | None = None,
    web_ui_port: str | None = None,
) -> dict[str, str]:
    """Flink settings of the streaming job; local paths only when ``state_dir`` is given."""
    flink = pipeline.spec.flink
    config = {
        "pipeline.name": job_name(pipeline),
        "parallelism.default": str(flink.parallelism),
        "execution.checkpointing.interval": f"{to_millis(flink.checkpoint_interval)} ms",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "execution.checkpointing.num-retained": "2",
        "state.backend.type": "hashmap",
        "table.local-time-zone": "UTC",
        "table.exec.state.ttl": STATE_TTL,
        # Off on purpose: a mini-batched keep-first de-duplication is not insert-only in Flink
        # 2.1+, and the windows and register deltas behind it need insert-only input.
        "table.exec.mini-batch.enabled": "false",
        "table.exec.source.idle-timeout": "5 s",
        "table.exec.sink.upsert-materialize": "NONE",
        "pipeline.auto-watermark-interval": "200 ms",
        # Share the parse and the de-duplication between all INSERTs of the statement set.
        "table.optimizer.reuse-optimize-block-with-digest-enabled": "true",
    }
    if state_dir is not None:
        config |= {
            "execution.checkpointing.dir": checkpoint_root(state_dir).as_uri(),
            "execution.checkpointing.savepoint-dir": savepoint_root(state_dir).as_uri(),
            "taskmanager.numberOfTaskSlots": str(flink.parallelism),
        }
    if restore_from is not None:
        config["execution.state-recovery.path"] = restore_from.as_uri()
    if web_ui_port is not None:
        config["rest.bind-port"] = web_ui_port
        config["rest.bind-address"] = "127.0.0.1"
        config["rest.address"] = "127.0.0.1"
    return config


def submit(t_env: Any, pipeline: MeterPipeline, kafka: KafkaEndpoint, lake: IcebergLocation) -> Any:
    """Run the DDL and submit the INSERTs as one job; the TableResult of the statement set."""
    return _statement_set(t_env, pipeline, kafka, lake).execute()


def explain(t_env: Any, pipeline: MeterPipeline, kafka: KafkaEndpoint, lake: IcebergLocation) -> str:
    """The optimized plan of the job (``meterflow run --explain``)."""
    return str(_statement_set(t_env, pipeline, kafka, lake).explain())


def _statement_set(t_env: Any, pipeline: MeterPipeline, kafka: KafkaEndpoint, lake: IcebergLocation) -> Any:
    """The catalog and tables created in ``t_env``, and every INSERT of the job in one statement set."""
    t_env.execute_sql(flink_catalog_ddl(lake))
    ddl, inserts = statements(pipeline, kafka, lake)
    for statement in ddl:
        t_env.execute_sql(statement)
    statement_set = t_env.create_statement_set()
    for insert in inserts:
        statement_set.add_insert_sql(insert)
    return statement_set
