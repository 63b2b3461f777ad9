"""The equal-work Spark peer: Spark Structured Streaming doing what meterflow's streaming job does.

Run by the bench virtualenv's Python (pyspark, pandas, pyarrow, chdb; ``make bench-deps``),
standalone like :mod:`bench.spark_job` (it imports nothing from meterflow: the harness passes
the manifest's measurements, rules and window as a JSON file). It reads the readings topic from
the earliest offset with ``Trigger.AvailableNow`` and

* parses and validates every record once per query: one ``from_json`` with a typed schema on
  the fast path; a record whose typed parse cannot be trusted (corrupt, a text field that a
  non-string JSON token could have produced, a NaN/infinite value, content after the object) is
  classified exactly by a second ``from_json`` into VARIANT fields (``schema_of_variant`` names
  each token's type). ``CASE WHEN`` evaluates that branch only for such records. Reasons are
  meterflow's (bad_json, missing_field, missing_value, wrong_type, bad_timestamp, not_finite,
  unknown_measurement, unit_mismatch, out_of_range); dead letters go to a Kafka topic with the
  reason, a detail and the original payload;
* **ingest query**: de-duplicates (first of equal meter, measurement, series, event time wins)
  with ``dropDuplicates`` on a key that does not carry the watermark, so late readings are kept
  (meterflow lands them in the lake and alerts on them) and the state keeps every key, as
  meterflow's 26 h-TTL de-duplication state does over a run; each micro-batch (``foreachBatch``)
  writes its dead letters to Kafka, its unique readings to an Iceberg table (JDBC catalog on
  SQLite, partitioned by day of event time, one commit per micro-batch) and its threshold alerts
  to Kafka and to ClickHouse (chDB, one Arrow insert);
* **windows query**: ``dropDuplicatesWithinWatermark`` (which drops readings behind the 60 s
  watermark: meterflow keeps late readings out of windows and register steps too), register
  steps in ``applyInPandasWithState`` (state: the last event time and value per meter/series;
  see :func:`register_steps`), 5-minute tumbling windows (count, sum, avg, min, max,
  stddev_pop, consumption) to Kafka and to ClickHouse (one Arrow insert per micro-batch).

Two queries because a Structured Streaming query has one sink and Spark shares no stateful
operator between queries: the topic is read, parsed and de-duplicated twice. Prints one
``BENCH-RESULT {json}`` line with its figures.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TIMESTAMP_PATTERN = "yyyy-MM-dd'T'HH:mm[:ss][.SSSSSSSSS]XXX"
"""ISO 8601 with a UTC offset (``Z``, ``+10:00``), seconds and fraction optional, as Java's
``OffsetDateTime.parse`` (meterflow's parser) reads it."""

TYPED_SCHEMA = (
    "meter_id STRING, timestamp STRING, measurement_type STRING, series STRING, unit STRING, value DOUBLE, "
    "_corrupt STRING"
)
VARIANT_SCHEMA = (
    "meter_id VARIANT, timestamp VARIANT, measurement_type VARIANT, series VARIANT, unit VARIANT, value VARIANT, "
    "_corrupt STRING"
)
JSON_OPTIONS = {"columnNameOfCorruptRecord": "_corrupt", "mode": "PERMISSIVE"}
INTEGER_TYPES = "('TINYINT', 'SMALLINT', 'INT', 'BIGINT')"
CONTRACT_FIELDS = ("meter_id", "timestamp", "measurement_type", "series", "unit", "value")
ID_FIELDS = ("meter_id", "measurement_type", "series")
"""Text fields meterflow's parser also accepts as JSON integers."""


# --- SQL built from the manifest --------------------------------------------------------------


def quote(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _number(value: float) -> str:
    return f"CAST({float(value)!r} AS DOUBLE)"


def _suspicious(field: str) -> str:
    """SQL over the typed parse ``t``: true when the text may come from a non-string JSON token.

    The typed parse renders any token as text (``true``, ``1.5``, ``{...}``); these records go to
    the exact (VARIANT) check. A superset is enough: the exact check decides.
    """
    x = f"t.{field}"
    common = f"{x} IN ('true', 'false', 'NaN', 'Infinity', '-Infinity') OR substr({x}, 1, 1) IN ('{{', '[')"
    if field in ID_FIELDS:  # integers are accepted, floats are not
        return (
            f"({common} OR ((substr({x}, 1, 1) BETWEEN '0' AND '9' OR substr({x}, 1, 1) = '-') "
            f"AND (instr({x}, '.') > 0 OR instr(upper({x}), 'E') > 0)))"
        )
    if field == "timestamp":  # a number has no ':'; every timestamp has one
        return f"({common} OR instr({x}, ':') = 0)"
    return f"({common} OR substr({x}, 1, 1) BETWEEN '0' AND '9' OR substr({x}, 1, 1) IN ('-', '+'))"


def _variant_type_ok(v: str, field: str) -> str:
    """SQL over the VARIANT parse ``v``: the JSON token of ``field`` has a type the contract allows
    (absent or null pass here: they are ``missing_field`` later)."""
    kind = f"schema_of_variant({v}.{field})"
    if field in ID_FIELDS:
        decimal_integer = f"{kind} RLIKE '^DECIMAL\\\\([0-9]+,0\\\\)$'"
        return f"({kind} IS NULL OR {kind} IN ('VOID', 'STRING') OR {kind} IN {INTEGER_TYPES} OR {decimal_integer})"
    if field == "value":
        return (
            f"({kind} IS NULL OR {kind} IN ('VOID', 'FLOAT', 'DOUBLE') OR {kind} IN {INTEGER_TYPES} "
            f"OR {kind} LIKE 'DECIMAL%')"
        )
    return f"({kind} IS NULL OR {kind} IN ('VOID', 'STRING'))"


_WRONG_TYPE_DETAIL = {
    "meter_id": "meter_id must be a string or an integer",
    "timestamp": "timestamp must be an ISO 8601 string",
    "measurement_type": "measurement_type must be a string",
    "series": "series must be a string",
    "unit": "unit must be a string",
    "value": "value must be a number",
}


def json_problem_sql(payload: str = "payload") -> tuple[str, str]:
    """(reason, detail) SQL: bad_json or wrong_type, NULL when the JSON and its token types are fine.

    Fast path: the typed parse ``t`` is trusted unless it is corrupt, suspicious or followed by
    content; only then is the payload parsed again into VARIANT fields (in a ``CASE`` branch that
    Spark evaluates for those records only; each check re-parses, which costs nothing that matters
    on a few records).
    """
    v = f"from_json({payload}, '{VARIANT_SCHEMA}', map('columnNameOfCorruptRecord', '_corrupt'))"
    trailing = f"NOT (rtrim({payload}) LIKE '%}}')"
    needs_check = " OR ".join(
        [
            "t IS NULL",
            "t._corrupt IS NOT NULL",
            trailing,
            "isnan(t.value)",
            "abs(t.value) = CAST('Infinity' AS DOUBLE)",
            *(_suspicious(f) for f in CONTRACT_FIELDS if f != "value"),
        ]
    )
    corrupt = f"{v} IS NULL OR {v}._corrupt IS NOT NULL"
    reasons = [f"WHEN {corrupt} THEN 'bad_json'"]
    details = [f"WHEN {corrupt} THEN 'not valid JSON'"]
    for field in CONTRACT_FIELDS:
        wrong = f"NOT {_variant_type_ok(v, field)}"
        reasons.append(f"WHEN {wrong} THEN 'wrong_type'")
        got = f"' (got ' || schema_of_variant({v}.{field}) || ')'"
        details.append(f"WHEN {wrong} THEN {quote(_WRONG_TYPE_DETAIL[field])} || {got}")
    reasons.append(f"WHEN {trailing} THEN 'bad_json'")
    details.append(f"WHEN {trailing} THEN 'unexpected content after the JSON object'")
    empty = f"{payload} IS NULL OR {payload} = ''"
    reason = f"CASE WHEN {empty} THEN 'bad_json' WHEN {needs_check} THEN CASE {' '.join(reasons)} END END"
    detail = (
        f"CASE WHEN {empty} THEN 'the record has no value' WHEN {needs_check} THEN CASE {' '.join(details)} END END"
    )
    return reason, detail


def contract_problem_sql(spec: dict[str, Any]) -> tuple[str, str]:
    """(reason, detail) SQL over a record whose JSON is fine: missing fields, non-finite value, bad
    timestamp, then the manifest (unknown measurement, unit, range), in meterflow's order."""
    reasons, details = [], []
    for field in CONTRACT_FIELDS:
        empty = f"t.{field} IS NULL" if field == "value" else f"coalesce(t.{field}, '') = ''"
        if field == "value":  # a JSON null (VOID), not an absent field: the reading names no value
            null = "t.value IS NULL AND schema_of_variant(from_json(payload, 'value VARIANT').value) = 'VOID'"
            reasons.append(f"WHEN {null} THEN 'missing_value'")
            details.append(f"WHEN {null} THEN 'value is null: the reading carries no value'")
        reasons.append(f"WHEN {empty} THEN 'missing_field'")
        details.append(f"WHEN {empty} THEN {quote(field + ' is missing or null')}")
    reasons.append("WHEN isnan(t.value) OR abs(t.value) = CAST('Infinity' AS DOUBLE) THEN 'not_finite'")
    details.append(
        "WHEN isnan(t.value) OR abs(t.value) = CAST('Infinity' AS DOUBLE) THEN 'value is ' || CAST(t.value AS STRING)"
    )
    reasons.append("WHEN event_time IS NULL THEN 'bad_timestamp'")
    before, after = quote("timestamp '"), quote("' is not ISO 8601 with a UTC offset")
    details.append(f"WHEN event_time IS NULL THEN {before} || t.timestamp || {after}")
    measurement_reason, measurement_detail = [], []
    for m in spec["measurements"]:
        is_it = f"t.measurement_type = {quote(m['name'])} AND t.series = {quote(m['series'])}"
        bounds = []
        if m.get("min") is not None:
            bounds.append(f"t.value < {_number(m['min'])}")
        if m.get("max") is not None:
            bounds.append(f"t.value > {_number(m['max'])}")
        low = "-inf" if m.get("min") is None else m["min"]
        high = "inf" if m.get("max") is None else m["max"]
        label, unit = f"{m['name']}/{m['series']}", m["unit"]
        r = [f"WHEN t.unit <> {quote(unit)} THEN 'unit_mismatch'"]
        d = [f"WHEN t.unit <> {quote(unit)} THEN {quote(f'{label} is in {unit}, got ')} || t.unit"]
        if bounds:
            outside = " OR ".join(bounds)
            r.append(f"WHEN {outside} THEN 'out_of_range'")
            d.append(
                f"WHEN {outside} THEN {quote(f'{label} must lie in [{low}, {high}], got ')} || CAST(t.value AS STRING)"
            )
        measurement_reason.append(f"WHEN {is_it} THEN CASE {' '.join(r)} END")
        measurement_detail.append(f"WHEN {is_it} THEN CASE {' '.join(d)} END")
    unknown = "'no measurement ' || t.measurement_type || '/' || t.series || ' in this pipeline'"
    reason = f"CASE {' '.join(reasons)} ELSE CASE {' '.join(measurement_reason)} ELSE 'unknown_measurement' END END"
    detail = f"CASE {' '.join(details)} ELSE CASE {' '.join(measurement_detail)} ELSE {unknown} END END"
    return reason, detail


def rule_sql(spec: dict[str, Any]) -> str:
    """SQL: the rule a reading triggers (the first matching one), NULL for none."""
    ops = {">": ">", ">=": ">=", "<": "<", "<=": "<=", "==": "=", "!=": "<>"}
    branches = [
        f"WHEN measurement_type = {quote(r['measurement'])} AND value {ops[r['condition']]} {_number(r['threshold'])} "
        f"THEN named_struct('rule', {quote(r['name'])}, 'severity', {quote(r['severity'])}, "
        f"'condition', {quote(r['condition'])}, 'threshold', {_number(r['threshold'])})"
        for r in spec["rules"]
    ]
    return f"CASE {' '.join(branches)} END" if branches else "CAST(NULL AS STRUCT<rule: STRING>)"


def parse_records(raw: Any, spec: dict[str, Any]) -> Any:
    """Kafka records (key, value, partition, offset, timestamp) → every column a sink needs, with
    ``reason`` and ``detail`` NULL when the record is a valid reading."""
    from pyspark.sql import functions as F  # noqa: N812 - pyspark's convention

    json_reason, json_detail = json_problem_sql()
    contract_reason, contract_detail = contract_problem_sql(spec)
    typed = raw.select(
        "key",
        F.col("value").cast("string").alias("payload"),
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        F.col("timestamp").alias("ingest_time"),
        F.from_json(F.col("value").cast("string"), TYPED_SCHEMA, JSON_OPTIONS).alias("t"),
    )
    timed = typed.withColumn(
        "event_time",
        F.date_trunc("millisecond", F.try_to_timestamp(F.col("t.timestamp"), F.lit(TIMESTAMP_PATTERN))),
    )
    checked = timed.withColumn("json_reason", F.expr(json_reason)).withColumn(
        "reason", F.expr(f"coalesce(json_reason, {contract_reason})")
    )
    return checked.select(
        # Non-deterministic, so Spark keeps a later `reason IS NULL` filter above this projection: pushed
        # below it, the filter inlined the typed parse into each of its ~50 field reads (a jstack of the
        # mid-size run sat in that predicate).
        F.spark_partition_id().alias("spark_partition"),
        "key",
        "payload",
        "kafka_partition",
        "kafka_offset",
        "ingest_time",
        "reason",
        F.when(F.col("reason").isNotNull(), F.expr(f"coalesce({json_detail}, {contract_detail})")).alias("detail"),
        F.col("t.meter_id").alias("meter_id"),
        F.col("t.measurement_type").alias("measurement_type"),
        F.col("t.series").alias("series"),
        F.col("t.unit").alias("unit"),
        F.col("t.value").alias("value"),
        "event_time",
    )


# --- register steps ---------------------------------------------------------------------------


def register_steps(spec: dict[str, Any]) -> Any:
    """The ``applyInPandasWithState`` function: each on-time unique reading with its consumption part.

    Registers (per meter/measurement/series, in event-time order within the micro-batch, continued
    from the state of earlier micro-batches): the step from the previous reading; a fall to at most
    ``reset_ratio`` of it is a reset (the step is the new value); the first reading's step is 0
    (meterflow's ``LAG`` rule). Interval measurements: the value. Gauges: NULL.

    Why ``applyInPandasWithState``: the state (last event time, last value) travels with the Arrow
    batch, so a key costs one Python call per micro-batch. ``transformWithStateInPandas`` (Spark
    4.0's API) asks the JVM for every state read and write over a socket; on a 7-key rate source
    it managed 2 micro-batches in 60 s where this managed 15 (measured here).
    """
    import numpy as np
    import pandas as pd

    kinds = {(m["name"], m["series"]): m["kind"] for m in spec["measurements"]}
    factors = {(m["name"], m["series"]): float(m["consumption_factor"]) for m in spec["measurements"]}
    ratio = float(spec["reset_ratio"])

    def steps(key: tuple[Any, ...], frames: Iterator[pd.DataFrame], state: Any) -> Iterator[pd.DataFrame]:
        frame = pd.concat(list(frames), ignore_index=True)
        kind = kinds.get((key[1], key[2]))
        if kind != "register":
            consumes = kind in ("interval", "power")  # an interval's value, a power's value x hours
            part = frame["value"] * factors[(key[1], key[2])] if consumes else pd.Series(np.nan, index=frame.index)
            yield frame.assign(consumption_part=part)
            return
        frame = frame.sort_values("event_time", kind="stable", ignore_index=True)
        values = frame["value"].to_numpy(dtype="float64")
        previous = np.empty_like(values)
        previous[1:] = values[:-1]
        previous[0] = float(state.get[1]) if state.exists else np.nan
        step = np.where(
            np.isnan(previous),
            0.0,
            np.where((values < previous) & (values <= previous * ratio), values, values - previous),
        )
        state.update((int(frame["event_time"].iloc[-1].value // 1_000_000), float(values[-1])))
        yield frame.assign(consumption_part=step)

    return steps


# --- the job ----------------------------------------------------------------------------------


class Sinks:
    """The chDB session (one per process: a chDB folder takes one owner) and the counts written."""

    def __init__(self, folder: Path, database: str) -> None:
        import chdb.session

        self.database = database
        self.lock = threading.Lock()  # the two queries' foreachBatch calls run in two threads
        self.session = chdb.session.Session(str(folder))
        self.counts: Counter[str] = Counter()
        self.seconds: Counter[str] = Counter()
        self.session.query(f"CREATE DATABASE IF NOT EXISTS {database}")
        self.session.query(
            f"""CREATE TABLE IF NOT EXISTS {database}.readings_agg (
  meter_id String, measurement_type LowCardinality(String), series LowCardinality(String),
  window_start DateTime64(3, 'UTC'), window_end DateTime64(3, 'UTC'), unit LowCardinality(String),
  readings UInt64, sum Float64, avg Float64, min Float64, max Float64, stddev Float64,
  consumption Nullable(Float64), version UInt64
) ENGINE = ReplacingMergeTree(version) ORDER BY (meter_id, measurement_type, series, window_start)"""
        )
        self.session.query(
            f"""CREATE TABLE IF NOT EXISTS {database}.alerts (
  meter_id String, rule LowCardinality(String), series LowCardinality(String), event_time DateTime64(3, 'UTC'),
  severity LowCardinality(String), measurement_type LowCardinality(String), unit LowCardinality(String),
  value Float64, condition String, threshold Float64, version UInt64
) ENGINE = ReplacingMergeTree(version) ORDER BY (meter_id, rule, series, event_time)"""
        )

    def insert(self, table: str, arrow: Any) -> None:
        """One insert of a whole micro-batch (an Arrow table with the table's columns, in order)."""
        if arrow.num_rows == 0:
            return
        started = time.monotonic()
        with self.lock:
            self.session.query(f"INSERT INTO {self.database}.{table} SELECT * FROM Python(arrow)")
        self.seconds[f"clickhouse_{table}"] += time.monotonic() - started

    def count(self, sql: str) -> list[tuple[Any, ...]]:
        with self.lock:
            text = str(self.session.query(sql, "JSONCompact"))
        return [tuple(row) for row in json.loads(text)["data"]]

    def close(self) -> None:
        self.session.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--spec", required=True, help="JSON: measurements, rules, window_ms, grace_ms, reset_ratio")
    parser.add_argument("--dlq-topic", required=True)
    parser.add_argument("--aggregates-topic", required=True)
    parser.add_argument("--alerts-topic", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--jars", required=True)
    parser.add_argument("--max-offsets", type=int, default=500_000)
    parser.add_argument("--shuffle-partitions", type=int, default=2)
    parser.add_argument(
        "--max-seconds", type=float, default=0, help="stop the queries after this long (0: run to the end)"
    )
    args = parser.parse_args()
    spec = json.loads(Path(args.spec).read_text())
    out = Path(args.out).absolute()
    (out / "lake").mkdir(parents=True, exist_ok=True)

    t0 = time.monotonic()
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F  # noqa: N812 - pyspark's convention

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("meterflow-bench-spark-equal")
        .config("spark.jars", args.jars)
        .config("spark.sql.shuffle.partitions", str(args.shuffle_partitions))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.streaming.numRecentProgressUpdates", "1000")
        # Off: it rewrites every `t.field` of the validation into its own from_json with a one-field
        # schema — about 50 parses per record instead of one (seen in a jstack of the mid-size run).
        .config("spark.sql.optimizer.enableJsonExpressionOptimization", "false")
        # RocksDB: the ingest query's de-duplication keeps every key (off-heap, not in the 3 GB heap)
        .config(
            "spark.sql.streaming.stateStore.providerClass",
            "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider",
        )
        .config("spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled", "true")
        .config("spark.sql.catalog.lake", "org.apache.iceberg.spark.SparkCatalog")
        .config("spark.sql.catalog.lake.catalog-impl", "org.apache.iceberg.jdbc.JdbcCatalog")
        .config("spark.sql.catalog.lake.uri", f"jdbc:sqlite:{out / 'lake' / 'catalog.db'}")
        .config("spark.sql.catalog.lake.warehouse", (out / "lake" / "warehouse").as_uri())
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("WARN")
    session_s = time.monotonic() - t0

    namespace, table = "spark_equal", "lake.spark_equal.readings"
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS lake.{namespace}")
    spark.sql(
        f"""CREATE TABLE IF NOT EXISTS {table} (
  meter_id STRING NOT NULL, measurement_type STRING NOT NULL, series STRING NOT NULL, unit STRING NOT NULL,
  value DOUBLE NOT NULL, event_time TIMESTAMP NOT NULL, ingest_time TIMESTAMP, kafka_partition INT,
  kafka_offset BIGINT
) USING iceberg PARTITIONED BY (days(event_time))"""
    )
    sinks = Sinks(out / "clickhouse", namespace)

    grace = f"{int(spec['grace_ms'])} milliseconds"

    def source() -> Any:
        """The topic, parsed and validated (a new read of the topic each call: one per query)."""
        raw = (
            spark.readStream.format("kafka")
            .option("kafka.bootstrap.servers", args.bootstrap)
            .option("subscribe", args.topic)
            .option("startingOffsets", "earliest")
            .option("maxOffsetsPerTrigger", str(args.max_offsets))
            .option("failOnDataLoss", "false")
            .load()
        )
        return parse_records(raw, spec)

    # --- the ingest query: dead letters, the lake, alerts
    parsed = source()
    keyed = parsed.withColumn(
        "dlq_id", F.when(F.col("reason").isNotNull(), F.concat_ws(":", "kafka_partition", "kafka_offset"))
    ).withColumn("event_ms", F.when(F.col("reason").isNull(), F.unix_millis("event_time")))
    unique = keyed.dropDuplicates(["meter_id", "measurement_type", "series", "event_ms", "dlq_id"])
    pipeline = spec["pipeline"]
    rule = rule_sql(spec)

    def ingest_batch(batch: Any, batch_id: int) -> None:
        batch.persist()
        try:
            started = time.monotonic()
            by_reason = batch.groupBy("reason").count().collect()  # computes (and caches) the micro-batch
            for row in by_reason:
                sinks.counts[f"dlq:{row['reason']}" if row["reason"] else "unique_valid"] += row["count"]
            sinks.seconds["ingest_compute"] += time.monotonic() - started
            started = time.monotonic()
            dead = batch.where("reason IS NOT NULL")
            if any(row["reason"] for row in by_reason):
                dead.select(
                    "key",
                    F.to_json(
                        F.struct(
                            "reason",
                            "detail",
                            "payload",
                            F.col("kafka_partition").alias("source_partition"),
                            F.col("kafka_offset").alias("source_offset"),
                            "ingest_time",
                            F.lit(pipeline).alias("pipeline"),
                        )
                    ).alias("value"),
                ).write.format("kafka").option("kafka.bootstrap.servers", args.bootstrap).option(
                    "topic", args.dlq_topic
                ).save()
            sinks.seconds["kafka_dlq"] += time.monotonic() - started
            readings = batch.where("reason IS NULL").select(
                "meter_id",
                "measurement_type",
                "series",
                "unit",
                "value",
                "event_time",
                "ingest_time",
                "kafka_partition",
                "kafka_offset",
            )
            started = time.monotonic()
            readings.writeTo(table).append()
            sinks.seconds["iceberg"] += time.monotonic() - started
            started = time.monotonic()
            alerts = (
                readings.withColumn("r", F.expr(rule))
                .where("r IS NOT NULL")
                .select(
                    "meter_id",
                    F.col("r.rule").alias("rule"),
                    "series",
                    "event_time",
                    F.col("r.severity").alias("severity"),
                    "measurement_type",
                    "unit",
                    "value",
                    F.col("r.condition").alias("condition"),
                    F.col("r.threshold").alias("threshold"),
                    F.lit(batch_id).cast("long").alias("version"),
                )
                .persist()
            )
            arrow = alerts.toArrow()
            if arrow.num_rows:
                alerts.select(
                    F.to_json(F.struct("meter_id", "rule", "series", "event_time")).alias("key"),
                    F.to_json(F.struct(*[c for c in alerts.columns if c != "version"])).alias("value"),
                ).write.format("kafka").option("kafka.bootstrap.servers", args.bootstrap).option(
                    "topic", args.alerts_topic
                ).save()
                for rule_name in arrow.column("rule").to_pylist():
                    sinks.counts[f"alerts:{rule_name}"] += 1
            sinks.counts["alert_rows"] += arrow.num_rows
            sinks.insert("alerts", arrow)
            alerts.unpersist()
            sinks.seconds["alerts"] += time.monotonic() - started
        finally:
            batch.unpersist()

    # --- the windows query: register steps, windows
    valid = (
        source().where("reason IS NULL").select("meter_id", "measurement_type", "series", "unit", "value", "event_time")
    )
    on_time = valid.withWatermark("event_time", grace).dropDuplicatesWithinWatermark(
        ["meter_id", "measurement_type", "series", "event_time"]
    )
    stepped = on_time.groupBy("meter_id", "measurement_type", "series").applyInPandasWithState(
        register_steps(spec),
        outputStructType="meter_id STRING, measurement_type STRING, series STRING, unit STRING, value DOUBLE, "
        "event_time TIMESTAMP, consumption_part DOUBLE",
        stateStructType="last_event_ms LONG, last_value DOUBLE",
        outputMode="append",
        timeoutConf="NoTimeout",
    )
    windows = (
        stepped.withWatermark("event_time", grace)
        .groupBy(
            F.window("event_time", f"{int(spec['window_ms'])} milliseconds"),
            "meter_id",
            "measurement_type",
            "series",
        )
        .agg(
            F.max("unit").alias("unit"),
            F.count("*").alias("readings"),
            F.sum("value").alias("sum"),
            F.avg("value").alias("avg"),
            F.min("value").alias("min"),
            F.max("value").alias("max"),
            F.stddev_pop("value").alias("stddev"),
            F.sum("consumption_part").alias("consumption"),
        )
        .select(
            "meter_id",
            "measurement_type",
            "series",
            F.col("window.start").alias("window_start"),
            F.col("window.end").alias("window_end"),
            "unit",
            "readings",
            "sum",
            "avg",
            "min",
            "max",
            "stddev",
            "consumption",
        )
    )

    def windows_batch(batch: Any, batch_id: int) -> None:
        rows = batch.withColumn("version", F.lit(batch_id).cast("long")).persist()
        try:
            started = time.monotonic()
            arrow = rows.toArrow()  # computes (and caches) the micro-batch
            sinks.seconds["windows_compute"] += time.monotonic() - started
            started = time.monotonic()
            if arrow.num_rows:
                rows.select(
                    F.to_json(F.struct("meter_id", "measurement_type", "series", "window_start", "window_end")).alias(
                        "key"
                    ),
                    F.to_json(F.struct(*[c for c in rows.columns if c != "version"])).alias("value"),
                ).write.format("kafka").option("kafka.bootstrap.servers", args.bootstrap).option(
                    "topic", args.aggregates_topic
                ).save()
            sinks.seconds["kafka_aggregates"] += time.monotonic() - started
            sinks.counts["window_rows"] += arrow.num_rows
            sinks.insert("readings_agg", arrow)
        finally:
            rows.unpersist()

    started = time.monotonic()
    queries = [
        unique.writeStream.foreachBatch(ingest_batch)
        .option("checkpointLocation", str(out / "checkpoint-ingest"))
        .trigger(availableNow=True)
        .queryName("ingest")
        .start(),
        windows.writeStream.foreachBatch(windows_batch)
        .option("checkpointLocation", str(out / "checkpoint-windows"))
        .outputMode("append")
        .trigger(availableNow=True)
        .queryName("windows")
        .start(),
    ]
    budget_hit = False
    for query in queries:
        if args.max_seconds <= 0:
            query.awaitTermination()
            continue
        remaining = max(1.0, args.max_seconds - (time.monotonic() - started))
        if not query.awaitTermination(remaining):
            budget_hit = True
    if budget_hit:
        for query in queries:
            query.stop()
    seconds = time.monotonic() - started
    progress = {q.name: q.recentProgress for q in queries}
    snapshot = spark.sql(f"SELECT summary FROM {table}.snapshots ORDER BY committed_at DESC LIMIT 1").collect()
    summary = snapshot[0]["summary"] if snapshot else {}
    dropped = sum(
        op.get("numRowsDroppedByWatermark", 0) for p in progress["windows"] for op in p.get("stateOperators", [])[:1]
    )
    result = {
        "session_s": round(session_s, 2),
        "seconds": round(seconds, 2),
        "stopped_at_budget": budget_hit,
        "input_rows_per_query": {name: sum(p["numInputRows"] for p in ps) for name, ps in progress.items()},
        "batches_per_query": {name: len(ps) for name, ps in progress.items()},
        "dlq_by_reason": {k.removeprefix("dlq:"): v for k, v in sorted(sinks.counts.items()) if k.startswith("dlq:")},
        "unique_valid": sinks.counts["unique_valid"],
        "iceberg_rows": spark.table(table).count(),
        "iceberg_snapshot_total_records": int(summary.get("total-records", 0)),
        "iceberg_snapshots": spark.sql(f"SELECT count(*) AS n FROM {table}.snapshots").collect()[0]["n"],
        "window_rows": sinks.counts["window_rows"],
        "windows_late_dropped_by_dedup": dropped,
        "alert_rows": sinks.counts["alert_rows"],
        "alerts_by_rule": {
            k.removeprefix("alerts:"): v for k, v in sorted(sinks.counts.items()) if k.startswith("alerts:")
        },
        "clickhouse_window_rows": sinks.count(f"SELECT count() FROM {namespace}.readings_agg FINAL")[0][0],
        "clickhouse_alert_rows": sinks.count(f"SELECT count() FROM {namespace}.alerts FINAL")[0][0],
        "sink_seconds": {k: round(v, 2) for k, v in sorted(sinks.seconds.items())},
        "spark": spark.version,
    }
    sinks.close()
    spark.stop()
    print("BENCH-RESULT " + json.dumps(result, default=str), flush=True)


if __name__ == "__main__":
    main()
