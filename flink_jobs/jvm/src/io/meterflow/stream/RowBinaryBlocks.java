package io.meterflow.stream;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;

import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.runtime.tasks.ProcessingTimeService;

/**
 * Window results → blocks of ClickHouse RowBinary rows, one Kafka record per block.
 *
 * <p>Window results can be as many as readings (5-minute windows over 15-minute meters), so they
 * must reach ClickHouse as bytes in bulk: the serving sink concatenates blocks into one
 * {@code INSERT … FORMAT RowBinary} without looking at a row. A block is sent when it reaches
 * {@code block_bytes}, {@code block_linger_ms} after its first row, and before every checkpoint
 * barrier (so it needs no state). Each row carries its {@code version}: the wall-clock millisecond
 * it was packed, so a window fired again after a restore replaces the earlier row.
 */
public final class RowBinaryBlocks extends AbstractStreamOperator<byte[]>
        implements OneInputStreamOperator<WindowResult, byte[]>, ProcessingTimeService.ProcessingTimeCallback {
    private static final long serialVersionUID = 1L;

    /** The column order written below; the plan's must be the same (checked when the job is built). */
    static final List<String> COLUMNS = List.of(
            "meter_id", "measurement_type", "series", "unit", "window_start", "window_end", "readings",
            "sum", "avg", "min", "max", "stddev", "consumption", "version", "is_deleted");

    private final Plan plan;
    private final int blockBytes;
    private final long lingerMs;

    private transient byte[] buf;
    private transient int size;
    private transient boolean timerSet;
    private transient byte[][] names;
    private transient byte[][] series;
    private transient byte[][] units;
    private transient StreamRecord<byte[]> record;

    public RowBinaryBlocks(Plan plan, int blockBytes, long lingerMs) {
        if (!COLUMNS.equals(plan.aggregateColumns)) {
            throw new IllegalArgumentException(
                    "the plan's aggregate columns " + plan.aggregateColumns + " are not the JVM's " + COLUMNS);
        }
        this.plan = plan;
        this.blockBytes = blockBytes;
        this.lingerMs = lingerMs;
    }

    @Override
    public void open() throws Exception {
        super.open();
        buf = new byte[blockBytes + 4096];
        int n = plan.measurements.length;
        names = new byte[n][];
        series = new byte[n][];
        units = new byte[n][];
        for (int i = 0; i < n; i++) {
            names[i] = plan.measurements[i].name.getBytes(StandardCharsets.UTF_8);
            series[i] = plan.measurements[i].series.getBytes(StandardCharsets.UTF_8);
            units[i] = plan.measurements[i].unit.getBytes(StandardCharsets.UTF_8);
        }
        record = new StreamRecord<>(null);
    }

    @Override
    public void processElement(StreamRecord<WindowResult> element) {
        WindowResult w = element.getValue();
        long version = getProcessingTimeService().getCurrentProcessingTime();
        string(w.meterId.getBytes(StandardCharsets.UTF_8));
        string(names[w.measurement]);
        string(series[w.measurement]);
        string(units[w.measurement]);
        int64(w.windowStart);
        int64(w.windowEnd);
        int64(w.readings);
        float64(w.sum);
        float64(w.readings > 0 ? w.sum / w.readings : 0.0);
        float64(w.min);
        float64(w.max);
        float64(w.stddev);
        if (Double.isNaN(w.consumption)) {
            int8(1);
        } else {
            int8(0);
            float64(w.consumption);
        }
        int64(version);
        int8(0);
        if (size >= blockBytes) {
            flush();
        } else if (!timerSet) {
            timerSet = true;
            getProcessingTimeService().registerTimer(version + lingerMs, this);
        }
    }

    @Override
    public void onProcessingTime(long time) {
        timerSet = false;
        flush();
    }

    @Override
    public void prepareSnapshotPreBarrier(long checkpointId) throws Exception {
        super.prepareSnapshotPreBarrier(checkpointId);
        flush();
    }

    @Override
    public void finish() throws Exception {
        flush();
        super.finish();
    }

    private void flush() {
        if (size > 0) {
            output.collect(record.replace(Arrays.copyOf(buf, size)));
            size = 0;
        }
    }

    private void ensure(int more) {
        if (size + more > buf.length) {
            buf = Arrays.copyOf(buf, Math.max(buf.length * 2, size + more));
        }
    }

    private void string(byte[] bytes) {
        ensure(bytes.length + 5);
        int n = bytes.length;
        while ((n & ~0x7F) != 0) {
            buf[size++] = (byte) ((n & 0x7F) | 0x80);
            n >>>= 7;
        }
        buf[size++] = (byte) n;
        System.arraycopy(bytes, 0, buf, size, bytes.length);
        size += bytes.length;
    }

    private void int64(long v) {
        ensure(8);
        for (int i = 0; i < 8; i++) {
            buf[size++] = (byte) (v >>> (8 * i));
        }
    }

    private void float64(double v) {
        int64(Double.doubleToRawLongBits(v));
    }

    private void int8(int v) {
        ensure(1);
        buf[size++] = (byte) v;
    }
}
