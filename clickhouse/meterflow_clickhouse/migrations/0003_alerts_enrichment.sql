-- Alerts arrive un-enriched from the streaming job's JVM operators, like window results: this
-- view labels each with its meter's metadata on the way into `alerts` (an unknown meter is kept
-- and labelled 'unknown'). Statements end with a line holding only ';'.

CREATE TABLE IF NOT EXISTS {db}.alerts_queue
(
    rule             String,
    severity         String,
    meter_id         String,
    measurement_type String,
    series           String,
    unit             String,
    value            Float64,
    condition        String,
    threshold        Float64,
    event_time       DateTime64(3, 'UTC'),
    version          UInt64,
    is_deleted       UInt8 DEFAULT 0
)
ENGINE = Null
;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.alerts_enrich TO {db}.alerts AS
SELECT
    q.rule AS rule, q.severity AS severity, q.meter_id AS meter_id, q.measurement_type AS measurement_type,
    q.series AS series, q.unit AS unit, q.value AS value, q.condition AS condition, q.threshold AS threshold,
    q.event_time AS event_time,
    if(m.known, m.meter_type, 'unknown') AS meter_type,
    if(m.known, m.suburb, 'unknown')     AS suburb,
    if(m.known, m.postcode, 'unknown')   AS postcode,
    if(m.known, m.usage_type, 'unknown') AS usage_type,
    q.version AS version, q.is_deleted AS is_deleted
FROM {db}.alerts_queue AS q
LEFT JOIN
(
    SELECT meter_id, meter_type, suburb, postcode, usage_type, 1 AS known
    FROM {db}.meters FINAL
) AS m ON q.meter_id = m.meter_id
;
