"""MQTT broker URLs (``mqtt://host:port``, ``mqtts://host:port``) and where a pipeline's broker is.

Precedence, as for Kafka and the sinks: ``$METERFLOW_MQTT_URL`` (set on the bridge's pod by the
operator) > ``spec.source.mqtt.url`` > the embedded Mosquitto of ``$METERFLOW_HOME`` (locally).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from meterflow.errors import SpecError
from meterflow.spec.model import MeterPipeline

MQTT_URL_ENV = "METERFLOW_MQTT_URL"
MQTT_PASSWORD_ENV = "METERFLOW_MQTT_PASSWORD"
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


@dataclass(frozen=True)
class MqttAddress:
    """A broker's host and port, and whether to speak TLS."""

    host: str
    port: int
    tls: bool


def parse_mqtt_url(url: str) -> MqttAddress:
    """``mqtt://host[:port]`` (1883) or ``mqtts://host[:port]`` (8883); SpecError naming the fix."""
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise SpecError(f"MQTT URL {url!r} is not mqtt://host:port or mqtts://host:port")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise SpecError(f"MQTT URL {url!r} has a bad port; write e.g. mqtt://broker:1883") from None
    return MqttAddress(parts.hostname, port, parts.scheme == "mqtts")


def mqtt_url_for(pipeline: MeterPipeline, start: bool = True) -> str:
    """The broker URL of ``pipeline``: env, manifest, or the embedded Mosquitto (started on demand)."""
    source = pipeline.spec.source.mqtt
    if source is None:
        raise SpecError(
            f"MeterPipeline {pipeline.name} has no spec.source.mqtt; add it (docs/mqtt.md) to ingest over MQTT"
        )
    if env := os.environ.get(MQTT_URL_ENV):
        return env
    if source.url:
        return source.url
    from meterflow.stack.mosquitto import EmbeddedMosquitto

    broker = EmbeddedMosquitto()
    info = broker.up() if start else broker.running()
    if info is None:
        from meterflow.errors import StackError

        raise StackError("no embedded Mosquitto is running; start one with `meterflow up --mqtt`")
    return info.url
