package io.meterflow.stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.apache.flink.core.memory.DataInputDeserializer;
import org.apache.flink.core.memory.DataOutputSerializer;
import org.junit.jupiter.api.Test;

/** A reading crosses the shuffle to its meter's operator unchanged; a dead letter never does. */
class ReadingSerializerTest {

    @Test
    void roundTrip() throws Exception {
        Reading r = new Reading();
        r.meterId = "MTR-0042é";
        r.measurement = 3;
        r.value = -12.75;
        r.eventTime = 1_714_521_600_123L;
        r.ingestTime = 1_796_000_000_000L;
        r.partition = 999;
        r.offset = 123_456_789_012L;
        DataOutputSerializer out = new DataOutputSerializer(64);
        ReadingSerializer.INSTANCE.serialize(r, out);
        Reading back = ReadingSerializer.INSTANCE.deserialize(new DataInputDeserializer(out.getCopyOfBuffer()));
        assertEquals(r.meterId, back.meterId);
        assertEquals(r.measurement, back.measurement);
        assertEquals(r.value, back.value);
        assertEquals(r.eventTime, back.eventTime);
        assertEquals(r.ingestTime, back.ingestTime);
        assertEquals(r.partition, back.partition);
        assertEquals(r.offset, back.offset);
    }

    @Test
    void deadLettersStayInTheSourceChain() {
        Reading r = new Reading();
        r.deadLetter = new DeadLetter();
        assertThrows(IllegalStateException.class, () -> ReadingSerializer.INSTANCE.serialize(r, new DataOutputSerializer(8)));
    }
}
