"""The ``MeterPipeline`` resource (``meterflow.io/v1alpha1``) as typed, frozen values.

One source of truth: the CLI loads manifests with these models, the operator reads custom
resources with them, and :mod:`meterflow.spec.crd` generates the CRD's openAPIV3Schema from
them — field descriptions, enums, bounds, patterns, defaults and the CEL rules
(``x-kubernetes-validations``) the API server enforces. Each CEL rule has a Python twin in a
validator below, so a manifest is rejected the same way by ``meterflow`` and by ``kubectl``.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

from meterflow.spec.durations import CelDuration, Duration, to_millis

API_GROUP = "meterflow.io"
API_VERSION = "v1alpha1"
KIND = "MeterPipeline"

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
IDENTIFIER_PATTERN = r"^[A-Za-z][A-Za-z0-9_./-]*$"
RULE_NAME_PATTERN = r"^[A-Z][A-Z0-9_]*$"
CLOCK_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
K8S_QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$"

MAX_MEASUREMENTS = 64
MAX_RULES = 64
MAX_FEATURE_MEASUREMENTS = 16


def cel(rule: str, message: str, field_path: str | None = None) -> JsonDict:
    """One CEL validation rule for ``x-kubernetes-validations``."""
    out: JsonDict = {"rule": rule, "message": message}
    if field_path:
        out["fieldPath"] = field_path
    return out


class _Model(BaseModel):
    """Base of every spec value: camelCase on the wire, unknown fields rejected, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_enum_values=True,
    )


# --- enums -------------------------------------------------------------------------------------


class MeterKind(str, Enum):
    """What the simulator produces for this pipeline."""

    water = "water"
    building = "building"
    household = "household"
    industrial = "industrial"


class MeasurementKind(str, Enum):
    """How values of a measurement add up over time."""

    interval = "interval"
    register = "register"
    gauge = "gauge"
    power = "power"


POWER_UNIT_PATTERN = r"^[kMG]?(W|VA|var)$"
"""The units a power measurement may have: a rate whose value times hours is energy (kW → kWh)."""


class Condition(str, Enum):
    """A threshold comparison, evaluated as ``value <condition> threshold``."""

    gt = ">"
    ge = ">="
    lt = "<"
    le = "<="
    eq = "=="
    ne = "!="


class RuleKind(str, Enum):
    """What an alert rule watches (docs/alerts.md)."""

    threshold = "threshold"
    noData = "noData"  # noqa: N815 - the spec's camelCase value
    continuousFlow = "continuousFlow"  # noqa: N815
    nightFlow = "nightFlow"  # noqa: N815
    stuck = "stuck"
    outlier = "outlier"


class Severity(str, Enum):
    """How urgent an alert is."""

    INFO = "INFO"
    WARNING = "WARNING"
    CRITICAL = "CRITICAL"


class WindowType(str, Enum):
    """Event-time window shape."""

    tumbling = "tumbling"
    hopping = "hopping"


class UpgradeMode(str, Enum):
    """How the Flink Kubernetes Operator carries state across a job upgrade."""

    stateless = "stateless"
    savepoint = "savepoint"
    last_state = "last-state"


class RetentionPolicy(str, Enum):
    """What happens to topics, tables and schema when the MeterPipeline is deleted."""

    Retain = "Retain"
    Delete = "Delete"


class MqttPayloadFormat(str, Enum):
    """How an MQTT message maps to readings."""

    reading = "reading"
    wide = "wide"


class MetersSource(str, Enum):
    """Where meter metadata comes from."""

    topic = "topic"
    file = "file"


# --- spec sections -----------------------------------------------------------------------------


class SecretKeyRef(_Model):
    """A key of a Kubernetes Secret in the MeterPipeline's namespace; values are never inlined."""

    name: Annotated[str, Field(description="Name of the Secret.", pattern=DNS_LABEL_PATTERN, max_length=253)]
    key: Annotated[str, Field(description="Key inside the Secret whose value is used.", min_length=1, max_length=253)]


MQTT_URL_PATTERN = r"^mqtts?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$"
MAX_TOPIC_FILTER = 1024
MAX_WIDE_FIELDS = 64


def topic_levels(topic_filter: str) -> list[str]:
    """``buildings/+/telemetry`` → ``["buildings", "+", "telemetry"]``."""
    return topic_filter.split("/")


def check_topic_filter(topic_filter: str, meter_id_level: int | None) -> int:
    """The meter id's level in ``topic_filter`` (0-based); ValueError naming the problem and the fix."""
    levels = topic_levels(topic_filter)
    for i, level in enumerate(levels):
        if level not in ("+", "#") and ("+" in level or "#" in level):
            raise ValueError(
                f"topic: {topic_filter!r} has a wildcard inside level {level!r}; + and # must be whole levels"
            )
        if level == "#" and i != len(levels) - 1:
            raise ValueError(f"topic: {topic_filter!r} has # before its last level; # may only end a filter")
    pluses = [i for i, level in enumerate(levels) if level == "+"]
    if not pluses:
        raise ValueError(f"topic: {topic_filter!r} has no + level for the meter id; write e.g. buildings/+/telemetry")
    if meter_id_level is None:
        return pluses[0]
    if meter_id_level not in pluses:
        raise ValueError(
            f"meterIdLevel: {meter_id_level} is not a + level of {topic_filter!r}; use one of {pluses} (0-based)"
        )
    return meter_id_level


class WideField(_Model):
    """One field of a wide MQTT payload and the measurement its value becomes."""

    field: Annotated[
        str, Field(description="JSON key of the value in the payload (e.g. co2_ppm).", min_length=1, max_length=128)
    ]
    measurement: Annotated[
        str, Field(description="Name of a measurement of spec.measurements (e.g. co2).", max_length=64)
    ]
    series: Annotated[
        str | None,
        Field(
            description="Series of that measurement; may be left out when spec.measurements has the name once.",
            pattern=IDENTIFIER_PATTERN,
            max_length=64,
        ),
    ] = None


class MqttPayload(_Model):
    """How one MQTT message becomes readings."""

    format: Annotated[
        MqttPayloadFormat,
        Field(
            description=(
                "reading: the message is one reading in the reading contract, forwarded as it is; wide: one JSON "
                "object per meter and instant with one field per metric (seed 002's rooms), exploded into one "
                "reading per mapped field."
            )
        ),
    ] = MqttPayloadFormat.reading
    timestamp_field: Annotated[
        str,
        Field(description="wide: the key holding the ISO 8601 timestamp (with offset).", min_length=1, max_length=128),
    ] = "timestamp"
    meter_id_field: Annotated[
        str | None,
        Field(
            description=(
                "wide: a key naming the meter in the payload (e.g. room_id); when present it must equal the meter "
                "id in the topic, else the message is dead-lettered (meter_mismatch)."
            ),
            min_length=1,
            max_length=128,
        ),
    ] = None
    fields: Annotated[
        list[WideField],
        Field(
            description="wide: the metrics to read and the measurement each becomes; other keys are ignored.",
            max_length=MAX_WIDE_FIELDS,
        ),
    ] = []

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.format != 'wide' || size(self.fields) > 0",
                    "payload.fields is required when payload.format is wide",
                    ".fields",
                ),
                cel(
                    "self.format == 'wide' || size(self.fields) == 0",
                    "payload.fields is only for payload.format wide",
                    ".fields",
                ),
                cel(
                    "self.fields.all(f, self.fields.exists_one(o, o.field == f.field))",
                    "payload.fields must name each field once",
                    ".fields",
                ),
            ]
        }
    )

    @model_validator(mode="after")
    def _fields_fit_format(self) -> MqttPayload:
        wide = self.format == MqttPayloadFormat.wide.value
        if wide and not self.fields:
            raise ValueError("fields: is required when payload.format is wide; map each metric to a measurement")
        if not wide and self.fields:
            raise ValueError("fields: is only for payload.format wide; remove it or set format: wide")
        seen: set[str] = set()
        for i, f in enumerate(self.fields):
            if f.field in seen:
                raise ValueError(f"fields[{i}].field: {f.field!r} is mapped twice; map each field once")
            seen.add(f.field)
        return self


class MqttSource(_Model):
    """Readings arrive over MQTT; a bridge forwards every message to the readings topic."""

    url: Annotated[
        str | None,
        Field(
            description=(
                "MQTT broker URL, mqtt://host:port or mqtts://host:port (TLS). Locally the embedded Mosquitto is "
                "used when unset; on Kubernetes the operator's default (METERFLOW_OPERATOR_MQTT_URL)."
            ),
            pattern=MQTT_URL_PATTERN,
            max_length=512,
        ),
    ] = None
    topic: Annotated[
        str,
        Field(
            description=(
                "Topic filter the bridge subscribes to, with a + level holding the meter id "
                "(e.g. buildings/+/telemetry)."
            ),
            min_length=1,
            max_length=MAX_TOPIC_FILTER,
        ),
    ]
    meter_id_level: Annotated[
        int | None,
        Field(
            description="Which level of the topic holds the meter id (0-based); default: the first + level.",
            ge=0,
            le=127,
        ),
    ] = None
    qos: Annotated[
        int,
        Field(
            description=(
                "QoS of the subscription: 1 (at least once: acknowledged after Kafka has the message) or "
                "0 (at most once)."
            ),
            ge=0,
            le=1,
        ),
    ] = 1
    client_id: Annotated[
        str | None,
        Field(
            description="Client id of the bridge's persistent session; default meterflow-<name>-bridge.",
            pattern=r"^[A-Za-z0-9_.-]+$",
            max_length=128,
        ),
    ] = None
    session_expiry: Annotated[
        Duration,
        Field(description="How long the broker keeps the bridge's session and queued messages while it is away."),
    ] = "7d"
    max_inflight: Annotated[
        int,
        Field(
            description=(
                "Messages the broker may send before the bridge acknowledges (MQTT 5 Receive Maximum): the "
                "backpressure window while Kafka is slow."
            ),
            ge=1,
            le=65535,
        ),
    ] = 1000
    username: Annotated[
        str | None, Field(description="User name for the broker (the password comes from passwordSecretRef).")
    ] = None
    password_secret_ref: Annotated[
        SecretKeyRef | None, Field(description="Secret key holding the broker password; never inlined.")
    ] = None
    payload: Annotated[MqttPayload, Field(description="How a message becomes readings.")] = MqttPayload()

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.topic.split('/').exists(l, l == '+')",
                    "mqtt.topic needs a + level for the meter id, e.g. buildings/+/telemetry",
                    ".topic",
                ),
                cel(
                    "self.topic.split('/').all(l, l == '+' || l == '#' || !(l.contains('+') || l.contains('#')))",
                    "mqtt.topic: + and # must be whole levels",
                    ".topic",
                ),
                cel(
                    "!self.topic.contains('#') || self.topic == '#' || "
                    "(self.topic.endsWith('/#') && self.topic.indexOf('#') == size(self.topic) - 1)",
                    "mqtt.topic: # may only end the filter",
                    ".topic",
                ),
                cel(
                    "!has(self.meterIdLevel) || (self.meterIdLevel < size(self.topic.split('/')) && "
                    "self.topic.split('/')[self.meterIdLevel] == '+')",
                    "mqtt.meterIdLevel must point at a + level of mqtt.topic (0-based)",
                    ".meterIdLevel",
                ),
            ]
        }
    )

    @model_validator(mode="after")
    def _topic_has_meter_level(self) -> MqttSource:
        check_topic_filter(self.topic, self.meter_id_level)
        return self

    @property
    def meter_level(self) -> int:
        """The 0-based level of the topic that holds the meter id."""
        return check_topic_filter(self.topic, self.meter_id_level)

    def topic_for(self, meter_id: str) -> str:
        """The topic a meter publishes to: the filter with its meter level set (other wildcards: ``x``)."""
        levels = topic_levels(self.topic)
        level = self.meter_level
        out = [meter_id if i == level else ("x" if part == "+" else part) for i, part in enumerate(levels)]
        if out[-1] == "#":
            out[-1] = "x"
        return "/".join(out)

    def meter_id_of(self, topic: str) -> str:
        """The meter id in a topic that matched the filter ('' when that level is empty or missing)."""
        levels = topic.split("/")
        level = self.meter_level
        return levels[level] if level < len(levels) else ""

    def client_id_for(self, pipeline: str) -> str:
        return self.client_id or f"meterflow-{pipeline}-bridge"


class SourceSpec(_Model):
    """The readings topic and the Kafka cluster it lives on."""

    partitions: Annotated[
        int, Field(ge=1, le=1000, description="Partitions of the readings topic (Strimzi only ever grows them).")
    ] = 3
    replicas: Annotated[int, Field(ge=1, le=10, description="Replicas of every topic of the pipeline.")] = 1
    retention: Annotated[Duration, Field(description="How long Kafka keeps readings (e.g. 7d).")] = "7d"
    kafka_cluster: Annotated[
        str,
        Field(
            description="Strimzi Kafka cluster name, used as the strimzi.io/cluster label of the KafkaTopics.",
            pattern=DNS_LABEL_PATTERN,
            max_length=63,
        ),
    ] = "meterflow"
    bootstrap_servers: Annotated[
        str | None,
        Field(
            description=(
                "Kafka bootstrap servers. Locally the embedded broker is used when unset; on Kubernetes "
                "the default is <kafkaCluster>-kafka-bootstrap:9092."
            ),
            max_length=1024,
        ),
    ] = None
    max_clock_skew: Annotated[
        Duration,
        Field(
            description=(
                "A reading stamped further than this ahead of its arrival (the Kafka record time) is "
                "dead-lettered as future_timestamp: a device clock in the future never moves the watermark."
            )
        ),
    ] = "1h"
    max_reading_age: Annotated[
        Duration,
        Field(
            description=(
                "A reading stamped further than this behind its arrival is dead-lettered as too_old (a clock "
                "reset to 1970). The default admits replays of years-old data; a live pipeline may set days."
            )
        ),
    ] = "10950d"
    mqtt: Annotated[
        MqttSource | None,
        Field(
            description=(
                "Ingest over MQTT: a bridge subscribes to the broker and forwards every message to the readings "
                "topic (docs/mqtt.md). Unset: producers write to Kafka directly."
            )
        ),
    ] = None


class MetersSpec(_Model):
    """Meter metadata (suburb, postcode, usage type, meter type) used to enrich results."""

    source: Annotated[
        MetersSource,
        Field(description="topic: the compacted <name>.meters topic; file: a CSV loaded into that topic at start."),
    ] = MetersSource.topic
    file: Annotated[
        str | None,
        Field(
            description=(
                "CSV with columns meter_id, meter_type, suburb, postcode, usage_type and a header row "
                "(the Unity Water managedobject_details.csv layout). Required when source is file."
            ),
            max_length=4096,
        ),
    ] = None

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.source != 'file' || has(self.file)",
                    "meters.file is required when meters.source is file",
                    ".file",
                ),
            ]
        }
    )

    @model_validator(mode="after")
    def _file_when_file_source(self) -> MetersSpec:
        if self.source == MetersSource.file.value and not self.file:
            raise ValueError("file: is required when meters.source is file; give the CSV path")
        return self


class MeasurementSpec(_Model):
    """One measurement the meters report, in the long reading format."""

    name: Annotated[
        str,
        Field(description="measurement_type of the readings (e.g. Pulse1).", pattern=IDENTIFIER_PATTERN, max_length=64),
    ]
    series: Annotated[
        str,
        Field(
            description="series of the readings (e.g. P1); readings of other series are dead-lettered.",
            pattern=IDENTIFIER_PATTERN,
            max_length=64,
        ),
    ]
    unit: Annotated[str, Field(description="Unit of the values (e.g. L, V, C).", min_length=1, max_length=16)]
    kind: Annotated[
        MeasurementKind,
        Field(
            description=(
                "interval: a quantity per reporting interval (summed); register: a cumulative counter "
                "(consumption is its delta, resets handled); gauge: a level (averaged, never summed); "
                "power: a mean rate over each interval in W, VA or var (consumption is energy: value x "
                "interval, kW over 1m is kW/60 kWh)."
            )
        ),
    ]
    interval: Annotated[
        Duration, Field(description="How often a meter reports it (used by the simulator and no-data checks).")
    ] = "15m"
    min: Annotated[float | None, Field(description="Smallest valid value; lower readings are dead-lettered.")] = None
    max: Annotated[float | None, Field(description="Largest valid value; higher readings are dead-lettered.")] = None

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("!has(self.min) || !has(self.max) || self.min <= self.max", "min must not exceed max", ".min"),
                cel(
                    f"self.kind != 'power' || self.unit.matches('{POWER_UNIT_PATTERN}')",
                    "a power measurement's unit is a rate in W, VA or var (e.g. kW), so that value x hours is energy",
                    ".unit",
                ),
            ]
        }
    )

    @model_validator(mode="after")
    def _range_ordered(self) -> MeasurementSpec:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min: {self.min:g} exceeds max {self.max:g}; swap them")
        return self

    @model_validator(mode="after")
    def _power_is_a_rate(self) -> MeasurementSpec:
        if self.kind == MeasurementKind.power.value and not re.fullmatch(POWER_UNIT_PATTERN, self.unit):
            raise ValueError(
                f"unit: {self.unit!r} is no power unit; a power measurement's unit is a rate in W, VA or var "
                "(e.g. kW, whose energy is served in kWh), or declare the measurement a gauge"
            )
        return self

    def accepts(self, value: float) -> bool:
        """True when ``value`` lies in the valid range."""
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


class WindowSpec(_Model):
    """Event-time windows of the speed layer."""

    type: Annotated[WindowType, Field(description="tumbling, or hopping (windows of size every slide).")] = (
        WindowType.tumbling
    )
    size: Annotated[CelDuration, Field(description="Window length (e.g. 5m).")] = "5m"
    slide: Annotated[
        CelDuration | None, Field(description="Hop between window starts; hopping only, at most size.")
    ] = None
    watermark_delay: Annotated[
        CelDuration, Field(description="Out-of-orderness the watermark allows before windows close.")
    ] = "30s"
    allowed_lateness: Annotated[
        CelDuration,
        Field(
            description=(
                "Extra grace after the watermark delay; a window closes once the watermark passes "
                "end + watermarkDelay + allowedLateness, and readings arriving after are counted late."
            )
        ),
    ] = "0s"

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("duration(self.size) > duration('0s')", "windows.size must be positive", ".size"),
                cel(
                    "!has(self.slide) || duration(self.slide) > duration('0s')",
                    "windows.slide must be positive",
                    ".slide",
                ),
                cel(
                    "!has(self.slide) || duration(self.slide) <= duration(self.size)",
                    "windows.slide must not be larger than windows.size",
                    ".slide",
                ),
                cel(
                    "self.type == 'hopping' || !has(self.slide) || duration(self.slide) == duration(self.size)",
                    "windows.slide is only for hopping windows; remove it or set type: hopping",
                    ".slide",
                ),
            ]
        }
    )

    @model_validator(mode="after")
    def _slide_fits_size(self) -> WindowSpec:
        size = to_millis(self.size)
        if size <= 0:
            raise ValueError(f"size: {self.size} must be positive")
        if self.slide is not None:
            slide = to_millis(self.slide)
            if slide <= 0:
                raise ValueError(f"slide: {self.slide} must be positive")
            if slide > size:
                raise ValueError(f"slide: {self.slide} is larger than size {self.size}; make slide <= size")
            if self.type == WindowType.tumbling.value and slide != size:
                raise ValueError(f"slide: {self.slide} is only for hopping windows; remove it or set type: hopping")
        return self

    @property
    def size_ms(self) -> int:
        return to_millis(self.size)

    @property
    def slide_ms(self) -> int:
        """The hop; equal to the size for tumbling windows."""
        return to_millis(self.slide) if self.slide else self.size_ms

    @property
    def grace_ms(self) -> int:
        """How far the watermark trails the newest event time (delay plus lateness)."""
        return to_millis(self.watermark_delay) + to_millis(self.allowed_lateness)


class RuleSpec(_Model):
    """An alert rule: what opens an alert, and what resolves it (docs/alerts.md).

    Every kind follows one lifecycle: an alert opens at its first breach, repeated breaches update
    it (one active alert per meter, rule and series), it may escalate, and it resolves when the
    condition clears. All times are event times, driven by the watermark, so a replay raises the
    same alerts as the live run.
    """

    name: Annotated[
        str, Field(description="Rule name, UPPER_SNAKE (e.g. HIGH_FLOW).", pattern=RULE_NAME_PATTERN, max_length=64)
    ]
    kind: Annotated[
        RuleKind,
        Field(
            description=(
                "threshold: a reading beyond a threshold; noData: silence for `for`; continuousFlow: consumption "
                "in each of `count` consecutive intervals of `every`; nightFlow: flow through the night on "
                "`nights` nights in a row; stuck: the same value for `for`; outlier: a reading whose robust "
                "z-score against the series' last `count` readings exceeds `threshold`."
            )
        ),
    ] = RuleKind.threshold
    measurement: Annotated[
        str | None,
        Field(
            description="Name of a measurement of spec.measurements (noData: optional, the whole meter when unset).",
            max_length=64,
        ),
    ] = None
    condition: Annotated[Condition | None, Field(description="threshold: comparison, value <condition> threshold.")] = (
        None
    )
    threshold: Annotated[
        float | None,
        Field(
            description=(
                "threshold: the value compared with, within the measurement's min/max; nightFlow: the smallest "
                "step (consumption between two readings) that counts as flow; outlier: the robust z-score "
                "limit (e.g. 3.5)."
            )
        ),
    ] = None
    clear_threshold: Annotated[
        float | None,
        Field(
            description=(
                "threshold: hysteresis: an open alert resolves only when the value is back beyond this "
                "(e.g. opens above 500, clears below 400); unset: as soon as a reading no longer breaches."
            )
        ),
    ] = None
    for_: Annotated[
        Duration | None,
        Field(
            alias="for", description="noData: how long a silence opens the alert; stuck: how long an unchanged value."
        ),
    ] = None
    every: Annotated[
        CelDuration | None,
        Field(description="continuousFlow: the interval, a divisor of a day (e.g. 1h), in spec.timeZone's clock."),
    ] = None
    count: Annotated[
        int | None,
        Field(
            ge=2,
            le=10_000,
            description=(
                "continuousFlow: consecutive flowing intervals that open it; outlier: the readings of the rolling "
                "window (median and MAD), at least 5."
            ),
        ),
    ] = None
    from_: Annotated[
        str | None,
        Field(
            alias="from",
            description="nightFlow: start of the night, HH:MM local time.",
            pattern=CLOCK_PATTERN,
            max_length=5,
        ),
    ] = None
    to: Annotated[
        str | None,
        Field(
            description="nightFlow: end of the night, HH:MM local time (may be after midnight).",
            pattern=CLOCK_PATTERN,
            max_length=5,
        ),
    ] = None
    nights: Annotated[
        int | None, Field(ge=1, le=366, description="nightFlow: consecutive flowing nights that open it.")
    ] = None
    escalate_after: Annotated[
        Duration | None,
        Field(
            description=(
                "Raise the severity one step (INFO → WARNING → CRITICAL) when the alert is still open and "
                "unacknowledged this long after it opened."
            )
        ),
    ] = None
    severity: Annotated[Severity, Field(description="INFO, WARNING or CRITICAL.")] = Severity.WARNING

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.kind != 'threshold' || (has(self.measurement) && has(self.condition) && has(self.threshold))",
                    "a threshold rule needs measurement, condition and threshold",
                    ".condition",
                ),
                cel(
                    "!has(self.clearThreshold) || (self.kind == 'threshold' && (self.condition in ['>', '>='] ? "
                    "self.clearThreshold <= self.threshold : self.condition in ['<', '<='] ? "
                    "self.clearThreshold >= self.threshold : false))",
                    "clearThreshold is for threshold rules with >, >=, < or <=, on the clear side of threshold",
                    ".clearThreshold",
                ),
                cel(
                    "!(self.kind in ['noData', 'stuck']) || has(self.for)",
                    "noData and stuck rules need for (e.g. 26h)",
                    ".for",
                ),
                cel(
                    "self.kind == 'noData' || has(self.measurement)",
                    "every rule but noData needs a measurement",
                    ".measurement",
                ),
                cel(
                    "self.kind != 'continuousFlow' || (has(self.every) && has(self.count) "
                    "&& duration(self.every) >= duration('1s') && 86400 % duration(self.every).getSeconds() == 0)",
                    "a continuousFlow rule needs every (a divisor of 24h) and count",
                    ".every",
                ),
                cel(
                    "self.kind != 'outlier' || (has(self.count) && self.count >= 5 && has(self.threshold) "
                    "&& self.threshold > 0.0)",
                    "an outlier rule needs count (readings in its window, at least 5) and threshold (the robust "
                    "z-score limit, above 0)",
                    ".count",
                ),
                cel(
                    "self.kind != 'nightFlow' || (has(self.from) && has(self.to) && has(self.threshold) "
                    "&& has(self.nights) && self.from != self.to)",
                    "a nightFlow rule needs from, to (different), threshold and nights",
                    ".from",
                ),
            ]
        }
    )

    @model_validator(mode="after")
    def _fields_fit_the_kind(self) -> RuleSpec:
        kind = self.kind
        if kind == RuleKind.threshold.value:
            for name, value in (("measurement", self.measurement), ("condition", self.condition)):
                if value is None:
                    raise ValueError(f"{name}: is required for a threshold rule")
            if self.threshold is None:
                raise ValueError("threshold: is required for a threshold rule")
        elif self.measurement is None and kind != RuleKind.noData.value:
            raise ValueError(f"measurement: is required for a {kind} rule")
        if self.clear_threshold is not None:
            if kind != RuleKind.threshold.value or self.condition not in (">", ">=", "<", "<="):
                raise ValueError("clearThreshold: is for threshold rules with >, >=, < or <=; remove it")
            above = self.condition in (">", ">=")
            threshold = self.threshold or 0.0
            if (self.clear_threshold > threshold) if above else (self.clear_threshold < threshold):
                raise ValueError(
                    f"clearThreshold: {self.clear_threshold:g} must lie on the clear side of threshold "
                    f"{self.threshold:g} for condition {self.condition}"
                )
        if kind in (RuleKind.noData.value, RuleKind.stuck.value) and self.for_ is None:
            raise ValueError(f"for: is required for a {kind} rule (e.g. 26h)")
        if kind == RuleKind.continuousFlow.value:
            if self.every is None or self.count is None:
                raise ValueError("every: and count: are required for a continuousFlow rule (e.g. 1h and 24)")
            every = to_millis(self.every)
            if every < 1000 or 86_400_000 % every != 0:
                raise ValueError(f"every: {self.every} must be whole seconds that divide a day (e.g. 15m, 1h, 2h)")
        if kind == RuleKind.outlier.value:
            if self.count is None or self.count < 5:
                raise ValueError("count: an outlier rule needs at least 5 readings in its window (e.g. 30)")
            if self.threshold is None or self.threshold <= 0:
                raise ValueError("threshold: an outlier rule needs a robust z-score limit above 0 (e.g. 3.5)")
        if kind == RuleKind.nightFlow.value:
            required: dict[str, object] = {
                "from": self.from_,
                "to": self.to,
                "threshold": self.threshold,
                "nights": self.nights,
            }
            for name, given in required.items():
                if given is None:
                    raise ValueError(f"{name}: is required for a nightFlow rule")
            if self.from_ == self.to:
                raise ValueError(f"to: {self.to} equals from; a night needs a length")
        return self

    def clock_minutes(self, text: str) -> int:
        """``"02:30"`` → 150."""
        hours, minutes = text.split(":")
        return int(hours) * 60 + int(minutes)


CLICKHOUSE_DSN_PATTERN = r"^(chdb|https?)://"
"""What a ClickHouse DSN starts with: the schemes the one client factory (meterflow_clickhouse.client) connects to."""


class WindowStat(str, Enum):
    """A statistic of a closed window, as ``readings_agg`` holds it."""

    avg = "avg"
    min = "min"
    max = "max"
    stddev = "stddev"


class RatioSpec(_Model):
    """A feature that relates two measurements: the ratio of their window means."""

    numerator: Annotated[str, Field(description="A measurement of anomalies.measurements.", max_length=64)]
    denominator: Annotated[str, Field(description="A measurement of anomalies.measurements.", max_length=64)]


class AnomalySpec(_Model):
    """Isolation Forest anomaly detection on closed windows (docs/anomalies.md).

    Each meter's window is one sample: the ``stats`` of every listed measurement's window, and the
    ``ratios``. ``meterflow anomalies train`` fits the model on the lake's history; the speed layer
    scores every window as it closes, the batch re-scores the windows of the days it recomputes,
    and an anomalous window opens (or updates) an alert of kind ``anomaly`` named ``rule``.
    """

    measurements: Annotated[
        list[Annotated[str, Field(max_length=64)]],
        Field(
            description="Measurements whose window statistics are features (each with one series), each once.",
            min_length=1,
            max_length=MAX_FEATURE_MEASUREMENTS,
            json_schema_extra={"x-kubernetes-list-type": "set"},  # the API server refuses a repeat
        ),
    ]
    stats: Annotated[
        list[WindowStat],
        Field(
            description="Window statistics taken of each measurement, each once.",
            min_length=1,
            max_length=4,
            json_schema_extra={"x-kubernetes-list-type": "set"},
        ),
    ] = [WindowStat.avg, WindowStat.min, WindowStat.max, WindowStat.stddev]
    ratios: Annotated[
        list[RatioSpec],
        Field(description="Ratios of window means, e.g. temperature/humidity.", max_length=MAX_FEATURE_MEASUREMENTS),
    ] = []
    contamination: Annotated[
        float,
        Field(
            gt=0,
            le=0.5,
            description="The share of training windows taken to be anomalous: it sets the verdict's threshold.",
        ),
    ] = 0.05
    trees: Annotated[int, Field(ge=10, le=1000, description="Trees of the forest.")] = 100
    rule: Annotated[
        str,
        Field(
            description="Name of the alerts anomalous windows raise (kind anomaly).",
            pattern=RULE_NAME_PATTERN,
            max_length=64,
        ),
    ] = "ANOMALY"
    severity: Annotated[Severity, Field(description="INFO, WARNING or CRITICAL.")] = Severity.WARNING

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.ratios.all(r, r.numerator in self.measurements && r.denominator in self.measurements)",
                    "every ratio's numerator and denominator must be one of anomalies.measurements",
                    ".ratios",
                ),
            ]
        }
    )

    @model_validator(mode="after")
    def _ratios_of_listed(self) -> AnomalySpec:
        if len(set(self.measurements)) != len(self.measurements):
            raise ValueError(f"measurements: {self.measurements} lists one twice; keep one of each")
        if len(set(self.stats)) != len(self.stats):
            raise ValueError(f"stats: {self.stats} lists one twice; keep one of each")
        for i, ratio in enumerate(self.ratios):
            for side in ("numerator", "denominator"):
                name = getattr(ratio, side)
                if name not in self.measurements:
                    raise ValueError(
                        f"ratios[{i}].{side}: {name!r} is not one of anomalies.measurements {self.measurements}; "
                        "add it there"
                    )
        return self


class ClickHouseSink(_Model):
    """Where window results, alerts, counters and batch figures are served from."""

    dsn: Annotated[
        str | None,
        Field(
            description=(
                "clickhouse-connect DSN: chdb:///path (embedded) or http(s)://user@host:8123. Default: "
                "the embedded chDB under the local state folder; on Kubernetes, the operator's default DSN."
            ),
            pattern=CLICKHOUSE_DSN_PATTERN,
            max_length=4096,
        ),
    ] = None
    secret_ref: Annotated[
        SecretKeyRef | None, Field(description="Secret key holding the DSN (with credentials); wins over dsn.")
    ] = None
    database: Annotated[
        str | None,
        Field(
            description="Database name; default: the pipeline name with - replaced by _.",
            pattern=r"^[a-z_][a-z0-9_]*$",
            max_length=63,
        ),
    ] = None


class IcebergSink(_Model):
    """The raw-readings lake: an Iceberg catalog and warehouse shared by Flink and pyiceberg."""

    catalog_name: Annotated[
        str,
        Field(
            description="Catalog name; must be the same for every reader and writer.",
            pattern=r"^[a-z_][a-z0-9_]*$",
            max_length=63,
        ),
    ] = "meterflow"
    catalog_uri: Annotated[
        str | None,
        Field(
            description="SQL catalog URI: sqlite:///path (local default) or postgresql://host/db; on "
            "Kubernetes the operator's default when unset.",
            max_length=4096,
        ),
    ] = None
    warehouse: Annotated[
        str | None,
        Field(
            description="Warehouse URI: file:///path (local default) or s3://bucket/path; on "
            "Kubernetes the operator's default when unset.",
            max_length=4096,
        ),
    ] = None
    namespace: Annotated[
        str | None,
        Field(
            description="Iceberg namespace; default: the pipeline name with - replaced by _.",
            pattern=r"^[a-z_][a-z0-9_]*$",
            max_length=63,
        ),
    ] = None
    secret_ref: Annotated[
        SecretKeyRef | None,
        Field(description="Secret key holding the catalog URI with credentials; wins over catalogUri."),
    ] = None
    snapshot_retention: Annotated[
        Duration, Field(description="Snapshots older than this are expired by the batch upkeep.")
    ] = "7d"


class SinksSpec(_Model):
    """Serving and lake sinks."""

    clickhouse: Annotated[ClickHouseSink, Field(description="The ClickHouse serving store.")] = ClickHouseSink()
    iceberg: Annotated[IcebergSink, Field(description="The Iceberg raw lake.")] = IcebergSink()


class BatchSpec(_Model):
    """The scheduled recompute of closed days from the lake."""

    schedule: Annotated[
        str,
        Field(
            description="Cron schedule (5 fields, in timeZone) of the batch recompute.",
            min_length=9,
            max_length=128,
            pattern=r"^(\S+\s+){4}\S+$",
        ),
    ] = "30 1 * * *"
    lookback: Annotated[Duration, Field(description="How many closed days each scheduled run recomputes.")] = "3d"
    no_data_hours: Annotated[
        int, Field(ge=1, le=8760, description="A meter silent longer than this is a problem meter.")
    ] = 24
    high_consumption_factor: Annotated[
        float, Field(gt=1, le=1000, description="Daily consumption above factor x the usual level is high.")
    ] = 3.0
    min_health_score: Annotated[
        float,
        Field(
            ge=0,
            le=100,
            description=(
                "A meter-day whose data-quality score (0-100, table meter_health) is below this is a problem "
                "meter (LOW_QUALITY); 0 turns the rule off."
            ),
        ),
    ] = 60.0

    @field_validator("schedule")
    @classmethod
    def _cron_parses(cls, value: str) -> str:
        from croniter import croniter  # local: only validation needs it

        if not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a cron schedule; write 5 fields, e.g. '30 1 * * *'")
        return value


class Resources(_Model):
    """CPU and memory of one Flink process."""

    cpu: Annotated[float, Field(gt=0, le=64, description="CPU cores.")] = 1.0
    memory: Annotated[
        str, Field(description="Memory as a Kubernetes quantity (e.g. 2048m, 2Gi).", pattern=K8S_QUANTITY_PATTERN)
    ] = "2048m"


class FlinkSpec(_Model):
    """How the streaming and batch jobs run on Flink."""

    image: Annotated[
        str,
        Field(
            description="Flink job image with PyFlink, the connector jars and meterflow.", min_length=1, max_length=512
        ),
    ] = "ghcr.io/meterflow/meterflow-flink:0.1.0"
    parallelism: Annotated[int, Field(ge=1, le=512, description="Job parallelism.")] = 1
    job_manager: Annotated[Resources, Field(description="JobManager resources.")] = Resources(memory="1600m")
    task_manager: Annotated[Resources, Field(description="TaskManager resources.")] = Resources(memory="2048m")
    task_slots: Annotated[int, Field(ge=1, le=64, description="Slots per TaskManager.")] = 2
    upgrade_mode: Annotated[UpgradeMode, Field(description="stateless, savepoint or last-state.")] = (
        UpgradeMode.savepoint
    )
    checkpoint_interval: Annotated[
        CelDuration, Field(description="Checkpoint interval; Iceberg commits and Kafka offsets follow it.")
    ] = "10s"
    checkpoint_dir: Annotated[
        str | None,
        Field(
            description="Durable checkpoint URI (s3://..., file://...); default: under the "
            "local state folder, on Kubernetes <operator stateUri>/<namespace>/<name>/checkpoints.",
            max_length=4096,
        ),
    ] = None
    savepoint_dir: Annotated[
        str | None,
        Field(
            description="Durable savepoint URI; default: under the local state folder, on "
            "Kubernetes <operator stateUri>/<namespace>/<name>/savepoints.",
            max_length=4096,
        ),
    ] = None


class MeterPipelineSpec(_Model):
    """What to ingest, validate, aggregate, alert on and where to keep it."""

    meter_kind: Annotated[
        MeterKind, Field(description="water, building, household or industrial: what `meterflow simulate` produces.")
    ] = MeterKind.water
    time_zone: Annotated[
        str,
        Field(
            description="IANA time zone that defines a day for batch figures (e.g. Australia/Brisbane).",
            min_length=1,
            max_length=64,
        ),
    ] = "UTC"
    source: Annotated[SourceSpec, Field(description="The readings topic.")] = SourceSpec()
    meters: Annotated[MetersSpec, Field(description="Meter metadata for enrichment.")] = MetersSpec()
    measurements: Annotated[
        list[MeasurementSpec],
        Field(
            description="The measurements this pipeline accepts; other readings are dead-lettered.",
            min_length=1,
            max_length=MAX_MEASUREMENTS,
        ),
    ]
    windows: Annotated[WindowSpec, Field(description="Event-time windows.")] = WindowSpec()
    rules: Annotated[
        list[RuleSpec], Field(description="Alert rules (threshold and stateful kinds).", max_length=MAX_RULES)
    ] = []
    sinks: Annotated[SinksSpec, Field(description="ClickHouse and Iceberg.")] = SinksSpec()
    batch: Annotated[BatchSpec, Field(description="The scheduled batch recompute.")] = BatchSpec()
    anomalies: Annotated[
        AnomalySpec | None,
        Field(description="Isolation Forest anomaly detection on closed windows (unset: none)."),
    ] = None
    flink: Annotated[FlinkSpec, Field(description="Flink job settings.")] = FlinkSpec()
    suspend: Annotated[bool, Field(description="true suspends the streaming job (state is kept).")] = False
    retention: Annotated[
        RetentionPolicy,
        Field(description="On delete: Retain keeps topics, tables and schema; Delete removes them."),
    ] = RetentionPolicy.Retain

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.rules.all(r, !has(r.measurement) || self.measurements.exists(m, m.name == r.measurement))",
                    "every rule's measurement must be one of spec.measurements",
                    ".rules",
                ),
                cel(
                    "self.rules.all(r, r.kind != 'threshold' || !has(r.threshold) || self.measurements.all(m, "
                    "m.name != r.measurement || "
                    "((!has(m.min) || r.threshold >= m.min) && (!has(m.max) || r.threshold <= m.max))))",
                    "every threshold rule's threshold must lie within its measurement's min and max",
                    ".rules",
                ),
                cel(
                    "self.rules.all(r, !(r.kind in ['continuousFlow', 'nightFlow']) || self.measurements.all(m, "
                    "m.name != r.measurement || m.kind in ['interval', 'register']))",
                    "continuousFlow and nightFlow rules watch an interval or register measurement (consumption)",
                    ".rules",
                ),
                cel(
                    "self.rules.all(r, r.kind != 'stuck' || self.measurements.all(m, "
                    "m.name != r.measurement || m.kind in ['register', 'gauge', 'power']))",
                    "stuck rules watch a register, gauge or power measurement",
                    ".rules",
                ),
                cel(
                    "self.rules.all(r, r.kind != 'outlier' || self.measurements.all(m, "
                    "m.name != r.measurement || m.kind in ['interval', 'gauge', 'power']))",
                    "outlier rules watch an interval, gauge or power measurement (a register only grows)",
                    ".rules",
                ),
                cel(
                    "self.measurements.all(m, "
                    "self.measurements.exists_one(o, o.name == m.name && o.series == m.series))",
                    "measurements must be unique by name and series",
                    ".measurements",
                ),
                cel(
                    "!has(self.anomalies) || self.anomalies.measurements.all(a, "
                    "self.measurements.exists_one(m, m.name == a))",
                    "every anomalies measurement must be one measurement of spec.measurements (with one series)",
                    ".anomalies.measurements",
                ),
                cel(
                    "!has(self.anomalies) || !has(self.windows) || !has(self.windows.type) || "
                    "self.windows.type == 'tumbling'",
                    "anomaly detection scores tumbling windows; set windows.type: tumbling",
                    ".anomalies",
                ),
                cel(
                    "!has(self.anomalies) || self.rules.all(r, r.name != self.anomalies.rule)",
                    "anomalies.rule must differ from every rule's name",
                    ".anomalies.rule",
                ),
                cel(
                    "self.rules.all(r, self.rules.exists_one(o, o.name == r.name))",
                    "rule names must be unique",
                    ".rules",
                ),
                cel(
                    "!has(self.source.mqtt) || self.source.mqtt.payload.fields.all(f, has(f.series) ? "
                    "self.measurements.exists(m, m.name == f.measurement && m.series == f.series) : "
                    "self.measurements.exists_one(m, m.name == f.measurement))",
                    "every mqtt payload field must map to one measurement of spec.measurements "
                    "(give its series when the name has several)",
                    ".source.mqtt.payload.fields",
                ),
            ]
        }
    )

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone; write e.g. UTC or Australia/Brisbane") from None
        return value

    @model_validator(mode="after")
    def _rules_match_measurements(self) -> MeterPipelineSpec:
        seen: set[tuple[str, str]] = set()
        for i, m in enumerate(self.measurements):
            if (m.name, m.series) in seen:
                raise ValueError(f"measurements[{i}]: {m.name}/{m.series} is listed twice; keep one")
            seen.add((m.name, m.series))
        names = {m.name for m in self.measurements}
        rule_names: set[str] = set()
        for i, rule in enumerate(self.rules):
            if rule.name in rule_names:
                raise ValueError(f"rules[{i}].name: {rule.name} is used twice; rule names must be unique")
            rule_names.add(rule.name)
            if rule.measurement is None:
                continue
            if rule.measurement not in names:
                raise ValueError(
                    f"rules[{i}].measurement: {rule.measurement!r} is not a measurement of this pipeline; "
                    f"use one of {sorted(names)}"
                )
            for m in self.measurements:
                if m.name != rule.measurement:
                    continue
                if (
                    rule.kind == RuleKind.threshold.value
                    and rule.threshold is not None
                    and not m.accepts(rule.threshold)
                ):
                    raise ValueError(
                        f"rules[{i}].threshold: {rule.threshold:g} lies outside {m.name}'s valid range "
                        f"[{m.min if m.min is not None else '-inf'}, {m.max if m.max is not None else 'inf'}]; "
                        "no valid reading could trigger it"
                    )
                flows = (RuleKind.continuousFlow.value, RuleKind.nightFlow.value)
                if rule.kind in flows and m.kind not in (
                    MeasurementKind.interval.value,
                    MeasurementKind.register.value,
                ):
                    raise ValueError(
                        f"rules[{i}].measurement: {m.name} is a {m.kind}; a {rule.kind} rule watches consumption "
                        "(an interval or register measurement)"
                    )
                if rule.kind == RuleKind.outlier.value and m.kind == MeasurementKind.register.value:
                    raise ValueError(
                        f"rules[{i}].measurement: {m.name} is a register; an outlier rule watches an interval, "
                        "gauge or power measurement (a register only grows)"
                    )
                if rule.kind == RuleKind.stuck.value and m.kind == MeasurementKind.interval.value:
                    raise ValueError(
                        f"rules[{i}].measurement: {m.name} is an interval measurement; a stuck rule watches a "
                        "register, gauge or power measurement"
                    )
        if self.source.mqtt is not None:
            self.wide_targets()
        if self.anomalies is not None:
            self._anomalies_fit(rule_names)
        return self

    def _anomalies_fit(self, rule_names: set[str]) -> None:
        """The twins of the ``anomalies`` CEL rules above."""
        assert self.anomalies is not None
        for i, name in enumerate(self.anomalies.measurements):
            series = [m.series for m in self.measurements if m.name == name]
            if not series:
                known = sorted({m.name for m in self.measurements})
                raise ValueError(
                    f"anomalies.measurements[{i}]: {name!r} is not a measurement of this pipeline; use one of {known}"
                )
            if len(series) > 1:
                raise ValueError(
                    f"anomalies.measurements[{i}]: {name} has series {sorted(series)}; a feature measurement has "
                    "one series"
                )
        if self.windows.type != WindowType.tumbling.value:
            raise ValueError("anomalies: anomaly detection scores tumbling windows; set windows.type: tumbling")
        if self.anomalies.rule in rule_names:
            raise ValueError(f"anomalies.rule: {self.anomalies.rule} is also a rule's name; name it apart")

    def threshold_rules(self) -> list[RuleSpec]:
        """The rules of kind threshold (the ones a single reading can breach)."""
        return [r for r in self.rules if r.kind == RuleKind.threshold.value]

    def wide_targets(self) -> list[tuple[str, MeasurementSpec]]:
        """``(payload key, measurement)`` of every field of a wide MQTT payload, in the manifest's order."""
        if self.source.mqtt is None:
            return []
        out = []
        for i, f in enumerate(self.source.mqtt.payload.fields):
            where = f"source.mqtt.payload.fields[{i}]"
            matches = [
                m for m in self.measurements if m.name == f.measurement and (f.series is None or m.series == f.series)
            ]
            if not matches:
                known = sorted({f"{m.name}/{m.series}" for m in self.measurements})
                raise ValueError(
                    f"{where}.measurement: {f.measurement}{'/' + f.series if f.series else ''} is not a measurement "
                    f"of this pipeline; use one of {known}"
                )
            if len(matches) > 1:
                raise ValueError(
                    f"{where}.series: {f.measurement} has series {sorted(m.series for m in matches)}; name one"
                )
            out.append((f.field, matches[0]))
        return out

    def measurement(self, name: str, series: str | None = None) -> MeasurementSpec:
        """The measurement called ``name`` (and ``series``, when given)."""
        for m in self.measurements:
            if m.name == name and (series is None or m.series == series):
                return m
        raise KeyError(f"{name}/{series or '*'} is not a measurement of this pipeline")


# --- status (written by the operator) ----------------------------------------------------------


class ConditionStatus(_Model):
    """One status condition, as Kubernetes conventions have it."""

    type: Annotated[str, Field(description="Ready, TopicsReady, StreamingJobReady, BatchScheduled or SchemaReady.")]
    status: Annotated[Literal["True", "False", "Unknown"], Field(description="True, False or Unknown.")]
    reason: Annotated[str, Field(description="CamelCase reason for the last transition.")] = ""
    message: Annotated[str, Field(description="Human-readable detail.")] = ""
    last_transition_time: Annotated[str | None, Field(description="When the status last changed (RFC 3339).")] = None
    observed_generation: Annotated[int | None, Field(description="The generation this condition was set for.")] = None


class LastBatch(_Model):
    """The most recent batch run the operator started."""

    name: Annotated[str | None, Field(description="Name of the batch run's FlinkDeployment or Job.")] = None
    time: Annotated[str | None, Field(description="Its scheduled time, when the operator started it (RFC 3339).")] = (
        None
    )
    state: Annotated[str | None, Field(description="Its last known state.")] = None


class Children(_Model):
    """Names of the objects the operator owns for this pipeline."""

    topics: Annotated[list[str], Field(description="KafkaTopic names.")] = []
    config_map: Annotated[str | None, Field(description="ConfigMap with the manifest.")] = None
    flink_deployment: Annotated[str | None, Field(description="Streaming FlinkDeployment.")] = None
    bridge: Annotated[str | None, Field(description="The MQTT bridge Deployment (with spec.source.mqtt).")] = None
    cron_job: Annotated[
        str | None, Field(description="Unset: the operator starts batch runs itself (see lastBatch, docs/operator.md).")
    ] = None


class MeterPipelineStatus(_Model):
    """What the operator observed and did."""

    model_config = ConfigDict(extra="allow")

    observed_generation: Annotated[int | None, Field(description="Last generation reconciled.")] = None
    conditions: Annotated[list[ConditionStatus], Field(description="Ready and per-part conditions.")] = []
    streaming_job_state: Annotated[
        str | None, Field(description="The FlinkDeployment's job state as its operator reports it.")
    ] = None
    last_batch: Annotated[LastBatch | None, Field(description="The latest batch run.")] = None
    children: Annotated[Children | None, Field(description="Owned objects.")] = None


class ObjectMeta(BaseModel):
    """The metadata a manifest gives; server-set fields are allowed and ignored."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: Annotated[str, Field(pattern=DNS_LABEL_PATTERN, max_length=63)]
    namespace: str | None = None
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}


class MeterPipeline(_Model):
    """A MeterPipeline resource: the whole manifest."""

    model_config = ConfigDict(extra="ignore")

    api_version: Annotated[Literal["meterflow.io/v1alpha1"], Field(alias="apiVersion")]
    kind: Annotated[Literal["MeterPipeline"], Field(alias="kind")]
    metadata: ObjectMeta
    spec: MeterPipelineSpec
    status: MeterPipelineStatus | None = None

    @property
    def name(self) -> str:
        return self.metadata.name

    def to_manifest(self) -> dict[str, Any]:
        """The manifest as ``kubectl apply`` takes it (spec with defaults applied, no status)."""
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "metadata": {"name": self.metadata.name}
            | ({"namespace": self.metadata.namespace} if self.metadata.namespace else {}),
            "spec": self.spec.model_dump(mode="json", by_alias=True, exclude_none=True),
        }
