-- The speed layer's serving tables. Keyed for idempotent replacement: a replay or a restart
-- writes the same key again with a version (the Kafka offset of the result record), and
-- ReplacingMergeTree keeps the newest; is_deleted = 1 retracts a key. Read them with FINAL.
-- Statements end with a line holding only ';'.

CREATE TABLE IF NOT EXISTS {db}.readings_agg
(
    meter_id         String,
    measurement_type LowCardinality(String),
    series           LowCardinality(String),
    unit             LowCardinality(String),
    window_start     DateTime64(3, 'UTC'),
    window_end       DateTime64(3, 'UTC'),
    readings         UInt64,
    sum              Float64,
    avg              Float64,
    min              Float64,
    max              Float64,
    stddev           Float64,
    consumption      Nullable(Float64) COMMENT 'interval: sum, register: the delta (resets handled), gauge: NULL',
    meter_type       LowCardinality(String),
    suburb           LowCardinality(String),
    postcode         LowCardinality(String),
    usage_type       LowCardinality(String),
    version          UInt64,
    is_deleted       UInt8 DEFAULT 0
)
ENGINE = ReplacingMergeTree(version, is_deleted)
PARTITION BY toYYYYMM(window_start)
ORDER BY (meter_id, measurement_type, series, window_start, window_end)
;

-- Meter metadata (from the compacted <name>.meters topic), newest version per meter.
CREATE TABLE IF NOT EXISTS {db}.meters
(
    meter_id   String,
    meter_type LowCardinality(String),
    suburb     LowCardinality(String),
    postcode   LowCardinality(String),
    usage_type LowCardinality(String),
    version    UInt64,
    is_deleted UInt8 DEFAULT 0
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY meter_id
;

-- Window results arrive here un-enriched (as many as readings when windows are shorter than the
-- reporting interval); the view below labels them with their meter's metadata on the way into
-- readings_agg. An unknown meter is kept and labelled 'unknown'.
CREATE TABLE IF NOT EXISTS {db}.readings_agg_queue
(
    meter_id         String,
    measurement_type String,
    series           String,
    unit             String,
    window_start     DateTime64(3, 'UTC'),
    window_end       DateTime64(3, 'UTC'),
    readings         UInt64,
    sum              Float64,
    avg              Float64,
    min              Float64,
    max              Float64,
    stddev           Float64,
    consumption      Nullable(Float64),
    version          UInt64,
    is_deleted       UInt8 DEFAULT 0
)
ENGINE = Null
;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.readings_agg_enrich TO {db}.readings_agg AS
SELECT
    q.meter_id AS meter_id, q.measurement_type AS measurement_type, q.series AS series, q.unit AS unit,
    q.window_start AS window_start, q.window_end AS window_end, q.readings AS readings, q.sum AS sum,
    q.avg AS avg, q.min AS min, q.max AS max, q.stddev AS stddev, q.consumption AS consumption,
    if(m.known, m.meter_type, 'unknown') AS meter_type,
    if(m.known, m.suburb, 'unknown')     AS suburb,
    if(m.known, m.postcode, 'unknown')   AS postcode,
    if(m.known, m.usage_type, 'unknown') AS usage_type,
    q.version AS version, q.is_deleted AS is_deleted
FROM {db}.readings_agg_queue AS q
LEFT JOIN
(
    SELECT meter_id, meter_type, suburb, postcode, usage_type, 1 AS known
    FROM {db}.meters FINAL
) AS m ON q.meter_id = m.meter_id
;

CREATE TABLE IF NOT EXISTS {db}.alerts
(
    rule             LowCardinality(String),
    severity         LowCardinality(String),
    meter_id         String,
    measurement_type LowCardinality(String),
    series           LowCardinality(String),
    unit             LowCardinality(String),
    value            Float64,
    condition        LowCardinality(String),
    threshold        Float64,
    event_time       DateTime64(3, 'UTC'),
    meter_type       LowCardinality(String),
    suburb           LowCardinality(String),
    postcode         LowCardinality(String),
    usage_type       LowCardinality(String),
    version          UInt64,
    is_deleted       UInt8 DEFAULT 0
)
ENGINE = ReplacingMergeTree(version, is_deleted)
PARTITION BY toYYYYMM(event_time)
ORDER BY (meter_id, rule, series, event_time)
;

-- Ingest counters per minute of arrival (the Kafka record timestamp): valid, on_time, late and
-- one dlq:<reason> row per dead-letter reason. in = valid + dlq; duplicates = valid - on_time - late.
CREATE TABLE IF NOT EXISTS {db}.ingest_counters
(
    minute     DateTime('UTC'),
    counter    LowCardinality(String),
    value      UInt64,
    version    UInt64,
    is_deleted UInt8 DEFAULT 0
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (minute, counter)
;

CREATE VIEW IF NOT EXISTS {db}.ingest_totals AS
SELECT
    sumIf(value, counter = 'valid') + sumIf(value, startsWith(counter, 'dlq:')) AS in_total,
    sumIf(value, counter = 'valid')                                             AS valid,
    sumIf(value, startsWith(counter, 'dlq:'))                                   AS dlq,
    sumIf(value, counter = 'on_time')                                           AS on_time,
    sumIf(value, counter = 'late')                                              AS late,
    sumIf(value, counter = 'valid') - sumIf(value, counter IN ('on_time', 'late')) AS duplicates
FROM {db}.ingest_counters FINAL
;
