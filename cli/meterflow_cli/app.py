"""The ``meterflow`` entry point: assembles the command groups and turns errors into one line.

Every deliberate failure (:class:`~meterflow.errors.MeterflowError`) and every usage mistake
prints exactly one line to stderr naming what to fix, and exits with code 2 (130 when Ctrl-C cut
a command short). Client libraries that report connection trouble through logging while they
retry (kafka-python) are kept quiet: their failures reach meterflow as exceptions, which say it
once.
"""

from __future__ import annotations

import logging
import sys

import typer
from typer.exceptions import TyperException

from meterflow import __version__
from meterflow.errors import MeterflowError
from meterflow_cli import alerts, anomalies, batch, bridge, demo, observe, run, simulate, spec, stack

app = typer.Typer(
    name="meterflow",
    help="Smart-meter telemetry analytics: Kafka → Flink → ClickHouse + Iceberg, from one MeterPipeline manifest.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for group in (stack, spec, simulate, bridge, run, batch, alerts, anomalies, demo, observe):
    group.register(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"meterflow {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Smart-meter telemetry analytics from one MeterPipeline manifest."""


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code."""
    command = typer.main.get_command(app)
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    try:
        result = command.main(args=argv, prog_name="meterflow", standalone_mode=False)
    except MeterflowError as exc:
        print(f"meterflow: {exc}", file=sys.stderr)
        return exc.exit_code
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        print("meterflow: aborted", file=sys.stderr)
        return 130
    except TyperException as exc:  # click's usage errors, as typer vendors them
        ctx = getattr(exc, "ctx", None)
        path = ctx.command_path if ctx is not None else "meterflow"
        print(f"meterflow: {exc.format_message()} (see `{path} --help`)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("meterflow: interrupted", file=sys.stderr)
        return 130
    return result if isinstance(result, int) else 0


def console() -> None:
    """Console-script wrapper around :func:`main`."""
    sys.exit(main())


if __name__ == "__main__":
    console()
