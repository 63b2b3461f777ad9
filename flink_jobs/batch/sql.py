"""The batch job's Flink SQL, generated from a MeterPipeline spec (pure functions).

One query reads the Iceberg ``readings`` table for a scan window (the days to recompute plus a
margin before them, so the first register step of a day has its predecessor) and returns one
row per meter x measurement x series x local day. The raw readings never leave the JVM; only
these daily rows reach Python (:mod:`flink_jobs.batch.run`).

Semantics, the same as the speed layer's (docs/architecture.md, ``io.meterflow.stream.MeterOperator``):

* **Day** = the calendar day of ``event_time`` in ``spec.timeZone``: the job runs with
  ``table.local-time-zone`` set to it, so ``CAST(event_time AS TIMESTAMP)`` is local wall time.
* **Duplicates**: the first arrival (ingest time, then Kafka partition/offset) of equal
  (meter, measurement, series, event time) is kept — the streaming job's rule, re-applied in
  case a replay after its de-duplication state expired wrote one twice.
* **Registers**: consumption is the step from the previous reading of the same series in
  event-time order, *whatever day it fell on*; :data:`~meterflow.consumption.REGISTER_RESET_RATIO`
  tells a reset from a negative step. The first reading of the scan has no predecessor here
  (``unanchored``): :mod:`flink_jobs.batch.steps` anchors it on the last reading already in
  daily_stats. Interval measurements sum their values; gauges have no consumption.
* **Late readings count**: every reading in the lake is used (the speed layer left ``late``
  ones out of its windows), which is why the batch supersedes the speed layer for closed days.
* **Battery** values are normalised to volts before aggregating (:mod:`flink_jobs.batch.battery`).
"""

from __future__ import annotations

from dataclasses import dataclass

from flink_jobs.batch import battery
from meterflow.consumption import REGISTER_RESET_RATIO
from meterflow.spec.model import MeterPipeline
from meterflow.stack.endpoints import IcebergLocation


def quote(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


DAILY_COLUMNS = (
    "meter_id", "measurement_type", "series", "day", "unit", "kind", "readings", "sum", "avg", "min",
    "max", "consumption", "first_ms", "last_ms", "first_value", "last_value", "unanchored", "resets",
    "negative_steps", "negative_total", "max_gap_ms", "late_readings",
)  # fmt: skip
"""The columns of :func:`daily_query`, in order."""


@dataclass(frozen=True)
class Scan:
    """What one batch query reads: ``[start_ms, end_ms)`` of event time, from one snapshot."""

    start_ms: int
    end_ms: int
    snapshot_id: int | None = None


def kind_case(pipeline: MeterPipeline) -> str:
    """SQL: the kind (interval, register, gauge) of a row's measurement; NULL if not in the spec."""
    branches = " ".join(
        f"WHEN measurement_type = {quote(m.name)} AND series = {quote(m.series)} THEN {quote(m.kind)}"
        for m in pipeline.spec.measurements
    )
    return f"CASE {branches} END"


def level_expression(pipeline: MeterPipeline) -> str:
    """SQL: the value aggregated as avg/min/max — battery readings normalised to volts."""
    batteries = [m for m in pipeline.spec.measurements if battery.is_battery(m.name)]
    if not batteries:
        return "`value`"
    test = " OR ".join(f"(measurement_type = {quote(m.name)} AND series = {quote(m.series)})" for m in batteries)
    return f"CASE WHEN {test} THEN {battery.sql_expression('`value`')} ELSE `value` END"


def register_step(value: str = "`value`", previous: str = "previous") -> str:
    """SQL: the consumption step of a register reading (:mod:`meterflow.consumption`)."""
    return (
        f"CASE WHEN {previous} IS NULL THEN CAST(0 AS DOUBLE) "
        f"WHEN {value} < {previous} AND {value} <= {previous} * {REGISTER_RESET_RATIO!r} THEN {value} "
        f"ELSE {value} - {previous} END"
    )


def source_hint(scan: Scan) -> str:
    """The Iceberg source's dynamic options: the snapshot to read (time travel)."""
    if scan.snapshot_id is None:
        return ""
    return f" /*+ OPTIONS('snapshot-id'='{scan.snapshot_id}') */"


def daily_query(pipeline: MeterPipeline, lake: IcebergLocation, namespace: str, scan: Scan) -> str:
    """The daily rows of ``scan`` (columns :data:`DAILY_COLUMNS`)."""
    table = f"`{lake.catalog_name}`.`{namespace}`.`readings`{source_hint(scan)}"
    start = f"TO_TIMESTAMP_LTZ({scan.start_ms}, 3)"
    end = f"TO_TIMESTAMP_LTZ({scan.end_ms}, 3)"
    # epoch milliseconds without overflow: whole seconds since the scan start, plus the millis
    ms = (
        f"CAST(TIMESTAMPDIFF(SECOND, {start}, event_time) AS BIGINT) * 1000 "
        f"+ CAST(DATE_FORMAT(event_time, 'SSS') AS BIGINT) + {scan.start_ms}"
    )
    ratio = repr(REGISTER_RESET_RATIO)
    backwards = "kind = 'register' AND previous IS NOT NULL AND `value` < previous"
    return f"""SELECT meter_id, measurement_type, series, `day`,
  MAX(unit) AS `unit`,
  MAX(kind) AS `kind`,
  COUNT(*) AS `readings`,
  SUM(`level`) AS `sum`,
  AVG(`level`) AS `avg`,
  MIN(`level`) AS `min`,
  MAX(`level`) AS `max`,
  SUM(consumption_part) AS `consumption`,
  MIN(ms) AS `first_ms`,
  MAX(ms) AS `last_ms`,
  MAX(CASE WHEN previous_day IS NULL OR previous_day <> `day` THEN `value` END) AS `first_value`,
  MAX(CASE WHEN next_day IS NULL OR next_day <> `day` THEN `value` END) AS `last_value`,
  MAX(CASE WHEN previous IS NULL THEN 1 ELSE 0 END) AS `unanchored`,
  SUM(CASE WHEN is_reset THEN 1 ELSE 0 END) AS `resets`,
  SUM(CASE WHEN is_negative THEN 1 ELSE 0 END) AS `negative_steps`,
  SUM(CASE WHEN is_negative THEN consumption_part ELSE CAST(0 AS DOUBLE) END) AS `negative_total`,
  MAX(gap_ms) AS `max_gap_ms`,
  SUM(CASE WHEN late THEN 1 ELSE 0 END) AS `late_readings`
FROM (
  SELECT *,
    CASE WHEN kind = 'register' THEN {register_step()}
         WHEN kind = 'interval' THEN `value` END AS consumption_part,
    COALESCE({backwards} AND `value` <= previous * {ratio}, FALSE) AS is_reset,
    COALESCE({backwards} AND `value` > previous * {ratio}, FALSE) AS is_negative
  FROM (
    SELECT *,
      LAG(`value`) OVER (PARTITION BY meter_id, measurement_type, series ORDER BY ms) AS previous,
      LAG(`day`) OVER (PARTITION BY meter_id, measurement_type, series ORDER BY ms) AS previous_day,
      LEAD(`day`) OVER (PARTITION BY meter_id, measurement_type, series ORDER BY ms) AS next_day
    FROM (
      SELECT *, ms - LAG(ms) OVER (PARTITION BY meter_id ORDER BY ms) AS gap_ms
      FROM (
        SELECT meter_id, measurement_type, series, unit, `value`, kind, late,
          {level_expression(pipeline)} AS `level`,
          CAST(CAST(event_time AS TIMESTAMP(6)) AS DATE) AS `day`,
          {ms} AS ms
        FROM (
          SELECT meter_id, measurement_type, series, unit, `value`, event_time, COALESCE(late, FALSE) AS late,
            {kind_case(pipeline)} AS `kind`,
            ROW_NUMBER() OVER (PARTITION BY meter_id, measurement_type, series, event_time
                               ORDER BY ingest_time, kafka_partition, kafka_offset) AS arrival
          FROM {table}
          WHERE event_time >= {start} AND event_time < {end}
        )
        WHERE arrival = 1 AND kind IS NOT NULL
      )
    )
  )
)
GROUP BY meter_id, measurement_type, series, `day`"""


def job_config(pipeline: MeterPipeline, web_ui_port: str | None = None) -> dict[str, str]:
    """Flink settings of the batch job (batch mode is chosen when the environment is made)."""
    config = {
        "pipeline.name": f"meterflow-batch-{pipeline.name}",
        "parallelism.default": str(pipeline.spec.flink.parallelism),
        # The day of a reading is its calendar day here: CAST(event_time AS TIMESTAMP) is local.
        "table.local-time-zone": pipeline.spec.time_zone,
    }
    if web_ui_port is not None:
        config |= {"rest.bind-port": web_ui_port, "rest.bind-address": "127.0.0.1", "rest.address": "127.0.0.1"}
    return config
