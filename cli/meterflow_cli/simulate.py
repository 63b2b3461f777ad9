"""``meterflow simulate`` and ``meterflow replay``: readings into a pipeline's Kafka topics.

``simulate`` runs a :class:`simulator.engine.Simulation` of the manifest's meter kind (with
injections and a ground-truth file on request); ``replay`` sends a real data set through
:class:`simulator.replay.runner.Replay`. Both create the pipeline's topics first and send with
:class:`simulator.producer.Sender`. Registered on the app by :mod:`meterflow_cli.app`.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from meterflow.spec import MeterPipeline, names_for
from meterflow.spec.durations import to_millis
from meterflow.spec.model import MqttPayloadFormat
from meterflow.spec.topics import topic_plan
from meterflow.stack.endpoints import kafka_bootstrap
from meterflow.stack.mqtturl import mqtt_url_for
from meterflow.stack.topics import ensure_topics
from meterflow_cli.options import ManifestOption, manifest
from simulator.engine import Settings, Simulation
from simulator.errors import SimulatorError
from simulator.injections import parse_rates
from simulator.mqtt import MqttSender
from simulator.producer import Sender
from simulator.replay import Dataset
from simulator.replay.runner import Replay, Window
from simulator.truth import KINDS
from simulator.wide import WideMalformed

RateOption = Annotated[
    float | None, typer.Option("--rate", help="Cap on readings sent per second (default: as fast as possible).")
]
SpeedupOption = Annotated[
    float | None,
    typer.Option("--speedup", help="Event time runs this many times faster than wall time (default: no pacing)."),
]
RecordOption = Annotated[
    Path | None,
    typer.Option(
        "--record", help="Write every record sent, in order, as JSON lines {key, value, kind}.", show_default=False
    ),
]
ProgressOption = Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")]


def _duration(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return to_millis(text)
    except ValueError:
        raise SimulatorError(f"--duration {text!r} is not a duration; write e.g. 15m, 6h, 1d, 30d") from None


def _start(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise SimulatorError(
            f"--start {text!r} is not an ISO 8601 date-time; write e.g. 2024-05-01T00:00:00Z"
        ) from None


def _date(option: str, text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise SimulatorError(f"{option} {text!r} is not a date; write YYYY-MM-DD, e.g. 2016-03-01") from None


class Via(str, Enum):
    """How simulated readings travel."""

    kafka = "kafka"
    mqtt = "mqtt"


def _is_wide(pipeline: MeterPipeline) -> bool:
    source = pipeline.spec.source.mqtt
    return source is not None and source.payload.format == MqttPayloadFormat.wide.value


def _format(pipeline: MeterPipeline) -> str:
    return "wide JSON" if _is_wide(pipeline) else "one reading per message"


def simulate(
    file: ManifestOption,
    *,
    meters: Annotated[
        int | None,
        typer.Option(
            "--meters",
            help="How many meters (default: water 500, building 8 rooms, household 10, industrial 5 sensors).",
            show_default=False,
        ),
    ] = None,
    rate: RateOption = None,
    count: Annotated[
        int | None, typer.Option("--count", help="Stop after this many normal readings.", show_default=False)
    ] = None,
    duration: Annotated[
        str | None,
        typer.Option(
            "--duration", help="Span of event time to simulate, e.g. 1h, 1d, 30d (default 1d).", show_default=False
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed",
            help="Seed; the same seed gives byte-identical records (default: random, printed).",
            show_default=False,
        ),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            "--start",
            help="Event time of the first reading, ISO 8601 (default: midnight UTC today minus the duration).",
            show_default=False,
        ),
    ] = None,
    speedup: SpeedupOption = None,
    inject: Annotated[
        bool,
        typer.Option(
            "--inject",
            help="Inject rule triggers, malformed, duplicate, late, reset and unknown-meter records, stateful-rule "
            "episodes, and anomaly episodes (industrial sensors).",
        ),
    ] = False,
    inject_rate: Annotated[
        list[str] | None,
        typer.Option(
            "--inject-rate",
            help="Injections per 1000 normal readings: a number for all kinds, or "
            "kind=rate (trigger is per rule); repeatable. Default 0.5, anomaly 15 (anomalous readings).",
            show_default=False,
        ),
    ] = None,
    truth: Annotated[
        Path | None,
        typer.Option(
            "--truth", help="Write the ground truth (counts and every injected record) as JSON.", show_default=False
        ),
    ] = None,
    record: RecordOption = None,
    progress: ProgressOption = True,
    via: Annotated[
        Via,
        typer.Option(
            "--via",
            help="kafka: produce to <name>.readings; mqtt: publish to the MQTT broker of spec.source.mqtt "
            "(the bridge forwards to Kafka).",
        ),
    ] = Via.kafka,
) -> None:
    """Simulate the manifest's meters into <name>.readings (and their metadata into <name>.meters)."""
    pipeline = manifest(file)
    mqtt = pipeline.spec.source.mqtt
    if via == Via.mqtt and mqtt is None:
        raise SimulatorError(f"--via mqtt: {file} has no spec.source.mqtt; add it (docs/mqtt.md) or use --via kafka")
    chosen_seed = secrets.randbelow(2**31) if seed is None else seed
    settings = Settings(
        meters=meters,
        count=count,
        duration_ms=_duration(duration),
        start=_start(start),
        seed=chosen_seed,
        inject=inject,
        rates=parse_rates(inject_rate or []),
    )
    wide = via == Via.mqtt and _is_wide(pipeline)
    simulation = Simulation(pipeline, settings, malformed=WideMalformed(pipeline) if wide else None)
    bootstrap = kafka_bootstrap(pipeline)
    ensure_topics(bootstrap, topic_plan(pipeline))
    topics = names_for(pipeline).topics
    label = f"simulate {pipeline.name}"
    if via == Via.mqtt and mqtt is not None:
        url = mqtt_url_for(pipeline)
        with Sender(bootstrap, progress=False) as sender:  # meter metadata still goes to Kafka
            published = sender.send_all(topics.meters, simulation.meter_records())
        with MqttSender(pipeline, url, rate=rate, speedup=speedup, record_file=record, progress=progress) as mq:
            total = None if wide else simulation.expected_slots
            stats = mq.run(simulation.records(), total, label)
        where = f"{url} ({mqtt.topic}, {_format(pipeline)})"
        unit = "messages"
    else:
        with Sender(bootstrap, rate=rate, speedup=speedup, record_file=record, progress=progress) as sender:
            published = sender.send_all(topics.meters, simulation.meter_records())
            stats = sender.run(topics.readings, simulation.records(), simulation.expected_slots, label)
        where, unit = topics.readings, "readings"
    if truth is not None:
        simulation.truth.write(truth)
    counts = simulation.truth.counts
    detail = ", ".join(f"{counts[k]:,} {k}" for k in KINDS if counts[k] or k == "normal")
    typer.echo(
        f"simulated {published:,} {simulation.profile.kind} meter{'s' if published != 1 else ''} (seed {chosen_seed}): "
        f"{stats.records:,} {'records' if unit == 'readings' else 'messages'} "
        f"to {where} ({detail}) in {stats.seconds:.1f} s, {stats.per_second:,.0f} {unit}/s"
    )


def replay(
    file: ManifestOption,
    *,
    dataset: Annotated[Dataset, typer.Option("--dataset", help="Which real data set PATH holds.")],
    path: Annotated[
        Path, typer.Argument(help="The data file (gzip or plain); for keti also a folder of rooms.", show_default=False)
    ],
    speedup: SpeedupOption = None,
    rate: RateOption = None,
    limit: Annotated[
        int | None, typer.Option("--limit", help="Replay at most this many rows (the earliest).", show_default=False)
    ] = None,
    date_from: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="First date to replay, in the manifest's spec.timeZone (YYYY-MM-DD, inclusive).",
            show_default=False,
        ),
    ] = None,
    date_to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Last date to replay, in the manifest's spec.timeZone (YYYY-MM-DD, inclusive).",
            show_default=False,
        ),
    ] = None,
    record: RecordOption = None,
    progress: ProgressOption = True,
) -> None:
    """Replay a real data set (DAIAD, KETI, UCI household power) into <name>.readings."""
    pipeline = manifest(file)
    window = Window(_date("--from", date_from), _date("--to", date_to), limit)
    job = Replay(pipeline, dataset, path, window, str(file))
    bootstrap = kafka_bootstrap(pipeline)
    ensure_topics(bootstrap, topic_plan(pipeline))
    topic = names_for(pipeline).topics.readings
    with Sender(bootstrap, rate=rate, speedup=speedup, record_file=record, progress=progress) as sender:
        stats = sender.run(topic, job.records(), None, f"replay {dataset.value}")
    t = job.tally
    skipped = sum(t.skipped.values())
    reasons = ", ".join(f"{reason}: {n:,}" for reason, n in sorted(t.skipped.items()))
    unreadable = sum(t.unreadable.values())
    kinds = ", ".join(f"{reason}: {n:,}" for reason, n in sorted(t.unreadable.items()))
    for_the_dlq = f" ({unreadable:,} with no number, for the job to dead-letter: {kinds})" if unreadable else ""
    typer.echo(
        f"replayed {dataset.value} {path.name} into {topic}: {t.rows:,} rows read, {t.filtered:,} filtered, "
        f"{t.limited:,} beyond --limit, {t.replayed:,} replayed as {stats.records:,} readings{for_the_dlq} "
        f"({job.readings_per_row} per row), {skipped:,} rows skipped{f' ({reasons})' if reasons else ''}; "
        f"{stats.seconds:.1f} s, {stats.per_second:,.0f} readings/s"
    )


def register(app: typer.Typer) -> None:
    app.command()(simulate)
    app.command()(replay)
