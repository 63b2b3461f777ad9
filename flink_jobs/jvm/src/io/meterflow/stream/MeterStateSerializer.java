package io.meterflow.stream;

import java.io.IOException;

import org.apache.flink.api.common.typeutils.SimpleTypeSerializerSnapshot;
import org.apache.flink.api.common.typeutils.TypeSerializer;
import org.apache.flink.api.common.typeutils.TypeSerializerSnapshot;
import org.apache.flink.core.memory.DataInputView;
import org.apache.flink.core.memory.DataOutputView;

/**
 * Writes {@link MeterState} as its primitive arrays (no reflection, no Kryo): a checkpoint of the
 * de-duplication state costs about 16 bytes a remembered reading.
 *
 * <p>Format 2 (the outlier rules' windows) begins with {@code -2}; format 1 began directly with the
 * series count (never negative), so state written by an older job still reads.
 */
public final class MeterStateSerializer extends TypeSerializer<MeterState> {
    private static final long serialVersionUID = 1L;
    static final MeterStateSerializer INSTANCE = new MeterStateSerializer();
    static final int FORMAT = 2;

    @Override
    public boolean isImmutableType() {
        return false;
    }

    @Override
    public TypeSerializer<MeterState> duplicate() {
        return this;
    }

    @Override
    public MeterState createInstance() {
        return new MeterState(0);
    }

    @Override
    public MeterState copy(MeterState from) {
        return from.copy();
    }

    @Override
    public MeterState copy(MeterState from, MeterState reuse) {
        return from.copy();
    }

    @Override
    public int getLength() {
        return -1;
    }

    @Override
    public void serialize(MeterState state, DataOutputView out) throws IOException {
        out.writeInt(-FORMAT);
        out.writeInt(state.series.length);
        for (SeriesState s : state.series) {
            out.writeBoolean(s != null);
            if (s == null) {
                continue;
            }
            out.writeUTF(s.key);
            out.writeInt(s.seen);
            for (int i = 0; i < s.seen; i++) {
                out.writeLong(s.seenTimes[i]);
                out.writeLong(s.seenArrivals[i]);
            }
            out.writeLong(s.oldestArrival);
            out.writeInt(s.windows);
            for (int i = 0; i < s.windows; i++) {
                out.writeLong(s.wStart[i]);
                out.writeLong(s.wCount[i]);
                out.writeDouble(s.wSum[i]);
                out.writeDouble(s.wMin[i]);
                out.writeDouble(s.wMax[i]);
                out.writeDouble(s.wMean[i]);
                out.writeDouble(s.wM2[i]);
                out.writeDouble(s.wConsumption[i]);
                out.writeBoolean(s.wHasConsumption[i]);
            }
            out.writeBoolean(s.hasLast);
            out.writeDouble(s.lastValue);
            out.writeInt(s.pending);
            for (int i = 0; i < s.pending; i++) {
                out.writeLong(s.pendingTimes[i]);
                out.writeDouble(s.pendingValues[i]);
            }
        }
        out.writeInt(state.alerts.length);
        for (AlertState a : state.alerts) {
            out.writeBoolean(a != null);
            if (a != null) {
                writeAlert(a, out);
            }
        }
    }

    private static void writeAlert(AlertState a, DataOutputView out) throws IOException {
        out.writeUTF(a.key);
        out.writeBoolean(a.open);
        out.writeUTF(a.id == null ? "" : a.id);
        out.writeLong(a.openedAt);
        out.writeLong(a.lastSeen);
        out.writeLong(a.resolvedAt);
        out.writeLong(a.breaches);
        out.writeDouble(a.firstValue);
        out.writeDouble(a.lastValue);
        out.writeDouble(a.peakValue);
        out.writeInt(a.severity);
        out.writeBoolean(a.escalated);
        out.writeUTF(a.ackBy == null ? "" : a.ackBy);
        out.writeLong(a.ackAt);
        out.writeUTF(a.detail == null ? "" : a.detail);
        out.writeLong(a.latest);
        out.writeLong(a.deadline);
        out.writeBoolean(a.hasValue);
        out.writeDouble(a.value);
        out.writeLong(a.since);
        out.writeInt(a.periods);
        for (int i = 0; i < a.periods; i++) {
            out.writeLong(a.pStart[i]);
            out.writeLong(a.pEnd[i]);
            out.writeDouble(a.pFlow[i]);
            out.writeInt(a.pSteps[i]);
            out.writeBoolean(a.pAllAbove[i]);
        }
        out.writeInt(a.run);
        out.writeLong(a.lastPeriodEnd);
        out.writeInt(a.ring.length);
        out.writeInt(a.ringSize);
        out.writeInt(a.ringNext);
        for (int i = 0; i < a.ringSize; i++) {
            out.writeDouble(a.ring[i]);
        }
    }

    private static AlertState readAlert(DataInputView in, int format) throws IOException {
        AlertState a = new AlertState(in.readUTF().intern());
        a.open = in.readBoolean();
        String id = in.readUTF();
        a.id = id.isEmpty() ? null : id;
        a.openedAt = in.readLong();
        a.lastSeen = in.readLong();
        a.resolvedAt = in.readLong();
        a.breaches = in.readLong();
        a.firstValue = in.readDouble();
        a.lastValue = in.readDouble();
        a.peakValue = in.readDouble();
        a.severity = in.readInt();
        a.escalated = in.readBoolean();
        String by = in.readUTF();
        a.ackBy = by.isEmpty() ? null : by;
        a.ackAt = in.readLong();
        a.detail = in.readUTF();
        a.latest = in.readLong();
        a.deadline = in.readLong();
        a.hasValue = in.readBoolean();
        a.value = in.readDouble();
        a.since = in.readLong();
        int periods = in.readInt();
        for (int i = 0; i < periods; i++) {
            int p = a.period(in.readLong(), in.readLong()) & ~AlertState.CREATED;
            a.pFlow[p] = in.readDouble();
            a.pSteps[p] = in.readInt();
            a.pAllAbove[p] = in.readBoolean();
        }
        a.run = in.readInt();
        a.lastPeriodEnd = in.readLong();
        if (format >= 2) {
            a.ring = new double[in.readInt()];
            a.ringSize = in.readInt();
            a.ringNext = in.readInt();
            for (int i = 0; i < a.ringSize; i++) {
                a.ring[i] = in.readDouble();
            }
        }
        return a;
    }

    @Override
    public MeterState deserialize(DataInputView in) throws IOException {
        int first = in.readInt();
        int format = first < 0 ? -first : 1;
        MeterState state = new MeterState(first < 0 ? in.readInt() : first);
        for (int k = 0; k < state.series.length; k++) {
            if (!in.readBoolean()) {
                continue;
            }
            SeriesState s = new SeriesState(in.readUTF().intern());
            int seen = in.readInt();
            s.seenTimes = new long[Math.max(seen, 8)];
            s.seenArrivals = new long[Math.max(seen, 8)];
            for (int i = 0; i < seen; i++) {
                s.seenTimes[i] = in.readLong();
                s.seenArrivals[i] = in.readLong();
            }
            s.seen = seen;
            s.oldestArrival = in.readLong();
            int windows = in.readInt();
            for (int i = 0; i < windows; i++) {
                int w = s.window(in.readLong());
                s.wCount[w] = in.readLong();
                s.wSum[w] = in.readDouble();
                s.wMin[w] = in.readDouble();
                s.wMax[w] = in.readDouble();
                s.wMean[w] = in.readDouble();
                s.wM2[w] = in.readDouble();
                s.wConsumption[w] = in.readDouble();
                s.wHasConsumption[w] = in.readBoolean();
            }
            s.hasLast = in.readBoolean();
            s.lastValue = in.readDouble();
            int pending = in.readInt();
            for (int i = 0; i < pending; i++) {
                s.addPending(in.readLong(), in.readDouble());
            }
            state.series[k] = s;
        }
        state.alerts = new AlertState[in.readInt()];
        for (int k = 0; k < state.alerts.length; k++) {
            state.alerts[k] = in.readBoolean() ? readAlert(in, format) : null;
        }
        return state;
    }

    @Override
    public MeterState deserialize(MeterState reuse, DataInputView in) throws IOException {
        return deserialize(in);
    }

    @Override
    public void copy(DataInputView source, DataOutputView target) throws IOException {
        serialize(deserialize(source), target);
    }

    @Override
    public boolean equals(Object obj) {
        return obj instanceof MeterStateSerializer;
    }

    @Override
    public int hashCode() {
        return MeterStateSerializer.class.hashCode();
    }

    @Override
    public TypeSerializerSnapshot<MeterState> snapshotConfiguration() {
        return new Snapshot();
    }

    /** The serializer has no configuration: a snapshot only names it. */
    public static final class Snapshot extends SimpleTypeSerializerSnapshot<MeterState> {
        public Snapshot() {
            super(() -> INSTANCE);
        }
    }
}
