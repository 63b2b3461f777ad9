"""``meterflow bridge -f M``: run the MQTT → Kafka bridge of a pipeline with ``spec.source.mqtt``.

Creates the pipeline's topics (as ``simulate`` does), finds the broker (``$METERFLOW_MQTT_URL``,
the manifest's ``url``, else the embedded Mosquitto, started on demand) and runs
:class:`meterflow_bridge.runtime.Bridge` until Ctrl-C or SIGTERM, then drains: Kafka acknowledges
what is in flight, those messages are acknowledged to the broker, the session is kept.
Registered on the app by :mod:`meterflow_cli.app`.
"""

from __future__ import annotations

import os
import signal
import sys
from datetime import UTC, datetime
from types import FrameType
from typing import Annotated

import typer
from kafka.errors import KafkaError

from meterflow.errors import StackError
from meterflow.spec.topics import topic_plan
from meterflow.stack.endpoints import kafka_bootstrap
from meterflow.stack.mqtturl import MQTT_PASSWORD_ENV, mqtt_url_for
from meterflow.stack.topics import ensure_topics
from meterflow_bridge.runtime import Bridge
from meterflow_cli.options import ManifestOption, manifest


def _log(line: str) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    print(f"{stamp} bridge: {line}", flush=True)


def bridge(
    file: ManifestOption,
    report_every: Annotated[
        float, typer.Option("--report-every", help="Seconds between progress lines (counts so far).", min=0.1)
    ] = 10.0,
) -> None:
    """Forward the pipeline's MQTT messages to <name>.readings (QoS 1, acknowledged after Kafka)."""
    pipeline = manifest(file)
    url = mqtt_url_for(pipeline)
    bootstrap = kafka_bootstrap(pipeline)
    try:
        ensure_topics(bootstrap, topic_plan(pipeline))
    except KafkaError as exc:
        raise StackError(
            f"cannot reach Kafka at {bootstrap} ({type(exc).__name__}); start it with `meterflow up` "
            "or check spec.source.bootstrapServers"
        ) from None
    stop = False

    def _stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    previous = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        runner = Bridge(
            pipeline,
            mqtt_url=url,
            bootstrap=bootstrap,
            password=os.environ.get(MQTT_PASSWORD_ENV),
            log=_log,
            report_every=report_every,
        )
        runner.run(lambda: stop)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    sys.stdout.flush()


def register(app: typer.Typer) -> None:
    app.command()(bridge)
