-- Meter health: one data-quality score (0-100) per meter and local day, with its components
-- (written by flink_jobs.batch.health; docs/health.md says how each is measured and weighed).
-- Like daily_stats, a batch run replaces the days it recomputes (REPLACE PARTITION by month), so
-- a re-run writes the same rows. Statements end with a line holding only ';'.

CREATE TABLE IF NOT EXISTS {db}.meter_health
(
    day               Date COMMENT 'calendar day in spec.timeZone',
    meter_id          String,
    score             Float64 COMMENT '0 (no usable data) .. 100: the weighted mean of the components with evidence',
    completeness      Nullable(Float64) COMMENT 'readings / expected_readings, at most 1 (NULL: nothing was expected)',
    readings          UInt32 COMMENT 'valid readings of the day, duplicates not counted',
    expected_readings Float64 COMMENT 'from each series'' interval over the part of the day the meter owed readings',
    longest_silence_h Float64 COMMENT 'longest time without a reading touching the day (as NO_DATA measures it)',
    duplicates        UInt32 COMMENT 'copies of a reading (same measurement and instant) dropped',
    late_readings     UInt32 COMMENT 'readings that arrived after their windows closed',
    dead_letters      UInt32 COMMENT 'records of this meter sent to the dead-letter topic (by event day, else arrival day)',
    clock_ahead       UInt32 COMMENT 'readings stamped more than 60 s after their arrival (a clock ahead)',
    max_clock_ahead_s Nullable(Float64) COMMENT 'the most a reading was ahead of its arrival, when over 60 s',
    stuck_series      UInt16 COMMENT 'series whose value stayed unchanged for at least a stuck rule''s for',
    reason            String COMMENT 'what lowered the score, worst first (empty at 100)',
    meter_type        LowCardinality(String),
    suburb            LowCardinality(String),
    postcode          LowCardinality(String),
    usage_type        LowCardinality(String)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, meter_id)
;
