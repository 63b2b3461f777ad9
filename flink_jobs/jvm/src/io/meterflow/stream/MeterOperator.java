package io.meterflow.stream;

import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.runtime.state.VoidNamespace;
import org.apache.flink.runtime.state.VoidNamespaceSerializer;
import org.apache.flink.runtime.state.heap.HeapKeyedStateBackend;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.InternalTimer;
import org.apache.flink.streaming.api.operators.InternalTimerService;
import org.apache.flink.streaming.api.operators.Triggerable;
import org.apache.flink.streaming.api.operators.TwoInputStreamOperator;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.data.TimestampData;
import org.apache.flink.util.OutputTag;

/**
 * The speed layer's per-meter work, keyed by meter id, in one operator and one state access per
 * reading; its second input is people's actions on alerts (acknowledge, resolve).
 *
 * <p>Semantics (docs/architecture.md states them for users):
 * <ul>
 *   <li><b>Duplicates</b>: the first of equal (meter, measurement, series, event time) wins; an
 *       identity is remembered for {@code dedup_ttl_ms} after its arrival.
 *   <li><b>Late</b>: a reading at or behind the watermark when it arrives here. It is kept out of
 *       every window, register step and consumption rule, counted, and still written to the lake
 *       with late = true.
 *   <li><b>Windows</b>: tumbling or hopping, aligned to the epoch, closed (emitted once) when the
 *       watermark passes their end.
 *   <li><b>Interval and power</b>: consumption is the value (interval) or the energy of the
 *       reading's interval (power: value x hours), added to the windows that hold the reading.
 *   <li><b>Registers</b>: consumption is the step from the previous on-time reading in event-time
 *       order (steps are taken as the watermark passes the readings); a fall to at most
 *       {@code register_reset_ratio} of the previous value is a reset, counted from zero.
 *   <li><b>Alerts</b>: the rules and their lifecycle are {@link AlertRules}'.
 * </ul>
 * Main output: lake rows (Iceberg); side outputs: closed windows, alert transitions, counter
 * increments.
 */
public final class MeterOperator extends AbstractStreamOperator<RowData>
        implements TwoInputStreamOperator<Reading, AlertCommand, RowData>, Triggerable<String, VoidNamespace> {
    private static final long serialVersionUID = 1L;

    static final OutputTag<WindowResult> WINDOWS = new OutputTag<>("windows") {};
    static final OutputTag<AlertEvent> ALERTS = new OutputTag<>("alerts") {};
    static final OutputTag<CounterCount> COUNTS = new OutputTag<>("meter-counts") {};

    private final Plan plan;

    private transient ValueState<MeterState> state;
    /** The hashmap backend hands out copy-on-write state objects: mutating one is a write. */
    private transient boolean stateWritesInPlace;
    private transient InternalTimerService<VoidNamespace> timers;
    private transient CounterBuffer counts;
    private transient AlertRules rules;
    private transient AlertRules.Effects effects;
    /** The meter whose rules are running (the effects' timer requests lower its rulesDue). */
    private transient MeterState current;
    private transient String[] keys;
    private transient StringData[] names;
    private transient StringData[] series;
    private transient StringData[] units;
    private transient Plan.Kind[] kinds;
    /** Per measurement: a value's consumption is value x this; 0 for registers and gauges. */
    private transient double[] factors;
    /** Measurements whose readings are taken in event-time order: registers, and those with stuck or outlier rules. */
    private transient boolean[] ordered;
    /** Measurements whose consumption a flow rule watches. */
    private transient boolean[] flowWatched;
    private transient StreamRecord<WindowResult> windowRecord;
    private transient StreamRecord<AlertEvent> alertRecord;
    private transient StreamRecord<CounterCount> countRecord;

    public MeterOperator(Plan plan) {
        this.plan = plan;
    }

    @Override
    public void open() throws Exception {
        super.open();
        state = getPartitionedState(VoidNamespace.INSTANCE, VoidNamespaceSerializer.INSTANCE,
                new ValueStateDescriptor<>("meter", MeterStateSerializer.INSTANCE));
        stateWritesInPlace = getKeyedStateBackend() instanceof HeapKeyedStateBackend;
        timers = getInternalTimerService("windows", VoidNamespaceSerializer.INSTANCE, this);
        counts = new CounterBuffer();
        rules = new AlertRules(plan);
        alertRecord = new StreamRecord<>(null);
        effects = new AlertRules.Effects() {
            @Override
            public void emit(AlertEvent event) {
                output.collect(ALERTS, alertRecord.replace(event, event.at));
            }

            @Override
            public void wakeAt(long eventTime) {
                timers.registerEventTimeTimer(VoidNamespace.INSTANCE, eventTime);
                current.rulesDue = Math.min(current.rulesDue, eventTime);
            }
        };
        int n = plan.measurements.length;
        keys = new String[n];
        names = new StringData[n];
        series = new StringData[n];
        units = new StringData[n];
        kinds = new Plan.Kind[n];
        factors = new double[n];
        ordered = new boolean[n];
        flowWatched = new boolean[n];
        for (int i = 0; i < n; i++) {
            Plan.Measurement m = plan.measurements[i];
            keys[i] = (m.name + "|" + m.series).intern();
            names[i] = StringData.fromString(m.name);
            series[i] = StringData.fromString(m.series);
            units[i] = StringData.fromString(m.unit);
            kinds[i] = m.kind;
            factors[i] = m.consumptionFactor;
            ordered[i] = m.kind == Plan.Kind.REGISTER;
            for (Plan.Slot slot : m.slots) {
                ordered[i] |= slot.rule.kind == Plan.RuleKind.STUCK || slot.rule.kind == Plan.RuleKind.OUTLIER;
                flowWatched[i] |= slot.rule.kind == Plan.RuleKind.CONTINUOUS_FLOW
                        || slot.rule.kind == Plan.RuleKind.NIGHT_FLOW;
            }
        }
        windowRecord = new StreamRecord<>(null);
        countRecord = new StreamRecord<>(null);
    }

    // ------------------------------------------------------------------ readings

    @Override
    public void processElement1(StreamRecord<Reading> element) throws Exception {
        Reading r = element.getValue();
        long now = getProcessingTimeService().getCurrentProcessingTime();
        MeterState meter = state.value();
        boolean created = meter == null;
        if (created) {
            meter = new MeterState(keys.length);
        }
        int m = r.measurement;
        SeriesState s = meter.series(m, keys);
        if (!s.firstArrival(r.eventTime, now, plan.dedupTtlMs)) {
            save(meter, created);
            return; // a duplicate: counted as valid - on_time - late
        }
        boolean late = r.eventTime <= timers.currentWatermark();
        counts.add(late ? "late" : "on_time", r.ingestTime);
        output.collect(element.replace(lakeRow(r, late)));
        current = meter;
        rules.onReading(r.meterId, meter, m, r.eventTime, r.value, effects);
        if (!late) {
            addToWindows(s, m, r.eventTime, r.value);
            if (kinds[m] == Plan.Kind.INTERVAL && flowWatched[m]) {
                rules.onConsumption(r.meterId, meter, m, r.eventTime, r.value, effects);
            }
        }
        save(meter, created);
    }

    @Override
    public void processElement2(StreamRecord<AlertCommand> element) throws Exception {
        AlertCommand command = element.getValue();
        MeterState meter = state.value();
        if (meter != null) {
            current = meter;
            rules.onCommand(command.meterId, meter, command, effects);
            save(meter, false);
        }
    }

    private void save(MeterState meter, boolean created) throws Exception {
        if (created || !stateWritesInPlace) {
            state.update(meter);
        }
    }

    private void addToWindows(SeriesState s, int m, long t, double value) {
        long size = plan.windowSizeMs;
        long slide = plan.windowSlideMs;
        long start = t - Math.floorMod(t, slide);
        for (; start > t - size; start -= slide) {
            int before = s.windows;
            int w = s.window(start);
            if (s.windows > before) {
                timers.registerEventTimeTimer(VoidNamespace.INSTANCE, start + size - 1);
            }
            s.add(w, value);
            if (kinds[m] == Plan.Kind.INTERVAL || kinds[m] == Plan.Kind.POWER) {
                s.addConsumption(w, value * factors[m]);
            }
        }
        if (ordered[m]) {
            s.addPending(t, value);
        }
    }

    // ------------------------------------------------------------------ the watermark passes

    @Override
    public void onEventTime(InternalTimer<String, VoidNamespace> timer) throws Exception {
        long fire = timer.getTimestamp();
        MeterState meter = state.value();
        if (meter == null) {
            return;
        }
        String meterId = timer.getKey();
        current = meter;
        for (int m = 0; m < meter.series.length; m++) {
            SeriesState s = meter.series[m];
            if (s == null) {
                continue;
            }
            if (s.pending > 0) {
                takeOrdered(meterId, meter, m, s, fire);
            }
            for (int w = s.windows - 1; w >= 0; w--) {
                if (s.wStart[w] + plan.windowSizeMs - 1 <= fire) {
                    emitWindow(meterId, m, s, w, fire);
                    s.removeWindow(w);
                }
            }
        }
        // A drain moves the watermark to the end of time: windows close, but no silence, interval,
        // night or escalation has really happened (the next run resumes from a savepoint before it).
        // Most timers close windows only: the rules are visited when one of theirs is due.
        if (rules.any() && timers.currentWatermark() != Long.MAX_VALUE && fire >= meter.rulesDue) {
            rules.onTime(meterId, meter, fire, effects);
            meter.rulesDue = rules.nextDue(meter);
        }
        save(meter, false);
    }

    /**
     * The pending readings the watermark has passed, in event-time order: register steps (into
     * the windows and the flow rules that contain them) and stuck rules.
     */
    private void takeOrdered(String meterId, MeterState meter, int m, SeriesState s, long upTo) {
        boolean register = kinds[m] == Plan.Kind.REGISTER;
        int taken = 0;
        while (taken < s.pending && s.pendingTimes[taken] <= upTo) {
            long t = s.pendingTimes[taken];
            double v = s.pendingValues[taken];
            if (register) {
                boolean first = !s.hasLast; // a register's first reading ends no step (windows count it as 0)
                double step;
                if (first) {
                    step = 0.0;
                } else if (v < s.lastValue && v <= s.lastValue * plan.registerResetRatio) {
                    step = v;
                } else {
                    step = v - s.lastValue;
                }
                s.hasLast = true;
                s.lastValue = v;
                for (int w = 0; w < s.windows; w++) {
                    if (s.wStart[w] <= t && t < s.wStart[w] + plan.windowSizeMs) {
                        s.addConsumption(w, step);
                    }
                }
                if (flowWatched[m] && !first) {
                    rules.onConsumption(meterId, meter, m, t, step, effects);
                }
            }
            rules.onOrdered(meterId, meter, m, t, v, effects);
            taken++;
        }
        s.dropPending(taken);
    }

    private void emitWindow(String meterId, int m, SeriesState s, int w, long fire) {
        WindowResult out = new WindowResult();
        out.meterId = meterId;
        out.measurement = m;
        out.windowStart = s.wStart[w];
        out.windowEnd = s.wStart[w] + plan.windowSizeMs;
        out.readings = s.wCount[w];
        out.sum = s.wSum[w];
        out.min = s.wMin[w];
        out.max = s.wMax[w];
        out.stddev = s.wCount[w] > 0 ? Math.sqrt(Math.max(0.0, s.wM2[w] / s.wCount[w])) : 0.0;
        out.consumption = s.wHasConsumption[w] ? s.wConsumption[w] : Double.NaN;
        output.collect(WINDOWS, windowRecord.replace(out, fire));
    }

    private GenericRowData lakeRow(Reading r, boolean late) {
        GenericRowData row = new GenericRowData(10);
        row.setField(0, StringData.fromString(r.meterId));
        row.setField(1, names[r.measurement]);
        row.setField(2, series[r.measurement]);
        row.setField(3, units[r.measurement]);
        row.setField(4, r.value);
        row.setField(5, TimestampData.fromEpochMillis(r.eventTime));
        row.setField(6, TimestampData.fromEpochMillis(r.ingestTime));
        row.setField(7, r.partition);
        row.setField(8, r.offset);
        row.setField(9, late);
        return row;
    }

    @Override
    public void onProcessingTime(InternalTimer<String, VoidNamespace> timer) {
        // no processing-time timers
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
