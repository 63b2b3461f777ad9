"""``meterflow up`` / ``down`` / ``status``: the embedded Kafka broker."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from meterflow.stack.broker import EmbeddedBroker

console = Console()


def up() -> None:
    """Start the embedded single-node Kafka broker (or reuse the running one)."""
    broker = EmbeddedBroker()
    was_running = broker.running()
    info = broker.up()
    verb = "already running" if was_running else "started"
    console.print(f"Kafka broker {verb} at [bold]{info.bootstrap}[/] (pid {info.pid}); logs in {broker.log_file}")


def down(
    wipe: Annotated[bool, typer.Option(help="Also delete the broker's data (all topics).")] = False,
) -> None:
    """Stop the embedded Kafka broker."""
    broker = EmbeddedBroker()
    if wipe:
        broker.wipe()
        console.print(f"Kafka broker stopped and its data deleted ({broker.home})")
        return
    console.print("Kafka broker stopped" if broker.down() else "no Kafka broker was running")


def status() -> None:
    """Report the embedded Kafka broker: address, process, topics, log file."""
    report = EmbeddedBroker().status()
    if not report.running or report.info is None:
        console.print(f"Kafka broker: [red]not running[/] (state in {report.home}); start it with `meterflow up`")
        raise typer.Exit(code=1)
    info = report.info
    console.print(f"Kafka broker: [green]running[/] at [bold]{info.bootstrap}[/] (pid {info.pid})")
    console.print(f"  state: {report.home}\n  log:   {report.log_file}")
    console.print(f"  topics ({len(report.topics)}): {', '.join(report.topics) or '-'}")


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command()(down)
    app.command()(status)
