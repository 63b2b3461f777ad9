-- Alerts have a lifecycle: opened, updated (a further breach), escalated, acknowledged, resolved.
-- The streaming job sends every transition with the alert's state after it, un-enriched; the
-- views below keep one row per alert in `alerts` (keyed, as before, by meter, rule, series and
-- the time it opened: a newer transition replaces the row) labelled with its meter's metadata,
-- and every transition in `alert_events`. `alerts_active` is the open ones.
-- Statements end with a line holding only ';'.

ALTER TABLE {db}.alerts
    ADD COLUMN IF NOT EXISTS alert_id String DEFAULT '',
    ADD COLUMN IF NOT EXISTS kind LowCardinality(String) DEFAULT 'threshold',
    ADD COLUMN IF NOT EXISTS state LowCardinality(String) DEFAULT 'RESOLVED',
    ADD COLUMN IF NOT EXISTS last_seen DateTime64(3, 'UTC') DEFAULT event_time,
    ADD COLUMN IF NOT EXISTS resolved_at Nullable(DateTime64(3, 'UTC')),
    ADD COLUMN IF NOT EXISTS breaches UInt64 DEFAULT 1,
    ADD COLUMN IF NOT EXISTS last_value Float64 DEFAULT value,
    ADD COLUMN IF NOT EXISTS peak_value Float64 DEFAULT value,
    ADD COLUMN IF NOT EXISTS escalated UInt8 DEFAULT 0,
    ADD COLUMN IF NOT EXISTS acknowledged_by String DEFAULT '',
    ADD COLUMN IF NOT EXISTS acknowledged_at Nullable(DateTime64(3, 'UTC')),
    ADD COLUMN IF NOT EXISTS detail String DEFAULT ''
;

CREATE TABLE IF NOT EXISTS {db}.alert_transitions_queue
(
    alert_id         String,
    transition       String,
    at               DateTime64(3, 'UTC'),
    meter_id         String,
    rule             String,
    kind             String,
    series           String,
    measurement_type String,
    unit             String,
    severity         String,
    state            String,
    event_time       DateTime64(3, 'UTC'),
    last_seen        DateTime64(3, 'UTC'),
    resolved_at      Nullable(DateTime64(3, 'UTC')),
    breaches         UInt64,
    value            Float64,
    transition_value Float64,
    last_value       Float64,
    peak_value       Float64,
    condition        String,
    threshold        Float64,
    escalated        UInt8,
    acknowledged_by  String,
    acknowledged_at  Nullable(DateTime64(3, 'UTC')),
    by               String,
    detail           String,
    version          UInt64
)
ENGINE = Null
;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.alerts_from_transitions TO {db}.alerts AS
SELECT
    q.rule AS rule, q.severity AS severity, q.meter_id AS meter_id, q.measurement_type AS measurement_type,
    q.series AS series, q.unit AS unit, q.value AS value, q.condition AS condition, q.threshold AS threshold,
    q.event_time AS event_time,
    if(m.known, m.meter_type, 'unknown') AS meter_type,
    if(m.known, m.suburb, 'unknown')     AS suburb,
    if(m.known, m.postcode, 'unknown')   AS postcode,
    if(m.known, m.usage_type, 'unknown') AS usage_type,
    q.version AS version, toUInt8(0) AS is_deleted,
    q.alert_id AS alert_id, q.kind AS kind, q.state AS state, q.last_seen AS last_seen, q.resolved_at AS resolved_at,
    q.breaches AS breaches, q.last_value AS last_value, q.peak_value AS peak_value, q.escalated AS escalated,
    q.acknowledged_by AS acknowledged_by, q.acknowledged_at AS acknowledged_at, q.detail AS detail
FROM {db}.alert_transitions_queue AS q
LEFT JOIN
(
    SELECT meter_id, meter_type, suburb, postcode, usage_type, 1 AS known
    FROM {db}.meters FINAL
) AS m ON q.meter_id = m.meter_id
;

-- Every transition of every alert; a replay writes the same (alert, time, transition) again.
CREATE TABLE IF NOT EXISTS {db}.alert_events
(
    alert_id   String,
    transition LowCardinality(String),
    at         DateTime64(3, 'UTC'),
    meter_id   String,
    rule       LowCardinality(String),
    kind       LowCardinality(String),
    series     LowCardinality(String),
    severity   LowCardinality(String),
    state      LowCardinality(String),
    value      Float64 COMMENT 'the value that made the transition: the reading, the interval''s flow ...',
    breaches   UInt64,
    by         String COMMENT 'who acknowledged or resolved it by hand',
    detail     String,
    version    UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(at)
ORDER BY (alert_id, at, transition)
;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.alert_events_from_transitions TO {db}.alert_events AS
SELECT alert_id, transition, at, meter_id, rule, kind, series, severity, state, transition_value AS value,
    breaches, by, detail, version
FROM {db}.alert_transitions_queue
;

CREATE VIEW IF NOT EXISTS {db}.alerts_active AS
SELECT * FROM {db}.alerts FINAL WHERE state = 'OPEN'
;
