"""The streaming job as Flink SQL, generated from a MeterPipeline spec (pure functions).

The raw stream never leaves the JVM: Kafka (raw bytes) → the ``parse_reading`` JVM function (one parse per record) →
validation against the spec → dead letters / de-duplication → late classification against the
watermark → Iceberg (every valid reading), windows and register deltas, alerts (enriched) →
upsert-Kafka topics read by the ClickHouse sink. :func:`statements` returns, in order, the DDL
and the INSERTs that :mod:`flink_jobs.streaming.job` runs as one statement set.

Semantics, in one place:

* **Watermark** = newest event time - (``watermarkDelay`` + ``allowedLateness``): a window closes
  once the watermark passes its end, so the grace before it closes is delay + lateness.
* **Late** = a reading whose event time is at or behind the watermark when it is classified. It
  is kept out of every window (so counts add up: valid = on_time + late + duplicates), counted,
  and still written to the lake with ``late = true``. One rule for windows and register deltas.
* **Duplicates**: the first of equal (meter, measurement, series, event time) wins.
* **Enrichment**: alerts (a few) are joined with the meters table in Flink; window results are
  as many as readings when windows are shorter than the reporting interval (Unity Water: 5-minute
  windows, 15-minute readings), and a regular join over them kept every result in state and became
  the bottleneck (381 s instead of 70 s for 1.09M readings, measured) — ClickHouse enriches them
  on ingest instead (migrations/0001: a materialized view joining the ``meters`` table).
* **Registers**: consumption is the step from the meter's previous reading (event-time order),
  resets handled as :mod:`meterflow.consumption` says. Never a sum of register values.
"""

from __future__ import annotations

from dataclasses import dataclass

from meterflow.consumption import REGISTER_RESET_RATIO
from meterflow.reading import UNKNOWN
from meterflow.spec.model import MeasurementKind, MeasurementSpec, MeterPipeline
from meterflow.spec.names import PipelineNames, names_for
from meterflow.stack.endpoints import IcebergLocation

_OPERATORS = {">": ">", ">=": ">=", "<": "<", "<=": "<=", "==": "=", "!=": "<>"}


@dataclass(frozen=True)
class KafkaEndpoint:
    """Where the job reads and writes Kafka."""

    bootstrap: str
    group_id: str


def quote(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def _number(value: float) -> str:
    return f"CAST({value!r} AS DOUBLE)"


def _interval_ms(ms: int) -> str:
    """A day-to-second interval literal (Flink rejects precisions on plain SECOND intervals)."""
    days, rest = divmod(ms, 86_400_000)
    hours, rest = divmod(rest, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"INTERVAL '{days} {hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}' DAY TO SECOND(3)"


def _with(options: dict[str, str]) -> str:
    return "WITH (\n  " + ",\n  ".join(f"{quote(k)} = {quote(v)}" for k, v in options.items()) + "\n)"


def _kafka_common(kafka: KafkaEndpoint, topic: str) -> dict[str, str]:
    return {"topic": topic, "properties.bootstrap.servers": kafka.bootstrap}


# --- spec → SQL expressions ----------------------------------------------------------------------


def _is_measurement(name: str, series: str, prefix: str = "") -> str:
    return f"{prefix}measurement_type = {quote(name)} AND {prefix}series = {quote(series)}"


def validation_reason(pipeline: MeterPipeline) -> str:
    """SQL: the dead-letter reason of a parsed row (``r.``), NULL when it is valid."""
    branches = []
    for m in pipeline.spec.measurements:
        checks = [f"WHEN r.unit <> {quote(m.unit)} THEN 'unit_mismatch'"]
        if out_of_range := _out_of_range(m):
            checks.append(f"WHEN {out_of_range} THEN 'out_of_range'")
        branches.append(f"WHEN {_is_measurement(m.name, m.series, 'r.')} THEN CASE {' '.join(checks)} END")
    return f"CASE WHEN r.error IS NOT NULL THEN r.error {' '.join(branches)} ELSE 'unknown_measurement' END"


def _out_of_range(m: MeasurementSpec) -> str | None:
    """SQL: true when the parsed value lies outside ``m``'s min/max; None when it has no bounds."""
    bounds = []
    if m.min is not None:
        bounds.append(f"r.reading_value < {_number(m.min)}")
    if m.max is not None:
        bounds.append(f"r.reading_value > {_number(m.max)}")
    return " OR ".join(bounds) or None


def validation_detail(pipeline: MeterPipeline) -> str:
    """SQL: a human-readable detail to go with :func:`validation_reason`."""
    branches = []
    for m in pipeline.spec.measurements:
        rng = f"[{m.min if m.min is not None else '-inf'}, {m.max if m.max is not None else 'inf'}]"
        checks = [f"WHEN r.unit <> {quote(m.unit)} THEN {quote(f'{m.name}/{m.series} is in {m.unit}, got ')} || r.unit"]
        if out_of_range := _out_of_range(m):
            checks.append(
                f"WHEN {out_of_range} THEN "
                f"{quote(f'{m.name}/{m.series} must lie in {rng}, got ')} || CAST(r.reading_value AS STRING)"
            )
        branches.append(f"WHEN {_is_measurement(m.name, m.series, 'r.')} THEN CASE {' '.join(checks)} END")
    unknown = "'no measurement ' || r.measurement_type || '/' || r.series || ' in this pipeline'"
    return f"CASE WHEN r.error IS NOT NULL THEN r.error_detail {' '.join(branches)} ELSE {unknown} END"


def _kind_is(pipeline: MeterPipeline, kind: MeasurementKind) -> str:
    chosen = [m for m in pipeline.spec.measurements if m.kind == kind.value]
    if not chosen:
        return "FALSE"
    return "(" + " OR ".join(f"({_is_measurement(m.name, m.series)})" for m in chosen) + ")"


def _window_tvf(pipeline: MeterPipeline, table: str) -> str:
    w = pipeline.spec.windows
    if w.type == "hopping":
        return (
            f"TABLE(HOP(TABLE {table}, DESCRIPTOR(event_time), {_interval_ms(w.slide_ms)}, {_interval_ms(w.size_ms)}))"
        )
    return f"TABLE(TUMBLE(TABLE {table}, DESCRIPTOR(event_time), {_interval_ms(w.size_ms)}))"


# --- statements --------------------------------------------------------------------------------


def statements(pipeline: MeterPipeline, kafka: KafkaEndpoint, lake: IcebergLocation) -> tuple[list[str], list[str]]:
    """(DDL and views, INSERTs) of the streaming job for ``pipeline``."""
    names = names_for(pipeline)
    ddl = [
        "CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS parse_reading AS 'io.meterflow.udf.ParseReading'",
        "CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS reading_event_time AS 'io.meterflow.udf.ReadingEventTime'",
        _source_table(pipeline, names, kafka),
        _meters_table(names, kafka),
        _parsed_view(pipeline),
        _unique_view(),
        _classified_view(),
        *_window_input_views(pipeline),
        _windowed_view(pipeline),
        _alerts_view(pipeline),
        _dlq_table(names, kafka),
        _aggregates_table(names, kafka),
        _alerts_table(names, kafka),
        _counters_table(names, kafka),
    ]
    inserts = [
        _insert_lake(lake, names),
        _insert_dlq(pipeline),
        _insert_aggregates(),
        _insert_counters(),
    ]
    if pipeline.spec.rules:
        inserts.append(_insert_alerts(pipeline))
    return [s for s in ddl if s], inserts


def _source_table(pipeline: MeterPipeline, names: PipelineNames, kafka: KafkaEndpoint) -> str:
    options = _kafka_common(kafka, names.topics.readings) | {
        "connector": "kafka",
        "format": "raw",
        "properties.group.id": kafka.group_id,
        "scan.startup.mode": "group-offsets",
        "properties.auto.offset.reset": "earliest",
        "properties.isolation.level": "read_committed",
        # Small per-partition fetches interleave the partitions finely: the watermark is the
        # minimum over partitions, and a partition read whole before the others start (as large
        # fetches do with a backlog) would leave the watermark unset while its records are
        # classified — no reading would ever be late (measured).
        "properties.fetch.max.bytes": str(16 << 20),
        "properties.max.partition.fetch.bytes": str(64 << 10),
        # A watermark after every record instead of every 200 ms: lateness no longer depends on
        # how fast a backlog is read (measured: no throughput cost).
        "scan.watermark.emit.strategy": "on-event",
    }
    grace = _interval_ms(pipeline.spec.windows.grace_ms)
    return f"""CREATE TEMPORARY TABLE readings_source (
  payload STRING,
  kafka_partition INT METADATA FROM 'partition' VIRTUAL,
  kafka_offset BIGINT METADATA FROM 'offset' VIRTUAL,
  ingest_time TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
  event_time AS COALESCE(reading_event_time(payload), TO_TIMESTAMP_LTZ(0, 3)),
  proc_time AS PROCTIME(),
  WATERMARK FOR event_time AS event_time - {grace}
) {_with(options)}"""


def _meters_table(names: PipelineNames, kafka: KafkaEndpoint) -> str:
    options = _kafka_common(kafka, names.topics.meters) | {
        "connector": "upsert-kafka",
        "key.format": "raw",
        "value.format": "json",
        "value.json.ignore-parse-errors": "true",
        "value.fields-include": "ALL",
    }
    return f"""CREATE TEMPORARY TABLE meters (
  meter_id STRING,
  meter_type STRING,
  suburb STRING,
  postcode STRING,
  usage_type STRING,
  PRIMARY KEY (meter_id) NOT ENFORCED
) {_with(options)}"""


def _parsed_view(pipeline: MeterPipeline) -> str:
    return f"""CREATE TEMPORARY VIEW parsed AS
SELECT
  payload, kafka_partition, kafka_offset, ingest_time, event_time, proc_time,
  r.meter_id, r.measurement_type, r.series, r.unit, r.reading_value,
  {validation_reason(pipeline)} AS reason,
  {validation_detail(pipeline)} AS detail
FROM (SELECT s.*, parse_reading(s.payload) AS r FROM readings_source AS s)"""


def _unique_view() -> str:
    return """CREATE TEMPORARY VIEW unique_readings AS
SELECT meter_id, measurement_type, series, unit, reading_value, event_time, ingest_time, kafka_partition, kafka_offset
FROM (
  SELECT *, ROW_NUMBER() OVER (
    PARTITION BY meter_id, measurement_type, series, event_time ORDER BY proc_time ASC) AS arrival
  FROM parsed
  WHERE reason IS NULL
)
WHERE arrival = 1"""


def _classified_view() -> str:
    return """CREATE TEMPORARY VIEW classified AS
SELECT *, COALESCE(event_time <= CURRENT_WATERMARK(event_time), FALSE) AS late
FROM unique_readings"""


def _window_input_views(pipeline: MeterPipeline) -> list[str]:
    """On-time readings, split: levels and interval quantities as they are; registers as steps.

    Both must be insert-only for the window and OVER operators: that holds because the
    de-duplication keeps the first row on processing time *and mini-batch is off* (Flink 2.1+
    declares a mini-batched de-duplication updating; see job.py).
    """
    register = _kind_is(pipeline, MeasurementKind.register)
    interval = _kind_is(pipeline, MeasurementKind.interval)
    step = (
        f"CASE WHEN previous IS NULL THEN CAST(0 AS DOUBLE) "
        f"WHEN reading_value < previous AND reading_value <= previous * {REGISTER_RESET_RATIO!r} THEN reading_value "
        f"ELSE reading_value - previous END"
    )
    return [
        f"""CREATE TEMPORARY VIEW level_input AS
SELECT meter_id, measurement_type, series, unit, reading_value, event_time,
  CASE WHEN {interval} THEN reading_value END AS consumption_part
FROM classified
WHERE NOT late AND NOT {register}""",
        f"""CREATE TEMPORARY VIEW register_input AS
SELECT meter_id, measurement_type, series, unit, reading_value, event_time, {step} AS consumption_part
FROM (
  SELECT meter_id, measurement_type, series, unit, reading_value, event_time,
    LAG(reading_value) OVER (PARTITION BY meter_id, measurement_type, series ORDER BY event_time) AS previous
  FROM classified
  WHERE NOT late AND {register}
)""",
    ]


def _window_aggregate(pipeline: MeterPipeline, table: str) -> str:
    return f"""SELECT meter_id, measurement_type, series,
  CAST(window_start AS TIMESTAMP_LTZ(3)) AS window_start,
  CAST(window_end AS TIMESTAMP_LTZ(3)) AS window_end,
  MAX(unit) AS unit,
  COUNT(*) AS readings,
  SUM(reading_value) AS total,
  AVG(reading_value) AS mean,
  MIN(reading_value) AS lowest,
  MAX(reading_value) AS highest,
  STDDEV_POP(reading_value) AS stddev,
  SUM(consumption_part) AS consumption
FROM {_window_tvf(pipeline, table)}
GROUP BY meter_id, measurement_type, series, window_start, window_end"""


def _windowed_view(pipeline: MeterPipeline) -> str:
    """Window results: one aggregation per input that has measurements, united."""
    kinds = {m.kind for m in pipeline.spec.measurements}
    parts = []
    if kinds - {MeasurementKind.register.value}:
        parts.append(_window_aggregate(pipeline, "level_input"))
    if MeasurementKind.register.value in kinds:
        parts.append(_window_aggregate(pipeline, "register_input"))
    return "CREATE TEMPORARY VIEW windowed AS\n" + "\nUNION ALL\n".join(parts)


def _alerts_view(pipeline: MeterPipeline) -> str:
    if not pipeline.spec.rules:
        return ""
    selects = []
    for rule in pipeline.spec.rules:
        op = _OPERATORS[rule.condition]
        selects.append(
            f"SELECT {quote(rule.name)} AS rule, {quote(rule.severity)} AS severity, {quote(rule.condition)} AS "
            f"`condition`, {_number(rule.threshold)} AS threshold, meter_id, measurement_type, series, unit, "
            f"reading_value, CAST(event_time AS TIMESTAMP_LTZ(3)) AS event_time\n"
            f"FROM classified WHERE measurement_type = {quote(rule.measurement)} "
            f"AND reading_value {op} {_number(rule.threshold)}"
        )
    return "CREATE TEMPORARY VIEW alert_events AS\n" + "\nUNION ALL\n".join(selects)


# --- sinks -------------------------------------------------------------------------------------


def _json_value(prefix: str = "value.") -> dict[str, str]:
    return {f"{prefix}format": "json", f"{prefix}json.timestamp-format.standard": "ISO-8601"}


def _upsert_sink(kafka: KafkaEndpoint, topic: str) -> dict[str, str]:
    return (
        _kafka_common(kafka, topic)
        | {"connector": "upsert-kafka", "key.format": "json", "key.json.timestamp-format.standard": "ISO-8601"}
        | _json_value()
        | {
            "value.fields-include": "ALL",
            "sink.buffer-flush.max-rows": "20000",
            "sink.buffer-flush.interval": "200ms",
            "properties.linger.ms": "20",
        }
    )


def _enrichment_columns() -> str:
    return "meter_type STRING,\n  suburb STRING,\n  postcode STRING,\n  usage_type STRING"


def _dlq_table(names: PipelineNames, kafka: KafkaEndpoint) -> str:
    options = (
        _kafka_common(kafka, names.topics.dlq)
        | {"connector": "kafka"}
        | {"format": "json", "json.timestamp-format.standard": "ISO-8601"}
        | {
            "sink.delivery-guarantee": "exactly-once",
            "sink.transactional-id-prefix": f"meterflow-{names.pipeline}-dlq",
            "properties.transaction.timeout.ms": "900000",
        }
    )
    return f"""CREATE TEMPORARY TABLE dead_letters (
  reason STRING,
  detail STRING,
  payload STRING,
  source_partition INT,
  source_offset BIGINT,
  ingest_time TIMESTAMP_LTZ(3),
  pipeline STRING
) {_with(options)}"""


def _aggregates_table(names: PipelineNames, kafka: KafkaEndpoint) -> str:
    return f"""CREATE TEMPORARY TABLE aggregates (
  meter_id STRING,
  measurement_type STRING,
  series STRING,
  window_start TIMESTAMP_LTZ(3),
  window_end TIMESTAMP_LTZ(3),
  unit STRING,
  readings BIGINT,
  `sum` DOUBLE,
  `avg` DOUBLE,
  `min` DOUBLE,
  `max` DOUBLE,
  stddev DOUBLE,
  consumption DOUBLE,
  PRIMARY KEY (meter_id, measurement_type, series, window_start, window_end) NOT ENFORCED
) {_with(_upsert_sink(kafka, names.topics.aggregates))}"""


def _alerts_table(names: PipelineNames, kafka: KafkaEndpoint) -> str:
    return f"""CREATE TEMPORARY TABLE alerts (
  meter_id STRING,
  rule STRING,
  series STRING,
  event_time TIMESTAMP_LTZ(3),
  severity STRING,
  measurement_type STRING,
  unit STRING,
  `value` DOUBLE,
  `condition` STRING,
  threshold DOUBLE,
  {_enrichment_columns()},
  PRIMARY KEY (meter_id, rule, series, event_time) NOT ENFORCED
) {_with(_upsert_sink(kafka, names.topics.alerts))}"""


def _counters_table(names: PipelineNames, kafka: KafkaEndpoint) -> str:
    return f"""CREATE TEMPORARY TABLE ingest_counters (
  `minute` TIMESTAMP_LTZ(3),
  counter STRING,
  `value` BIGINT,
  PRIMARY KEY (`minute`, counter) NOT ENFORCED
) {_with(_upsert_sink(kafka, names.topics.counters))}"""


def _enriched(alias: str) -> str:
    return (
        f"COALESCE({alias}.meter_type, '{UNKNOWN}'), COALESCE({alias}.suburb, '{UNKNOWN}'), "
        f"COALESCE({alias}.postcode, '{UNKNOWN}'), COALESCE({alias}.usage_type, '{UNKNOWN}')"
    )


def _insert_lake(lake: IcebergLocation, names: PipelineNames) -> str:
    table = f"`{lake.catalog_name}`.`{names.iceberg_namespace}`.`readings`"
    return f"""INSERT INTO {table}
SELECT meter_id, measurement_type, series, unit, reading_value, CAST(event_time AS TIMESTAMP_LTZ(6)),
  CAST(ingest_time AS TIMESTAMP_LTZ(6)), kafka_partition, kafka_offset, late
FROM classified"""


def _insert_dlq(pipeline: MeterPipeline) -> str:
    return f"""INSERT INTO dead_letters
SELECT reason, detail, payload, kafka_partition, kafka_offset, ingest_time, {quote(pipeline.name)}
FROM parsed WHERE reason IS NOT NULL"""


def _insert_aggregates() -> str:
    """Window results as they are; ClickHouse enriches them on ingest (see module docstring)."""
    return """INSERT INTO aggregates
SELECT meter_id, measurement_type, series, window_start, window_end, unit, readings,
  total, mean, lowest, highest, stddev, consumption
FROM windowed"""


def _insert_alerts(pipeline: MeterPipeline) -> str:
    return f"""INSERT INTO alerts
SELECT a.meter_id, a.rule, a.series, a.event_time, a.severity, a.measurement_type, a.unit, a.reading_value,
  a.`condition`, a.threshold, {_enriched("m")}
FROM alert_events AS a LEFT JOIN meters AS m ON a.meter_id = m.meter_id"""


def _insert_counters() -> str:
    return """INSERT INTO ingest_counters
SELECT `minute`, counter, COUNT(*) AS `value`
FROM (
  SELECT CAST(FLOOR(CAST(ingest_time AS TIMESTAMP(3)) TO MINUTE) AS TIMESTAMP_LTZ(3)) AS `minute`,
    COALESCE('dlq:' || reason, 'valid') AS counter
  FROM parsed
  UNION ALL
  SELECT CAST(FLOOR(CAST(ingest_time AS TIMESTAMP(3)) TO MINUTE) AS TIMESTAMP_LTZ(3)) AS `minute`,
    CASE WHEN late THEN 'late' ELSE 'on_time' END AS counter
  FROM classified
)
GROUP BY `minute`, counter"""
