package io.meterflow.udf;

import java.time.Instant;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * {@code reading_event_time(payload)}: the reading's instant, for the source's watermark.
 *
 * <p>A rowtime attribute must be a column of the source table, so the source computes it from
 * the raw payload with this cheap scan (it stops at the timestamp field). Null when absent.
 */
public class ReadingEventTime extends ScalarFunction {

    public @DataTypeHint("TIMESTAMP_LTZ(3)") Instant eval(String payload) {
        return ReadingParser.eventTime(payload);
    }
}
