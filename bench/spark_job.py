"""The Spark Structured Streaming peer (seed 000's speed layer), run by the bench virtualenv's Python.

Standalone on purpose (pyspark is not a meterflow dependency): reads the readings topic from the
earliest offset with ``Trigger.AvailableNow``, parses the JSON, 5-minute tumbling windows per meter
and measurement with a watermark (count, sum, avg, min, max, stddev) and the three threshold
alerts (HIGH_FLOW Pulse1 > 500, LOW_BATTERY Battery < 3.0, HIGH_TEMPERATURE DeviceTemperature > 50),
both written as Parquet. Prints one JSON line with its figures.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--jars", required=True)
    parser.add_argument("--max-offsets", type=int, default=500_000)
    parser.add_argument("--shuffle-partitions", type=int, default=2)
    args = parser.parse_args()

    t0 = time.monotonic()
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F  # noqa: N812 - pyspark's convention
    from pyspark.sql import types as T  # noqa: N812

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("meterflow-bench-spark-peer")
        .config("spark.jars", args.jars)
        .config("spark.sql.shuffle.partitions", str(args.shuffle_partitions))
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.streaming.numRecentProgressUpdates", "1000")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("WARN")
    session_s = time.monotonic() - t0
    out = Path(args.out)
    schema = T.StructType(
        [
            T.StructField("meter_id", T.StringType()),
            T.StructField("timestamp", T.StringType()),
            T.StructField("measurement_type", T.StringType()),
            T.StructField("series", T.StringType()),
            T.StructField("unit", T.StringType()),
            T.StructField("value", T.DoubleType()),
        ]
    )

    def source() -> Any:
        raw = (
            spark.readStream.format("kafka")
            .option("kafka.bootstrap.servers", args.bootstrap)
            .option("subscribe", args.topic)
            .option("startingOffsets", "earliest")
            .option("maxOffsetsPerTrigger", str(args.max_offsets))
            .option("failOnDataLoss", "false")
            .load()
        )
        parsed = raw.select(F.from_json(F.col("value").cast("string"), schema).alias("r")).select("r.*")
        parsed = parsed.withColumn("event_time", F.try_to_timestamp("timestamp", F.lit("yyyy-MM-dd'T'HH:mm:ss.SSSXXX")))
        return parsed.where(
            F.col("event_time").isNotNull() & F.col("meter_id").isNotNull() & F.col("value").isNotNull()
        )

    windows = (
        source()
        .withWatermark("event_time", "60 seconds")
        .groupBy(F.window("event_time", "5 minutes"), "meter_id", "measurement_type", "series")
        .agg(
            F.count("*").alias("readings"),
            F.sum("value").alias("sum"),
            F.avg("value").alias("avg"),
            F.min("value").alias("min"),
            F.max("value").alias("max"),
            F.stddev_pop("value").alias("stddev"),
        )
        .select(F.col("window.start").alias("window_start"), F.col("window.end").alias("window_end"), "*")
        .drop("window")
    )
    mt, value = F.col("measurement_type"), F.col("value")
    rule = (
        F.when((mt == "Pulse1") & (value > 500), "HIGH_FLOW")
        .when((mt == "Battery") & (value < 3.0), "LOW_BATTERY")
        .when((mt == "DeviceTemperature") & (value > 50), "HIGH_TEMPERATURE")
    )
    alerts = source().withColumn("rule", rule).where(F.col("rule").isNotNull())

    started = time.monotonic()
    queries = [
        frame.writeStream.format("parquet")
        .option("path", str(out / name))
        .option("checkpointLocation", str(out / f"checkpoint-{name}"))
        .outputMode("append")
        .trigger(availableNow=True)
        .start()
        for name, frame in (("windows", windows), ("alerts", alerts))
    ]
    for query in queries:
        query.awaitTermination()
    seconds = time.monotonic() - started
    inputs = [sum(p["numInputRows"] for p in q.recentProgress) for q in queries]
    batches = [len(q.recentProgress) for q in queries]
    result = {
        "session_s": round(session_s, 2),
        "seconds": round(seconds, 2),
        "input_rows_per_query": inputs,
        "batches_per_query": batches,
        "window_rows": spark.read.parquet(str(out / "windows")).count(),
        "alert_rows": spark.read.parquet(str(out / "alerts")).count(),
        "spark": spark.version,
    }
    spark.stop()
    print("BENCH-RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
