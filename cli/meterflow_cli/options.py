"""Options shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from meterflow.spec import MeterPipeline, load_manifest

ManifestOption = Annotated[
    Path,
    typer.Option(
        "--file", "-f", help="MeterPipeline manifest (the file `kubectl apply -f` takes).", show_default=False
    ),
]


def manifest(path: Path) -> MeterPipeline:
    """Load the manifest given with -f (errors become one line through the app's handler)."""
    return load_manifest(path)
