package io.meterflow.stream;

import java.io.IOException;

import org.apache.flink.api.common.typeutils.SimpleTypeSerializerSnapshot;
import org.apache.flink.api.common.typeutils.TypeSerializer;
import org.apache.flink.api.common.typeutils.TypeSerializerSnapshot;
import org.apache.flink.core.memory.DataInputView;
import org.apache.flink.core.memory.DataOutputView;

/**
 * A valid {@link Reading} between the source's thread and the meter operator's: its six fields,
 * written by hand (Flink's POJO serializer reflects on every field of every record). Dead letters
 * never cross this exchange, so they are not written.
 */
public final class ReadingSerializer extends TypeSerializer<Reading> {
    private static final long serialVersionUID = 1L;
    static final ReadingSerializer INSTANCE = new ReadingSerializer();

    @Override
    public boolean isImmutableType() {
        return false;
    }

    @Override
    public TypeSerializer<Reading> duplicate() {
        return this;
    }

    @Override
    public Reading createInstance() {
        return new Reading();
    }

    @Override
    public Reading copy(Reading from) {
        Reading r = new Reading();
        r.meterId = from.meterId;
        r.measurement = from.measurement;
        r.value = from.value;
        r.eventTime = from.eventTime;
        r.ingestTime = from.ingestTime;
        r.partition = from.partition;
        r.offset = from.offset;
        r.deadLetter = from.deadLetter;
        return r;
    }

    @Override
    public Reading copy(Reading from, Reading reuse) {
        return copy(from);
    }

    @Override
    public int getLength() {
        return -1;
    }

    @Override
    public void serialize(Reading r, DataOutputView out) throws IOException {
        if (r.deadLetter != null) {
            throw new IllegalStateException("a dead letter must not leave the source's chain");
        }
        out.writeUTF(r.meterId);
        out.writeShort(r.measurement);
        out.writeDouble(r.value);
        out.writeLong(r.eventTime);
        out.writeLong(r.ingestTime);
        out.writeShort(r.partition);
        out.writeLong(r.offset);
    }

    @Override
    public Reading deserialize(DataInputView in) throws IOException {
        Reading r = new Reading();
        r.meterId = in.readUTF();
        r.measurement = in.readShort();
        r.value = in.readDouble();
        r.eventTime = in.readLong();
        r.ingestTime = in.readLong();
        r.partition = in.readShort();
        r.offset = in.readLong();
        return r;
    }

    @Override
    public Reading deserialize(Reading reuse, DataInputView in) throws IOException {
        return deserialize(in);
    }

    @Override
    public void copy(DataInputView source, DataOutputView target) throws IOException {
        serialize(deserialize(source), target);
    }

    @Override
    public boolean equals(Object obj) {
        return obj instanceof ReadingSerializer;
    }

    @Override
    public int hashCode() {
        return ReadingSerializer.class.hashCode();
    }

    @Override
    public TypeSerializerSnapshot<Reading> snapshotConfiguration() {
        return new Snapshot();
    }

    /** The serializer has no configuration: a snapshot only names it. */
    public static final class Snapshot extends SimpleTypeSerializerSnapshot<Reading> {
        public Snapshot() {
            super(() -> INSTANCE);
        }
    }
}
