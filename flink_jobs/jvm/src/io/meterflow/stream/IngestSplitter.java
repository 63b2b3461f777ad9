package io.meterflow.stream;

import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.util.OutputTag;

/**
 * Right after the source, in its thread: valid readings go on, dead letters to their own output,
 * and every record is counted ({@code valid} or {@code dlq:<reason>}) by minute of arrival.
 */
public final class IngestSplitter extends AbstractStreamOperator<Reading>
        implements OneInputStreamOperator<Reading, Reading> {
    private static final long serialVersionUID = 1L;

    static final OutputTag<DeadLetter> DEAD_LETTERS = new OutputTag<>("dead-letters") {};
    static final OutputTag<CounterCount> COUNTS = new OutputTag<>("ingest-counts") {};

    private transient CounterBuffer counts;
    private transient StreamRecord<DeadLetter> deadRecord;
    private transient StreamRecord<CounterCount> countRecord;

    @Override
    public void open() throws Exception {
        super.open();
        counts = new CounterBuffer();
        deadRecord = new StreamRecord<>(null);
        countRecord = new StreamRecord<>(null);
    }

    @Override
    public void processElement(StreamRecord<Reading> element) {
        Reading r = element.getValue();
        if (r.valid()) {
            counts.add("valid", r.ingestTime);
            output.collect(element);
        } else {
            counts.add("dlq:" + r.deadLetter.reason, r.ingestTime);
            output.collect(DEAD_LETTERS, deadRecord.replace(r.deadLetter, r.ingestTime));
        }
    }

    @Override
    public void prepareSnapshotPreBarrier(long checkpointId) throws Exception {
        super.prepareSnapshotPreBarrier(checkpointId);
        flushCounts();
    }

    @Override
    public void finish() throws Exception {
        flushCounts();
        super.finish();
    }

    private void flushCounts() {
        counts.flush(count -> output.collect(COUNTS, countRecord.replace(count, count.minute)));
    }
}
