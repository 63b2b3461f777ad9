-- Dead letters, queryable: the serving sink copies <name>.readings.dlq here (one JSON object a
-- record, the Kafka offset of the dead letter appended as version, and its own partition and
-- offset as dlq_partition / dlq_offset), so what was refused can be counted per meter and day:
--   SELECT meter_id, toDate32(coalesce(event_time, ingest_time), '<zone>') AS day, count()
--   FROM dead_letters FINAL WHERE meter_id != '' GROUP BY meter_id, day
-- meter_id is '' when the record names no valid meter id (nor does its Kafka key); event_time is
-- NULL when it names no instant (then the day of arrival is the nearest there is).
--
-- The key is where the refused record was: source 'kafka' (the streaming job) names the
-- partition and offset of <name>.readings it read, so a replay of the job refuses the same record
-- into the same row. Source 'mqtt' (the bridge) has no readings record; its dead letter's own
-- place in <name>.readings.dlq is the first Kafka position it has, unique and the same every time
-- the sink re-reads the topic, so its source_partition / source_offset default to that. (A content
-- key, payload_sha256 and ingest_time, would merge two equal messages taken in the same
-- millisecond, and be no better against the bridge's redeliveries: a message redelivered after a
-- bridge restart is a second dead letter with a later ingest_time either way.)
-- Statements end with a line holding only ';'.

CREATE TABLE IF NOT EXISTS {db}.dead_letters
(
    source            LowCardinality(String) COMMENT 'kafka: the streaming job; mqtt: the MQTT bridge',
    dlq_partition     Int32 DEFAULT -1 COMMENT 'where the dead letter itself is in <name>.readings.dlq (the sink adds it)',
    dlq_offset        Int64 DEFAULT -1,
    source_partition  Int32 DEFAULT if(source = 'mqtt', dlq_partition, -1)
                      COMMENT 'kafka: the partition of <name>.readings the record was in; mqtt: dlq_partition',
    source_offset     Int64 DEFAULT if(source = 'mqtt', dlq_offset, -1)
                      COMMENT 'kafka: the offset of the record in <name>.readings; mqtt: dlq_offset',
    reason            LowCardinality(String),
    detail            String,
    meter_id          String COMMENT 'the meter id the record names, else its Kafka key (mqtt: the topic meter); empty if none',
    event_time        Nullable(DateTime64(3, 'UTC')) COMMENT 'the instant the record names (1900 to 2299); NULL if none',
    ingest_time       DateTime64(3, 'UTC') COMMENT 'when it was taken in: the Kafka record timestamp (mqtt: the bridge clock)',
    payload           String COMMENT 'the first 16 KiB of the original, as text or base64 (payload_encoding)',
    payload_encoding  LowCardinality(String),
    payload_bytes     UInt32,
    payload_sha256    String,
    payload_truncated UInt8,
    mqtt_topic        String DEFAULT '',
    version           UInt64,
    is_deleted        UInt8 DEFAULT 0
)
ENGINE = ReplacingMergeTree(version, is_deleted)
PARTITION BY toYYYYMM(ingest_time)
ORDER BY (source, source_partition, source_offset)
;
