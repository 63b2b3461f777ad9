"""``meterflow up`` / ``down`` / ``status``: the embedded Kafka broker, and Mosquitto when MQTT is used;
``status -f M`` reports on one pipeline (:mod:`meterflow_cli.observe`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from meterflow.spec import load_manifest
from meterflow.stack.broker import EmbeddedBroker
from meterflow.stack.mosquitto import EmbeddedMosquitto

console = Console()


def up(
    mqtt: Annotated[bool, typer.Option("--mqtt", help="Also start the embedded MQTT broker (Mosquitto).")] = False,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            "-f",
            help="A manifest: Mosquitto is started too when it ingests over MQTT without a broker URL of its own.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Start the embedded single-node Kafka broker (or reuse the running one), and Mosquitto when asked."""
    broker = EmbeddedBroker()
    was_running = broker.running()
    info = broker.up()
    verb = "already running" if was_running else "started"
    console.print(f"Kafka broker {verb} at [bold]{info.bootstrap}[/] (pid {info.pid}); logs in {broker.log_file}")
    if file is not None:
        source = load_manifest(file).spec.source.mqtt
        mqtt = mqtt or (source is not None and source.url is None)
    if mqtt:
        mosquitto = EmbeddedMosquitto()
        was = mosquitto.running()
        found = mosquitto.up()
        verb = "already running" if was else "started"
        console.print(f"Mosquitto {verb} at [bold]{found.url}[/] (pid {found.pid}); logs in {mosquitto.log_file}")


def down(
    wipe: Annotated[bool, typer.Option(help="Also delete the brokers' data (all topics, MQTT sessions).")] = False,
) -> None:
    """Stop the embedded Kafka broker and Mosquitto."""
    broker, mosquitto = EmbeddedBroker(), EmbeddedMosquitto()
    if wipe:
        broker.wipe()
        mosquitto.wipe()
        console.print(f"Kafka broker and Mosquitto stopped and their data deleted ({broker.home}, {mosquitto.home})")
        return
    console.print("Kafka broker stopped" if broker.down() else "no Kafka broker was running")
    if mosquitto.down():
        console.print("Mosquitto stopped")


def status(
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            "-f",
            help="A manifest: one screen on that pipeline (job, checkpoints, lag, dead letters, alerts, batch) "
            "and a line saying what is wrong; exits 1 when something is.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Report the embedded Kafka broker and Mosquitto, or with -f how a pipeline is doing."""
    if file is not None:
        from meterflow_cli.observe import status_of

        status_of(file)
        return
    report = EmbeddedBroker().status()
    mosquitto = EmbeddedMosquitto()
    found = mosquitto.running()
    if found:
        console.print(
            f"Mosquitto: [green]running[/] at [bold]{found.url}[/] (pid {found.pid}); log {mosquitto.log_file}"
        )
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
