"""``meterflow validate`` and ``meterflow crd``: the MeterPipeline spec."""

from __future__ import annotations

import typer
from rich.console import Console

from meterflow.spec import names_for
from meterflow.spec.crd import crd_yaml
from meterflow_cli.options import ManifestOption, manifest

console = Console()


def validate(file: ManifestOption) -> None:
    """Check a manifest and print the names it derives (topics, database, namespace)."""
    pipeline = manifest(file)
    names = names_for(pipeline)
    console.print(f"{file}: MeterPipeline [bold]{pipeline.name}[/] is valid")
    console.print(f"  topics:     {', '.join(names.topics.all())}")
    console.print(f"  clickhouse: database {names.clickhouse_database}")
    console.print(f"  iceberg:    table {names.readings_table}")


def crd() -> None:
    """Print the MeterPipeline CustomResourceDefinition generated from the spec model."""
    typer.echo(crd_yaml(), nl=False)


def register(app: typer.Typer) -> None:
    app.command()(validate)
    app.command()(crd)
