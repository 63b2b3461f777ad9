"""``meterflow batch``, ``export``, ``report`` and ``lake expire``: the batch layer and its outputs.

``batch`` recomputes closed days from the Iceberg lake into ClickHouse (once, or on
``spec.batch.schedule`` with ``--schedule``), ``export`` writes the three BI files, ``report``
one self-contained HTML report, ``lake expire`` drops old Iceberg snapshots. The work is done by
:mod:`flink_jobs.batch` and :mod:`meterflow_iceberg.maintenance`; registered on the app by
:mod:`meterflow_cli.app`.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from meterflow.spec import MeterPipeline, names_for
from meterflow_cli.options import ManifestOption, manifest

console = Console()

FromOption = Annotated[
    str | None, typer.Option("--from", help="First local day (YYYY-MM-DD) in spec.timeZone.", show_default=False)
]
ToOption = Annotated[
    str | None, typer.Option("--to", help="Last local day (YYYY-MM-DD, inclusive).", show_default=False)
]


def batch(
    file: ManifestOption,
    *,
    day_from: FromOption = None,
    day_to: ToOption = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Read this Iceberg snapshot: a snapshot id, or a time (ISO 8601; no offset = spec.timeZone).",
            show_default=False,
        ),
    ] = None,
    schedule: Annotated[
        bool, typer.Option("--schedule", help="Keep running: fire on spec.batch.schedule until Ctrl-C.")
    ] = False,
    expire: Annotated[
        bool, typer.Option("--expire/--no-expire", help="Expire old Iceberg snapshots after the run.")
    ] = True,
) -> None:
    """Recompute closed days from the lake (default: the due days of spec.batch.lookback) into ClickHouse."""
    from flink_jobs.batch.days import explicit_range, parse_as_of
    from flink_jobs.batch.run import run_batch

    pipeline = manifest(file)
    explicit_range(day_from, day_to)  # a bad date fails here, before anything starts
    parse_as_of(as_of, pipeline.spec.time_zone)
    if schedule:
        if day_from or day_to or as_of:
            raise typer.BadParameter(
                "--schedule recomputes the default range; drop --from/--to/--as-of", param_hint="--schedule"
            )
        _scheduled(pipeline)
        return
    summary = run_batch(pipeline, day_from, day_to, as_of, expire=expire, echo=console.print)
    console.print(summary.describe())


def _scheduled(pipeline: MeterPipeline) -> None:
    from flink_jobs.batch.schedule import run_on_schedule

    flag = {"stop": False}

    def handler(signum: int, frame: object) -> None:
        flag["stop"] = True

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        run_on_schedule(pipeline, echo=console.print, stop=lambda: flag["stop"])
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def export(
    file: ManifestOption,
    out: Annotated[Path, typer.Option("--out", help="Folder for the CSV and Parquet files.", show_default=False)],
    day_from: FromOption = None,
    day_to: ToOption = None,
) -> None:
    """Write daily stats, monthly stats and problem meters as CSV and Parquet (the BI exports)."""
    from flink_jobs.batch.days import explicit_range
    from meterflow_clickhouse.exports import export as write

    pipeline = manifest(file)
    chosen = explicit_range(day_from, day_to)
    paths = write(pipeline, out, chosen.first if chosen else None, chosen.last if chosen else None)
    for path in paths:
        console.print(f"wrote {path}")


def report(
    file: ManifestOption,
    out: Annotated[Path, typer.Option("--out", help="The HTML file to write.", show_default=False)] = Path(
        "report.html"
    ),
) -> None:
    """Write one self-contained HTML report (charts work offline)."""
    from meterflow_clickhouse.report import write_report

    path = write_report(manifest(file), out)
    console.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, plotly.js inline)")


lake = typer.Typer(name="lake", help="Upkeep of the Iceberg lake.", no_args_is_help=True)


@lake.command("expire")
def lake_expire(
    file: ManifestOption,
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            help="Expire snapshots older than this (default: spec.sinks.iceberg.snapshotRetention).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Expire Iceberg snapshots older than the retention (never the current one)."""
    import time

    from meterflow.spec.durations import to_millis
    from meterflow.stack.endpoints import iceberg_location
    from meterflow_iceberg.catalog import open_catalog
    from meterflow_iceberg.maintenance import expire_snapshots
    from meterflow_iceberg.tables import ensure_readings_table

    pipeline = manifest(file)
    retention = older_than or pipeline.spec.sinks.iceberg.snapshot_retention
    try:
        retention_ms = to_millis(retention)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--older-than") from None
    names = names_for(pipeline)
    table = ensure_readings_table(open_catalog(iceberg_location(pipeline)), names.iceberg_namespace)
    before = len(table.snapshots())
    expired = expire_snapshots(table, time.time_ns() // 1_000_000 - retention_ms)
    console.print(f"{names.readings_table}: expired {expired} of {before} snapshots older than {retention}")


def register(app: typer.Typer) -> None:
    app.command()(batch)
    app.command()(export)
    app.command()(report)
    app.add_typer(lake)
