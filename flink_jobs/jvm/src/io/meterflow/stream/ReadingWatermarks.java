package io.meterflow.stream;

import org.apache.flink.api.common.eventtime.Watermark;
import org.apache.flink.api.common.eventtime.WatermarkGenerator;
import org.apache.flink.api.common.eventtime.WatermarkOutput;

/**
 * Per Kafka partition: the watermark trails the newest valid event time by the grace
 * (watermarkDelay + allowedLateness), and moves after every record that advances it.
 *
 * <p>Dead letters never move it: a record the job rejects (a clock far in the future among them)
 * cannot make everyone else late. Emitting on every record instead of every 200 ms keeps
 * lateness independent of how fast a backlog is read.
 */
final class ReadingWatermarks implements WatermarkGenerator<Reading> {
    private final long graceMs;
    private long newest = Long.MIN_VALUE;

    ReadingWatermarks(long graceMs) {
        this.graceMs = graceMs;
    }

    @Override
    public void onEvent(Reading reading, long timestamp, WatermarkOutput output) {
        if (reading.valid() && reading.eventTime > newest) {
            newest = reading.eventTime;
            output.emitWatermark(new Watermark(newest - graceMs));
        }
    }

    @Override
    public void onPeriodicEmit(WatermarkOutput output) {
        // everything is emitted on event
    }
}
