package io.meterflow.stream;

import java.util.LinkedHashMap;
import java.util.Map;

import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.runtime.state.VoidNamespace;
import org.apache.flink.runtime.state.VoidNamespaceSerializer;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;

/**
 * Keyed by (minute, counter): adds up increments and, just before each checkpoint barrier, emits
 * the running total of every counter that changed.
 *
 * <p>Its sink is transactional and commits with the checkpoint, so ClickHouse sees counts that
 * match exactly what the lake and the dead-letter topic committed, and never a count that goes
 * back down after a restart.
 */
public final class CounterOperator extends AbstractStreamOperator<CounterCount>
        implements OneInputStreamOperator<CounterCount, CounterCount> {
    private static final long serialVersionUID = 1L;

    private transient ValueState<Long> total;
    private transient Map<String, CounterCount> changed;
    private transient StreamRecord<CounterCount> record;

    @Override
    public void open() throws Exception {
        super.open();
        total = getPartitionedState(VoidNamespace.INSTANCE, VoidNamespaceSerializer.INSTANCE,
                new ValueStateDescriptor<>("total", Types.LONG));
        changed = new LinkedHashMap<>();
        record = new StreamRecord<>(null);
    }

    @Override
    public void processElement(StreamRecord<CounterCount> element) throws Exception {
        CounterCount d = element.getValue();
        Long before = total.value();
        long now = (before == null ? 0L : before) + d.count;
        total.update(now);
        changed.put(d.key(), new CounterCount(d.minute, d.counter, now));
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
        for (CounterCount c : changed.values()) {
            output.collect(record.replace(c, c.minute));
        }
        changed.clear();
    }
}
