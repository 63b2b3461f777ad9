"""``meterflow alerts list|ack|resolve``: the people's side of the alert lifecycle (docs/alerts.md).

``list`` reads ClickHouse (the open alerts, or every alert with ``--all``). ``ack`` and
``resolve`` write a command to the pipeline's ``<name>.alert-commands`` topic, keyed by the
alert's meter: the streaming job, which owns every alert's state, applies it and records the
transition (``alert_events``), so an acknowledged alert no longer escalates and a resolved one
starts afresh at its next breach — in a replay too.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from meterflow.errors import MeterflowError
from meterflow.spec import MeterPipeline, names_for
from meterflow.stack.endpoints import clickhouse_dsn
from meterflow_cli.options import ManifestOption, manifest

console = Console()

LIST_COLUMNS = (
    "alert_id",
    "rule",
    "severity",
    "meter_id",
    "series",
    "state",
    "event_time",
    "last_seen",
    "breaches",
    "last_value",
    "acknowledged_by",
)

alerts = typer.Typer(help="List, acknowledge and resolve alerts.", no_args_is_help=True)


class AlertNotFoundError(MeterflowError):
    """No alert of the pipeline has the id given."""


def _rows(pipeline: MeterPipeline, query: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    from meterflow_clickhouse.client import session

    with session(clickhouse_dsn(pipeline), database=names_for(pipeline).clickhouse_database) as client:
        return [tuple(row) for row in client.query(query, parameters=parameters or {}).result_rows]


@alerts.command("list")
def list_alerts(
    file: ManifestOption,
    every: Annotated[bool, typer.Option("--all", help="Resolved alerts too (newest first).")] = False,
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = 50,
) -> None:
    """The open alerts of a pipeline (all of them with --all), newest first."""
    pipeline = manifest(file)
    source = "alerts FINAL" if every else "alerts_active"
    rows = _rows(pipeline, f"SELECT {', '.join(LIST_COLUMNS)} FROM {source} ORDER BY event_time DESC LIMIT {limit:d}")
    table = Table()
    for column in LIST_COLUMNS:  # ids whole (they are what ack and resolve take); other columns give way
        whole = column in ("alert_id", "meter_id", "rule")
        table.add_column(column, no_wrap=whole, min_width=16 if column == "alert_id" else None)
    for row in rows:
        table.add_row(*("" if v is None else f"{v:.6g}" if isinstance(v, float) else str(v) for v in row))
    out = console if console.is_terminal else Console(width=240)  # a pipe gets whole rows
    out.print(table)
    out.print(f"{len(rows)} {'alert' if len(rows) == 1 else 'alerts'}")


def _command(pipeline: MeterPipeline, alert_id: str, action: str, by: str) -> tuple[str, str]:
    """Send ``action`` for ``alert_id`` to the streaming job; (meter, rule) of the alert."""
    found = _rows(
        pipeline,
        "SELECT meter_id, rule, state FROM alerts FINAL WHERE alert_id = {id:String} LIMIT 1",
        {"id": alert_id},
    )
    if not found:
        raise AlertNotFoundError(
            f"{pipeline.name} has no alert {alert_id!r}; `meterflow alerts list -f ...` shows their ids"
        )
    meter, rule, state = found[0]
    if state != "OPEN":
        raise MeterflowError(f"alert {alert_id} ({rule} on {meter}) is already resolved; there is nothing to {action}")
    from meterflow import kafka_clients
    from meterflow.stack.endpoints import kafka_bootstrap

    command = {"meter_id": meter, "alert_id": alert_id, "action": action, "by": by, "at_ms": int(time.time() * 1000)}
    producer = kafka_clients.producer(kafka_bootstrap(pipeline), "alert-commands", acks="all")
    try:
        producer.send(names_for(pipeline).topics.alert_commands, key=meter.encode(), value=json.dumps(command).encode())
        producer.flush(timeout=30)
    finally:
        producer.close()
    return meter, rule


@alerts.command("ack")
def ack(
    file: ManifestOption,
    alert_id: Annotated[str, typer.Argument(help="The alert's id (`meterflow alerts list`).")],
    by: Annotated[str, typer.Option("--by", help="Who acknowledges it.")],
) -> None:
    """Acknowledge an open alert: it stays open but no longer escalates."""
    meter, rule = _command(manifest(file), alert_id, "ack", by)
    console.print(f"alert {alert_id} ({rule} on {meter}): acknowledged by {by}; the streaming job records it")


@alerts.command("resolve")
def resolve(
    file: ManifestOption,
    alert_id: Annotated[str, typer.Argument(help="The alert's id (`meterflow alerts list`).")],
    by: Annotated[str, typer.Option("--by", help="Who resolves it.")],
) -> None:
    """Resolve an open alert by hand: its next breach opens a new one."""
    meter, rule = _command(manifest(file), alert_id, "resolve", by)
    console.print(f"alert {alert_id} ({rule} on {meter}): resolved by {by}; the streaming job records it")


def register(app: typer.Typer) -> None:
    app.add_typer(alerts, name="alerts")
