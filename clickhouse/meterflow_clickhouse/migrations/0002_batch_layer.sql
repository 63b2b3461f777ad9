-- The batch layer's tables (written by flink_jobs.batch; see docs/batch.md).
-- daily_stats, monthly_stats and problem_meters are plain MergeTrees partitioned by month: a
-- batch run rebuilds each month it touches in a staging table (the month's other days copied,
-- the recomputed days new) and swaps it in with ALTER TABLE ... REPLACE PARTITION, so exactly
-- the recomputed days change, atomically, and a re-run writes the same rows again.
-- Days are calendar days in the pipeline's spec.timeZone. Statements end with a line holding only ';'.

CREATE TABLE IF NOT EXISTS {db}.daily_stats
(
    day              Date COMMENT 'calendar day in spec.timeZone',
    meter_id         String,
    measurement_type LowCardinality(String),
    series           LowCardinality(String),
    unit             LowCardinality(String),
    kind             LowCardinality(String) COMMENT 'interval, register or gauge',
    readings         UInt32,
    sum              Float64 COMMENT 'sum of the values (battery: normalised volts)',
    avg              Float64,
    min              Float64,
    max              Float64,
    consumption      Nullable(Float64) COMMENT 'interval: sum; register: steps from the previous reading, resets handled; gauge: NULL',
    first_time       DateTime64(3, 'UTC'),
    last_time        DateTime64(3, 'UTC'),
    first_value      Float64 COMMENT 'raw value of the first reading of the day',
    last_value       Float64 COMMENT 'raw value of the last reading of the day (anchors the next register step)',
    resets           UInt32 COMMENT 'register resets (fall to <= 10% of the previous value)',
    negative_steps   UInt32 COMMENT 'register steps below zero that are not resets',
    negative_total   Float64,
    late_readings    UInt32 COMMENT 'readings the speed layer classified late (kept out of its windows)',
    meter_type       LowCardinality(String),
    suburb           LowCardinality(String),
    postcode         LowCardinality(String),
    usage_type       LowCardinality(String)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, meter_id, measurement_type, series)
;

CREATE TABLE IF NOT EXISTS {db}.monthly_stats
(
    month                 Date COMMENT 'first day of the month in spec.timeZone',
    meter_id              String,
    measurement_type      LowCardinality(String),
    series                LowCardinality(String),
    unit                  LowCardinality(String),
    kind                  LowCardinality(String),
    readings              UInt64,
    days_active           UInt16 COMMENT 'days of the month with at least one reading',
    days_recomputed       UInt16 COMMENT 'days of the month the batch has recomputed (complete when = days in month)',
    consumption           Nullable(Float64) COMMENT 'total of the daily consumption',
    avg_daily_consumption Nullable(Float64) COMMENT 'consumption / days_active',
    max_daily_consumption Nullable(Float64),
    avg                   Float64,
    min                   Float64,
    max                   Float64,
    resets                UInt32,
    negative_steps        UInt32,
    late_readings         UInt32,
    meter_type            LowCardinality(String),
    suburb                LowCardinality(String),
    postcode              LowCardinality(String),
    usage_type            LowCardinality(String)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(month)
ORDER BY (month, meter_id, measurement_type, series)
;

CREATE TABLE IF NOT EXISTS {db}.problem_meters
(
    day              Date,
    meter_id         String,
    rule             LowCardinality(String),
    severity         LowCardinality(String),
    measurement_type LowCardinality(String) COMMENT 'empty for rules on the whole meter (NO_DATA)',
    series           LowCardinality(String),
    value            Nullable(Float64) COMMENT 'what was measured (consumption, volts, hours, count)',
    threshold        Nullable(Float64) COMMENT 'what it was compared with',
    reason           String,
    meter_type       LowCardinality(String),
    suburb           LowCardinality(String),
    postcode         LowCardinality(String),
    usage_type       LowCardinality(String)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, meter_id, rule, measurement_type, series)
;

-- Which days the batch has recomputed, and from which Iceberg snapshot: the serving views show
-- batch figures for these days and speed-layer figures for every other day.
CREATE TABLE IF NOT EXISTS {db}.batch_days
(
    day           Date,
    run_id        String,
    snapshot_id   Int64 COMMENT '0 when the lake had no snapshot',
    snapshot_time DateTime64(3, 'UTC'),
    computed_at   DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(computed_at)
ORDER BY day
;

CREATE TABLE IF NOT EXISTS {db}.batch_runs
(
    run_id            String,
    started_at        DateTime64(3, 'UTC'),
    finished_at       DateTime64(3, 'UTC'),
    day_from          Nullable(Date),
    day_to            Nullable(Date),
    as_of             String COMMENT 'the --as-of given, empty for the current snapshot',
    snapshot_id       Int64,
    snapshot_time     DateTime64(3, 'UTC'),
    readings          UInt64,
    daily_rows        UInt64,
    monthly_rows      UInt64,
    problem_rows      UInt64,
    flink_seconds     Float64,
    seconds           Float64,
    expired_snapshots UInt32,
    status            LowCardinality(String),
    message           String
)
ENGINE = MergeTree
ORDER BY started_at
;

-- Meter metadata: the `meters` table of 0001, filled by the serving sink and refreshed by each
-- batch run from the compacted <name>.meters topic.

-- Rollups per suburb and per usage type (meters without metadata are labelled 'unknown').
CREATE VIEW IF NOT EXISTS {db}.daily_by_suburb AS
SELECT day, suburb, measurement_type, series, any(unit) AS unit, any(kind) AS kind,
       uniqExact(meter_id) AS meters, sum(readings) AS readings, sum(consumption) AS total_consumption,
       avg(consumption) AS avg_consumption_per_meter, max(consumption) AS max_consumption_per_meter
FROM {db}.daily_stats
GROUP BY day, suburb, measurement_type, series
;

CREATE VIEW IF NOT EXISTS {db}.daily_by_usage_type AS
SELECT day, usage_type, measurement_type, series, any(unit) AS unit, any(kind) AS kind,
       uniqExact(meter_id) AS meters, sum(readings) AS readings, sum(consumption) AS total_consumption,
       avg(consumption) AS avg_consumption_per_meter, max(consumption) AS max_consumption_per_meter
FROM {db}.daily_stats
GROUP BY day, usage_type, measurement_type, series
;

CREATE VIEW IF NOT EXISTS {db}.monthly_by_suburb AS
SELECT month, suburb, measurement_type, series, any(unit) AS unit, any(kind) AS kind,
       uniqExact(meter_id) AS meters, sum(readings) AS readings, sum(consumption) AS total_consumption,
       avg(consumption) AS avg_consumption_per_meter, max(consumption) AS max_consumption_per_meter
FROM {db}.monthly_stats
GROUP BY month, suburb, measurement_type, series
;

CREATE VIEW IF NOT EXISTS {db}.monthly_by_usage_type AS
SELECT month, usage_type, measurement_type, series, any(unit) AS unit, any(kind) AS kind,
       uniqExact(meter_id) AS meters, sum(readings) AS readings, sum(consumption) AS total_consumption,
       avg(consumption) AS avg_consumption_per_meter, max(consumption) AS max_consumption_per_meter
FROM {db}.monthly_stats
GROUP BY month, usage_type, measurement_type, series
;
