package io.meterflow.batch;

import java.util.ArrayList;
import java.util.List;

import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.BoundedOneInput;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;

/**
 * Collects the scan's readings per meter and, once the scan has been read, turns each meter's into
 * its daily rows ({@link MeterReadings}), sent on as {@link DailyRows} blocks.
 *
 * <p>Readings are held in primitive arrays, about 45 bytes each; a meter's are let go as soon as its
 * rows are made. Readings of measurements the spec does not declare, and outside the scan, are
 * skipped here. With parallelism above 1 the readings arrive partitioned by meter.
 */
final class DailyOperator extends AbstractStreamOperator<byte[]>
        implements OneInputStreamOperator<ReadingBlock, byte[]>, BoundedOneInput {
    private static final long serialVersionUID = 1L;

    private final DailyPlan plan;
    /** By the source's meter index (one source: every meter has one index). */
    private transient List<MeterReadings> meters;
    private transient long[] dayStartsMicros;

    DailyOperator(DailyPlan plan) {
        this.plan = plan;
    }

    @Override
    public void open() throws Exception {
        super.open();
        meters = new ArrayList<>();
        dayStartsMicros = new long[plan.dayStartsMs.length];
        for (int i = 0; i < dayStartsMicros.length; i++) {
            dayStartsMicros[i] = Math.multiplyExact(plan.dayStartsMs[i], 1000L);
        }
    }

    @Override
    public void processElement(StreamRecord<ReadingBlock> element) {
        ReadingBlock b = element.getValue();
        long start = dayStartsMicros[0];
        long end = dayStartsMicros[dayStartsMicros.length - 1];
        List<MeterReadings> all = meters;
        for (int j = 0; j < b.size; j++) {
            long micros = b.eventMicros[j];
            if (b.measurement[j] == ReadingBlock.UNDECLARED || micros < start || micros >= end) {
                continue;
            }
            int id = b.meterIndex[j];
            while (all.size() <= id) {
                all.add(null);
            }
            MeterReadings meter = all.get(id);
            if (meter == null) {
                meter = new MeterReadings(b.meter[j]);
                all.set(id, meter);
            }
            meter.add(b, j);
        }
    }

    @Override
    public void endInput() {
        DailyRows rows = new DailyRows();
        for (int i = 0; i < meters.size(); i++) {
            MeterReadings meter = meters.get(i);
            if (meter == null) {
                continue;
            }
            meter.emit(plan, dayStartsMicros, rows);
            meters.set(i, null); // its readings can go
            if (rows.size() >= DailyRows.BLOCK_ROWS) {
                output.collect(new StreamRecord<>(rows.toBytes()));
                rows.clear();
            }
        }
        if (rows.size() > 0) {
            output.collect(new StreamRecord<>(rows.toBytes()));
        }
    }
}
