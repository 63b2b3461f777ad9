package io.meterflow.stream;

import org.apache.flink.api.common.serialization.SerializerConfig;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeutils.TypeSerializer;

/** The type of the readings stream: serialized by {@link ReadingSerializer}. */
public final class ReadingTypeInfo extends TypeInformation<Reading> {
    private static final long serialVersionUID = 1L;
    static final ReadingTypeInfo INSTANCE = new ReadingTypeInfo();

    @Override
    public boolean isBasicType() {
        return false;
    }

    @Override
    public boolean isTupleType() {
        return false;
    }

    @Override
    public int getArity() {
        return 1;
    }

    @Override
    public int getTotalFields() {
        return 1;
    }

    @Override
    public Class<Reading> getTypeClass() {
        return Reading.class;
    }

    @Override
    public boolean isKeyType() {
        return false;
    }

    @Override
    public TypeSerializer<Reading> createSerializer(SerializerConfig config) {
        return ReadingSerializer.INSTANCE;
    }

    @Override
    public String toString() {
        return "Reading";
    }

    @Override
    public boolean equals(Object obj) {
        return obj instanceof ReadingTypeInfo;
    }

    @Override
    public int hashCode() {
        return ReadingTypeInfo.class.hashCode();
    }

    @Override
    public boolean canEqual(Object obj) {
        return obj instanceof ReadingTypeInfo;
    }
}
