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
