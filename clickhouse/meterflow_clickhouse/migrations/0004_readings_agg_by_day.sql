-- readings_agg partitioned by day (UTC) instead of by month. The serving views read the speed
-- layer only from the first day the batch has not recomputed (views/serving.sql), and a day
-- partition is what a scan can skip: a month partition's merged part spans every day of it, so
-- one un-recomputed day meant reading and merging (FINAL) the whole month.
-- ClickHouse cannot change a table's partition key. An empty table partitioned by day takes the
-- name first (EXCHANGE, atomic; readings_agg_swap then holds the old rows), so a sink writing
-- meanwhile writes into it (readings_agg_enrich writes to the table by name); then the old rows
-- are copied in (versions decide between a copied row and a newer one, as for any re-written
-- window) and the old table is dropped. During the copy a dashboard sees the older windows
-- arrive. Every step can run again after a failure without losing a row (at worst the table
-- stays by month). A readings_agg dropped later is re-created by 0001, by month: still exact,
-- only slower. Statements end with a line holding only ';'.

CREATE TABLE IF NOT EXISTS {db}.readings_agg_swap AS {db}.readings_agg
ENGINE = ReplacingMergeTree(version, is_deleted)
PARTITION BY toDate(window_start)
ORDER BY (meter_id, measurement_type, series, window_start, window_end)
;

EXCHANGE TABLES {db}.readings_agg AND {db}.readings_agg_swap
;

INSERT INTO {db}.readings_agg SELECT * FROM {db}.readings_agg_swap
;

DROP TABLE {db}.readings_agg_swap
;
