"""``meterflow run`` (the streaming job) and ``meterflow sql`` (query the serving store)."""

from __future__ import annotations

import csv
import json
import sys
from enum import Enum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from meterflow.spec import MeterPipeline, names_for
from meterflow.spec.durations import CEL_DURATION_PATTERN, to_millis
from meterflow.stack.endpoints import clickhouse_dsn
from meterflow_cli.options import ManifestOption, manifest

console = Console()


class OutputFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


def run(
    file: ManifestOption,
    until_idle: Annotated[
        bool,
        typer.Option("--until-idle", help="Stop once everything in the readings topic is processed (drains windows)."),
    ] = False,
    duration: Annotated[
        str | None, typer.Option(help="Stop after this long (e.g. 90s, 10m), keeping open windows in the savepoint.")
    ] = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Ignore saved checkpoints and savepoints (start from committed offsets).")
    ] = False,
    metrics_port: Annotated[
        int,
        typer.Option(
            "--metrics-port", min=0, max=65535, help="Serve meterflow's Prometheus metrics on this port (0: any free)."
        ),
    ] = 0,
) -> None:
    """Run the streaming job of a MeterPipeline on the embedded stack (Ctrl-C stops it with a savepoint)."""
    import re

    from flink_jobs.streaming.runner import run_local

    if duration is not None and not re.match(CEL_DURATION_PATTERN, duration):
        raise typer.BadParameter(f"{duration!r} is not a duration; write e.g. 90s or 10m", param_hint="--duration")
    pipeline = manifest(file)
    summary = run_local(
        pipeline,
        until_idle=until_idle,
        duration_s=to_millis(duration) / 1000 if duration else None,
        fresh=fresh,
        echo=console.print,
        metrics_port=metrics_port,
    )
    rows = ", ".join(f"{n} {t}" for t, n in sorted(summary.sink_rows.items())) or "nothing"
    console.print(f"job {summary.job_id} {summary.final_state.lower()} after {summary.seconds:.1f}s; wrote {rows}")
    if summary.savepoint:
        console.print(f"  state saved in {summary.savepoint} (the next run resumes from it)")


def sql(
    file: ManifestOption,
    query: Annotated[str, typer.Argument(help="SQL for ClickHouse; tables resolve in the pipeline's database.")],
    output: Annotated[OutputFormat, typer.Option("--format", help="table, csv or json.")] = OutputFormat.table,
    write: Annotated[
        bool,
        typer.Option(
            "--write",
            help="Allow statements that change data or schema (INSERT, ALTER, DROP, CREATE); "
            "without it the query runs read-only.",
        ),
    ] = False,
) -> None:
    """Query the pipeline's ClickHouse database, read-only unless --write (works while `meterflow run` runs)."""
    from meterflow_clickhouse.client import ClickHouseError, session

    if not query.strip():
        raise typer.BadParameter("the query is empty; give SQL, e.g. 'SELECT * FROM ingest_totals'", param_hint="QUERY")
    pipeline = manifest(file)
    # Read-only is ClickHouse's own `readonly` setting on the session (it refuses writes and DDL).
    database = names_for(pipeline).clickhouse_database
    with session(clickhouse_dsn(pipeline), database=database, read_only=not write) as client:
        try:
            result = client.query(query)
        except Exception as exc:  # the driver's DatabaseError: keep ClickHouse's own first line
            message = _first_line(exc)
            if not write and "(READONLY)" in message:
                raise ClickHouseError(
                    "meterflow sql is read-only: the query would change data or schema; add --write to allow it"
                ) from None
            raise ClickHouseError(f"ClickHouse refused the query: {message}") from None
        columns, rows = list(result.column_names), result.result_rows
    _print(columns, rows, output)


def reset(
    file: ManifestOption,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a pipeline's topics, ClickHouse database, Iceberg tables and saved state (embedded stack)."""
    pipeline = manifest(file)
    names = names_for(pipeline)
    if not yes:
        typer.confirm(
            f"delete every topic, the ClickHouse database {names.clickhouse_database}, the Iceberg namespace "
            f"{names.iceberg_namespace} and the saved state of {pipeline.name}?",
            abort=True,
        )
    reset_local(pipeline)
    console.print(f"{pipeline.name}: reset (topics, ClickHouse, Iceberg and Flink state deleted)")


def reset_local(pipeline: MeterPipeline) -> None:
    """Deprovision ``pipeline`` and delete its saved Flink state, never under a running job."""
    import shutil

    from meterflow.paths import pipeline_state
    from meterflow.stack.endpoints import job_endpoints
    from meterflow.stack.lock import command_line, hold_pipeline
    from meterflow_provision import deprovision

    with hold_pipeline(pipeline.name, command_line()):
        deprovision(pipeline, job_endpoints(pipeline))
        shutil.rmtree(pipeline_state(pipeline.name), ignore_errors=True)


def _print(columns: list[str], rows: list[Any], output: OutputFormat) -> None:
    if output == OutputFormat.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)
    elif output == OutputFormat.json:
        for row in rows:
            print(json.dumps(dict(zip(columns, row, strict=True)), default=str))
    else:
        table = Table(*columns)
        for row in rows:
            table.add_row(*(_cell(v) for v in row))
        console.print(table)
        console.print(f"{len(rows)} row{'s' if len(rows) != 1 else ''}")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "NULL" if value is None else str(value)


def register(app: typer.Typer) -> None:
    app.command()(run)
    app.command()(sql)
    app.command()(reset)
