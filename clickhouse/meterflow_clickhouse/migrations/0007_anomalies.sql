-- Anomaly verdicts: one row per meter and closed window scored by the pipeline's Isolation Forest
-- (docs/anomalies.md). The serving sink writes them as the speed layer's windows close (layer
-- 'speed'); a batch run re-scores the windows of the days it recomputes from the lake (layer
-- 'batch') and replaces those days (REPLACE PARTITION by month, as daily_stats). version is
-- model_version x 2, plus 1 for the batch: a newer model's verdict replaces an older one's, and the
-- batch's the speed layer's of the same model. Read with FINAL. Statements end with a line
-- holding only ';'.

CREATE TABLE IF NOT EXISTS {db}.anomalies
(
    day           Date COMMENT 'the window start''s calendar day in spec.timeZone',
    meter_id      String,
    window_start  DateTime64(3, 'UTC'),
    window_end    DateTime64(3, 'UTC'),
    layer         LowCardinality(String) COMMENT 'speed (as the window closed) or batch (re-scored from the lake)',
    model_version UInt32,
    score         Float64 COMMENT 'the forest''s decision function: below 0 is anomalous, the lower the more',
    anomalous     UInt8,
    detail        String COMMENT 'anomalous windows: the feature furthest outside its training range',
    version       UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(day)
ORDER BY (meter_id, window_start)
;
