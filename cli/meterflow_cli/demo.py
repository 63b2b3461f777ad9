"""``meterflow demo`` (``make demo``): the whole Lambda pipeline once, on the embedded stack.

One water-meters day, start to finish, with numbers you can check: simulate 500 meters with
injected faults (rule triggers, malformed, duplicate, late, reset and unknown-meter records),
stream them through the Flink job until idle, recompute the day from the Iceberg lake, then write
the BI exports and the HTML report and print what landed where. The simulation is seeded and
starts on a fixed local day, so every run prints the same figures; the pipeline is reset first,
so a second demo starts clean.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from meterflow.paths import state_home
from meterflow.spec import MeterPipeline, load_manifest, names_for
from meterflow.spec.topics import topic_plan
from meterflow.stack.endpoints import clickhouse_dsn, iceberg_location, kafka_bootstrap
from meterflow.stack.topics import ensure_topics

DEMO_MANIFEST = Path("examples/water-meters.yaml")
DEMO_METERS = 500
DEMO_DAY = date(2024, 5, 1)
"""A local (Australia/Brisbane) calendar day: the batch recomputes exactly this day."""
DEMO_SEED = 2024

console = Console()


@contextmanager
def _step(title: str) -> Iterator[None]:
    console.rule(f"[bold]{title}")
    started = time.monotonic()
    yield
    console.print(f"[dim]{title}: {time.monotonic() - started:.1f}s[/dim]")


def demo(
    file: Annotated[Path, typer.Option("--file", "-f", help="The water-meters manifest.")] = DEMO_MANIFEST,
    meters: Annotated[int, typer.Option("--meters", help="How many simulated meters.")] = DEMO_METERS,
    out: Annotated[
        Path | None, typer.Option("--out", help="Where the exports and report go (default: <state>/demo).")
    ] = None,
) -> None:
    """Simulate a day of water meters, stream it, recompute it in batch, export, report and summarise."""
    from flink_jobs.batch import run_batch
    from flink_jobs.streaming.runner import run_local
    from meterflow_cli.run import reset_local
    from meterflow_clickhouse.exports import export
    from meterflow_clickhouse.report import write_report

    pipeline = load_manifest(file)
    out_dir = out or state_home() / "demo"
    started = time.monotonic()
    with _step("1/5 embedded stack: Kafka broker up, pipeline reset"):
        bootstrap = kafka_bootstrap(pipeline, start_broker=True)
        reset_local(pipeline)
        console.print(f"broker {bootstrap}; state in {state_home()}")
    with _step(f"2/5 simulate {meters} water meters for {DEMO_DAY} (Brisbane) with injected faults"):
        truth = _simulate(pipeline, bootstrap, meters)
    with _step("3/5 speed layer: the Flink streaming job until idle"):
        run = run_local(pipeline, until_idle=True, echo=console.print)
        console.print(f"job {run.job_id} {run.final_state.lower()} after {run.seconds:.1f}s")
    with _step(f"4/5 batch layer: recompute {DEMO_DAY} from the Iceberg lake"):
        summary = run_batch(pipeline, DEMO_DAY, DEMO_DAY, echo=console.print)
        console.print(summary.describe())
    with _step("5/5 serving: BI exports and the HTML report"):
        files = export(pipeline, out_dir / "exports")
        report = write_report(pipeline, out_dir / "report.html")
        for path in files:
            console.print(f"export  {path}")
        console.print(f"report  {report}  (open it in a browser; it works offline)")
    _summarise(pipeline, truth)
    console.print(f"\n[bold green]demo finished in {time.monotonic() - started:.0f}s.[/bold green] Try:")
    console.print(f'  .venv/bin/meterflow sql -f {file} "SELECT * FROM alerts FINAL ORDER BY event_time LIMIT 10"')
    console.print("  .venv/bin/meterflow status    # the broker; `meterflow down` stops it")


def _simulate(pipeline: MeterPipeline, bootstrap: str, meters: int) -> dict[str, int]:
    from simulator.engine import Settings, Simulation
    from simulator.producer import Sender

    start = datetime.fromisoformat(f"{DEMO_DAY.isoformat()}T00:00:00+10:00")
    settings = Settings(meters=meters, duration_ms=86_400_000, start=start, seed=DEMO_SEED, inject=True)
    simulation = Simulation(pipeline, settings)
    ensure_topics(bootstrap, topic_plan(pipeline))
    topics = names_for(pipeline).topics
    with Sender(bootstrap, progress=True) as sender:
        sender.send_all(topics.meters, simulation.meter_records())
        stats = sender.run(topics.readings, simulation.records(), simulation.expected_slots, "simulate")
    counts = dict(simulation.truth.counts)
    console.print(
        f"sent {stats.records:,} records (seed {DEMO_SEED}): "
        + ", ".join(f"{n:,} {kind}" for kind, n in counts.items() if n)
    )
    return counts


def _summarise(pipeline: MeterPipeline, truth: dict[str, int]) -> None:
    """What landed where, read back from ClickHouse and Iceberg (not from the job's own counters)."""
    from meterflow_clickhouse.client import session
    from meterflow_iceberg.catalog import open_catalog

    names = names_for(pipeline)
    snapshot = open_catalog(iceberg_location(pipeline)).load_table(names.readings_table).current_snapshot()
    lake_rows = int(snapshot.summary["total-records"] or 0) if snapshot and snapshot.summary else 0  # append-only
    with session(clickhouse_dsn(pipeline), database=names.clickhouse_database) as client:

        def rows(query: str) -> list[Any]:
            return list(client.query(query).result_rows)

        totals = rows("SELECT in_total, valid, dlq, on_time, late, duplicates FROM ingest_totals")[0]
        reasons = rows(
            "SELECT substring(counter, 5) AS reason, sum(value) FROM ingest_counters FINAL "
            "WHERE startsWith(counter, 'dlq:') GROUP BY reason ORDER BY reason"
        )
        windows = rows("SELECT count(), uniqExact(meter_id) FROM readings_agg FINAL")[0]
        alerts = rows("SELECT rule, severity, count() FROM alerts FINAL GROUP BY rule, severity ORDER BY rule")
        problems = rows("SELECT rule, severity, count() FROM problem_meters GROUP BY rule, severity ORDER BY rule")
        top = rows(
            "SELECT meter_id, suburb, usage_type, round(consumption, 1) FROM consumption_daily "
            f"WHERE measurement_type = 'Pulse1' AND day = '{DEMO_DAY}' ORDER BY consumption DESC LIMIT 5"
        )
    console.rule("[bold]summary")
    ingest = _table("ingest", ["", "records"])
    labels = ("in", "valid", "dead letters", "on time", "late", "duplicates")
    for label, value in zip(labels, totals, strict=True):
        ingest.add_row(label, f"{value:,}")
    ingest.add_row("in the Iceberg lake", f"{lake_rows:,}")
    ingest.add_row("[dim]simulated (truth)[/dim]", f"[dim]{sum(truth.values()):,}[/dim]")
    console.print(ingest)
    _print_rows("dead letters by reason", ["reason", "records"], reasons)
    console.print(f"window results: {windows[0]:,} over {windows[1]:,} meters (5-minute tumbling windows)")
    _print_rows("alerts (speed layer)", ["rule", "severity", "alerts"], alerts)
    _print_rows("problem meters (batch layer)", ["rule", "severity", "meters"], problems)
    _print_rows(f"top 5 meters by consumption on {DEMO_DAY} (litres)", ["meter", "suburb", "usage", "litres"], top)


def _table(title: str, columns: list[str]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, justify="right" if column in {"records", "alerts", "meters", "litres"} else "left")
    return table


def _print_rows(title: str, columns: list[str], rows: list[Any]) -> None:
    table = _table(title, columns)
    for row in rows:
        table.add_row(*(f"{v:,}" if isinstance(v, int) else str(v) for v in row))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command()(demo)
