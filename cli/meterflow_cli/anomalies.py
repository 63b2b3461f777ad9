"""``meterflow anomalies train|models|evaluate``: the Isolation Forest of a pipeline (docs/anomalies.md).

``train`` fits a new model version on the lake's windows and keeps it beside the lake; a running
``meterflow run`` picks it up within 30 s, the next ``meterflow batch`` scores with it. ``models``
lists the versions with their records. ``evaluate`` compares the verdicts in ClickHouse with a
simulation's ground truth (``meterflow simulate --inject --truth FILE``): precision, recall and F1
of the windows of that run.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from meterflow.anomaly.evaluate import Score, score_windows, truly_anomalous
from meterflow.errors import MeterflowError
from meterflow.spec import MeterPipeline, names_for
from meterflow.stack.endpoints import clickhouse_dsn, iceberg_location
from meterflow_cli.options import ManifestOption, manifest

console = Console()
anomalies = typer.Typer(help="Train, list and evaluate the anomaly model (spec.anomalies).", no_args_is_help=True)

FromOption = Annotated[
    str | None,
    typer.Option("--from", help="First instant: an ISO 8601 time, or a date (its start in spec.timeZone)."),
]
ToOption = Annotated[
    str | None, typer.Option("--to", help="End instant (exclusive): an ISO 8601 time, or a date (its end).")
]


class AnomalyCommandError(MeterflowError):
    """An anomalies command was given something it cannot use."""


def _instant(text: str | None, zone: str, *, end: bool, option: str) -> int | None:
    """Epoch ms of ``--from``/``--to``: a date means its local start (``--to``: its end); a time
    without an offset is local."""
    if text is None:
        return None
    try:
        if len(text) == 10:
            day = date.fromisoformat(text) + (timedelta(days=1) if end else timedelta())
            moment = datetime.combine(day, time(), ZoneInfo(zone))
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            moment = moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(zone))
    except ValueError:
        raise AnomalyCommandError(
            f"{option} {text!r} is not a date or time; write e.g. 2024-05-06 or 2024-05-06T08:00:00Z"
        ) from None
    return int(moment.timestamp() * 1000)


def _lake(pipeline: MeterPipeline) -> Any:
    from meterflow_iceberg.catalog import open_catalog
    from meterflow_iceberg.tables import ensure_readings_table

    return ensure_readings_table(open_catalog(iceberg_location(pipeline)), names_for(pipeline).iceberg_namespace)


@anomalies.command("train")
def train(file: ManifestOption, start: FromOption = None, end: ToOption = None) -> None:
    """Fit a new model version on the lake's windows (all of them, or --from .. --to)."""
    from flink_jobs.batch.anomalies import train_from_lake

    pipeline = manifest(file)
    zone = pipeline.spec.time_zone
    model = train_from_lake(
        pipeline,
        _lake(pipeline),
        start_ms=_instant(start, zone, end=False, option="--from"),
        end_ms=_instant(end, zone, end=True, option="--to"),
    )
    card = model.card
    console.print(
        f"anomaly model v{card.version} of {pipeline.name}: {card.samples:,} windows "
        f"({card.trained_from} .. {card.trained_to}, lake snapshot {card.snapshot_id}), {card.trees} trees, "
        f"contamination {card.contamination:g}; features: {', '.join(card.features)}"
    )


@anomalies.command("models")
def models(file: ManifestOption) -> None:
    """The model versions kept beside the lake, with their records."""
    from meterflow.anomaly.model import describe
    from meterflow_iceberg.models import ModelStore

    cards = ModelStore(_lake(manifest(file))).cards()
    if not cards:
        console.print("no anomaly model yet; train one with `meterflow anomalies train -f MANIFEST`")
        return
    rows = [describe(c) for c in cards]
    table = Table()
    for column in rows[0]:
        table.add_column(column)
    for row in rows:
        table.add_row(*(f"{v:g}" if isinstance(v, float) else str(v) for v in row.values()))
    (console if console.is_terminal else Console(width=240)).print(table)


@anomalies.command("evaluate")
def evaluate(
    file: ManifestOption,
    truth_file: Annotated[
        Path, typer.Option("--truth", help="The ground truth of the run (`meterflow simulate --truth FILE`).")
    ],
    layer: Annotated[
        str | None, typer.Option(help="speed or batch: only that layer's verdicts (default: the served ones).")
    ] = None,
    start: FromOption = None,
    end: ToOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Precision, recall and F1 of the window verdicts of one simulated run, against its truth."""
    from simulator.truth import anomalous_readings

    pipeline = manifest(file)
    spec = pipeline.spec.anomalies
    if spec is None:
        raise AnomalyCommandError(f"pipeline {pipeline.name} has no spec.anomalies; nothing was scored")
    if layer not in (None, "speed", "batch"):
        raise AnomalyCommandError(f"--layer {layer!r}: use speed or batch")
    try:
        truth = json.loads(truth_file.read_text())
    except (OSError, ValueError) as exc:
        raise AnomalyCommandError(f"--truth {truth_file}: cannot read a truth file ({exc})") from None
    zone = pipeline.spec.time_zone
    first = _instant(start or truth["start"], zone, end=False, option="--from")
    last = _instant(end or truth["end"], zone, end=True, option="--to")
    assert first is not None and last is not None
    windows = _verdicts(pipeline, first, last, layer)
    instants = [(m, t) for m, measurement, _, t in anomalous_readings(truth) if measurement in spec.measurements]
    result = score_windows(windows["anomalous"].to_numpy(dtype=bool), truly_anomalous(windows, instants))
    _report(result, windows, first, last, layer, as_json)


def _verdicts(pipeline: MeterPipeline, first: int, last: int, layer: str | None) -> Any:
    from meterflow_clickhouse.client import session

    db = names_for(pipeline).clickhouse_database
    with session(clickhouse_dsn(pipeline), database=db, read_only=True) as client:
        found = client.query_df(
            # aliases apart from the columns: ClickHouse would read an alias in WHERE
            "SELECT meter_id, toUnixTimestamp64Milli(window_start) AS start_ms, "
            "toUnixTimestamp64Milli(window_end) AS end_ms, anomalous = 1 AS flagged, layer, model_version "
            f"FROM {db}.anomalies FINAL "
            "WHERE window_start >= fromUnixTimestamp64Milli({first:Int64}, 'UTC') "
            "AND window_end <= fromUnixTimestamp64Milli({last:Int64}, 'UTC') "
            "AND ({layer:String} = '' OR layer = {layer:String}) ORDER BY meter_id, window_start",
            parameters={"first": first, "last": last, "layer": layer or ""},
        )
    columns = {"start_ms": "window_start", "end_ms": "window_end", "flagged": "anomalous"}
    if found.empty:
        return pd.DataFrame(columns=["meter_id", *columns.values(), "layer", "model_version"])
    return found.rename(columns=columns)


def _report(result: Score, windows: Any, first: int, last: int, layer: str | None, as_json: bool) -> None:
    span = " .. ".join(datetime.fromtimestamp(ms / 1000, UTC).isoformat() for ms in (first, last))
    versions = sorted({int(v) for v in windows["model_version"]}) if len(windows) else []
    out = {
        "windows": len(windows),
        "span": span,
        "layer": layer or "served",
        "model_versions": versions,
        "true_positives": result.true_positives,
        "false_positives": result.false_positives,
        "false_negatives": result.false_negatives,
        "true_negatives": result.true_negatives,
        "precision": round(result.precision, 4),
        "recall": round(result.recall, 4),
        "f1": round(result.f1, 4),
        "accuracy": round(result.accuracy, 4),
    }
    if as_json:
        typer.echo(json.dumps(out))
        return
    if not len(windows):
        raise AnomalyCommandError(
            f"no scored window in {span}; train a model, run the pipeline on this run's data, then evaluate"
        )
    console.print(
        f"{out['windows']:,} windows of {span} ({out['layer']}, model {', '.join(f'v{v}' for v in versions)}): "
        f"precision {result.precision:.3f}, recall {result.recall:.3f}, F1 {result.f1:.3f}, "
        f"accuracy {result.accuracy:.3f} (TP {result.true_positives}, FP {result.false_positives}, "
        f"FN {result.false_negatives}, TN {result.true_negatives})"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(anomalies, name="anomalies")
