-- The serving views: one query for a dashboard whatever the day, and the drift report.
-- Rendered by meterflow_clickhouse.views with the pipeline's values and re-created (CREATE OR
-- REPLACE) whenever a batch, export or report runs: {db} is the database, {time_zone} the
-- pipeline's spec.timeZone (ClickHouse needs a constant time zone, so it is baked in here),
-- {kind} an expression giving the kind (interval, register, gauge, power) of measurement_type/series,
-- {consumption_unit} one giving the unit its consumption is in (a power's kW: kWh; NULL for a gauge).
-- Statements end with a line holding only ';'.

-- The speed layer per local day: readings_agg windows are UTC instants, grouped by the calendar
-- day of their start in the pipeline's time zone. Hopping windows overlap, so only the windows
-- starting on a multiple of their size (a tumbling cover of time) are added up.
CREATE OR REPLACE VIEW {db}.speed_daily AS
SELECT
    toDate(a.window_start, '{time_zone}')  AS day,
    a.meter_id                             AS meter_id,
    a.measurement_type                     AS measurement_type,
    a.series                               AS series,
    any(a.unit)                            AS unit,
    sum(a.readings)                        AS readings,
    sum(a.consumption)                     AS consumption,
    sum(a.sum) / sum(a.readings)           AS avg,
    min(a.min)                             AS min,
    max(a.max)                             AS max,
    any(a.meter_type)                      AS meter_type,
    any(a.suburb)                          AS suburb,
    any(a.postcode)                        AS postcode,
    any(a.usage_type)                      AS usage_type
FROM {db}.readings_agg AS a FINAL
WHERE toUnixTimestamp64Milli(a.window_start) % greatest(dateDiff('millisecond', a.window_start, a.window_end), 1) = 0
GROUP BY day, meter_id, measurement_type, series
;

-- Batch figures for the days the batch has recomputed, speed-layer figures for every other day.
-- unit is the values' (avg, min, max); consumption_unit the consumption's (kW values: kWh).
-- The speed branch also starts at the first day of readings_agg the batch has not recomputed (or
-- the day after its last): the answer is the same, but the bound reaches the scan as a range of
-- window_start, so readings_agg's day partitions before it are skipped instead of read, merged
-- (FINAL) and grouped only to be dropped. Once the batch has caught up, the speed branch reads
-- only the days since.
CREATE OR REPLACE VIEW {db}.consumption_daily AS
SELECT day, meter_id, measurement_type, series, unit, kind, toUInt64(readings) AS readings, consumption,
       avg, min, max, meter_type, suburb, postcode, usage_type, 'batch' AS source,
       {consumption_unit} AS consumption_unit
FROM {db}.daily_stats
UNION ALL
SELECT day, meter_id, measurement_type, series, unit, {kind} AS kind, toUInt64(readings) AS readings, consumption,
       avg, min, max, meter_type, suburb, postcode, usage_type, 'speed' AS source,
       {consumption_unit} AS consumption_unit
FROM {db}.speed_daily
WHERE day NOT IN (SELECT day FROM {db}.batch_days)
  AND day >= (
      WITH (SELECT groupArray(day) FROM {db}.batch_days) AS recomputed
      SELECT arrayMin(arrayConcat(
                 arrayFilter(d -> NOT has(recomputed, d), arrayMap(i -> first + i, range(toUInt32(last - first) + 1))),
                 [last + 1]))
      FROM (SELECT toDate(min(window_start), '{time_zone}') AS first, toDate(max(window_start), '{time_zone}') AS last
            FROM {db}.readings_agg)
  )
;

-- Per recomputed day, meter and measurement: speed minus batch. Zero where the speed layer saw
-- every reading the lake holds; a late reading (kept out of the speed windows, counted by the
-- batch) shows up as a negative drift on its day. Rounded to 6 decimals (the two layers add the
-- same values in a different order).
CREATE OR REPLACE VIEW {db}.speed_vs_batch AS
SELECT
    day,
    meter_id,
    measurement_type,
    series,
    {kind}                                                             AS kind,
    speed_readings,
    batch_readings,
    speed_readings - batch_readings                                    AS readings_drift,
    speed_consumption,
    batch_consumption,
    if({kind} = 'gauge', NULL,
       round(ifNull(speed_consumption, 0) - ifNull(batch_consumption, 0), 6)) AS drift,
    late_readings
FROM
(
    SELECT day, meter_id, measurement_type, series, toInt64(readings) AS batch_readings,
           consumption AS batch_consumption, late_readings
    FROM {db}.daily_stats
) AS b
FULL OUTER JOIN
(
    SELECT day, meter_id, measurement_type, series, toInt64(readings) AS speed_readings,
           consumption AS speed_consumption
    FROM {db}.speed_daily
    WHERE day IN (SELECT day FROM {db}.batch_days)
) AS s
USING (day, meter_id, measurement_type, series)
;
