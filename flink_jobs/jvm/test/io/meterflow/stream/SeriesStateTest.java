package io.meterflow.stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.apache.flink.core.memory.DataInputDeserializer;
import org.apache.flink.core.memory.DataOutputSerializer;
import org.junit.jupiter.api.Test;

/** De-duplication, windows and register steps of one series, and their checkpointed form. */
class SeriesStateTest {
    private static final long TTL = 1000;

    @Test
    void theFirstArrivalWinsWithinTheTtl() {
        SeriesState s = new SeriesState("Pulse1|P1");
        assertTrue(s.firstArrival(500, 0, TTL));
        assertTrue(s.firstArrival(100, 1, TTL)); // out of order
        assertTrue(s.firstArrival(300, 2, TTL));
        assertFalse(s.firstArrival(300, 3, TTL));
        assertFalse(s.firstArrival(100, 4, TTL));
        assertEquals(3, s.seen);
        assertEquals(100, s.seenTimes[0]);
        assertEquals(500, s.seenTimes[2]);
    }

    @Test
    void identitiesAreForgottenAfterTheTtl() {
        SeriesState s = new SeriesState("k");
        assertTrue(s.firstArrival(1, 0, TTL));
        assertTrue(s.firstArrival(2, 900, TTL));
        assertFalse(s.firstArrival(1, 1100, TTL)); // still remembered: forgetting runs after 1.125 x ttl
        assertTrue(s.firstArrival(3, 1200, TTL)); // forgets what arrived before 200
        assertEquals(2, s.seen);
        assertTrue(s.firstArrival(1, 1201, TTL)); // a new reading again
    }

    @Test
    void windowsAccumulate() {
        SeriesState s = new SeriesState("k");
        int w = s.window(0);
        s.add(w, 2.0);
        s.add(w, 4.0);
        s.add(w, 9.0);
        assertEquals(w, s.window(0));
        assertEquals(3, s.wCount[w]);
        assertEquals(15.0, s.wSum[w]);
        assertEquals(2.0, s.wMin[w]);
        assertEquals(9.0, s.wMax[w]);
        assertEquals(Math.sqrt((9.0 + 1.0 + 16.0) / 3.0), Math.sqrt(s.wM2[w] / s.wCount[w]), 1e-12);
        s.window(300);
        s.removeWindow(w);
        assertEquals(1, s.windows);
        assertEquals(300, s.wStart[0]);
    }

    @Test
    void pendingRegisterReadingsStayInEventTimeOrder() {
        SeriesState s = new SeriesState("k");
        s.addPending(30, 3.0);
        s.addPending(10, 1.0);
        s.addPending(20, 2.0);
        assertEquals(10, s.pendingTimes[0]);
        assertEquals(20, s.pendingTimes[1]);
        assertEquals(30, s.pendingTimes[2]);
        s.dropPending(2);
        assertEquals(1, s.pending);
        assertEquals(30, s.pendingTimes[0]);
        assertEquals(3.0, s.pendingValues[0]);
    }

    @Test
    void aMeterSurvivesACheckpointAndASpecChange() throws Exception {
        String[] keys = {"Pulse1|P1".intern(), "Pulse1_Total|T1".intern()};
        MeterState meter = new MeterState(2);
        SeriesState total = meter.series(1, keys);
        total.firstArrival(900, 1, TTL);
        total.hasLast = true;
        total.lastValue = 1234.5;
        total.addPending(900, 1240.0);
        total.add(total.window(600), 1240.0);
        DataOutputSerializer out = new DataOutputSerializer(256);
        MeterStateSerializer.INSTANCE.serialize(meter, out);
        MeterState back = MeterStateSerializer.INSTANCE.deserialize(new DataInputDeserializer(out.getCopyOfBuffer()));
        // the spec now lists the register first and adds a gauge
        String[] next = {"Pulse1_Total|T1".intern(), "Battery|V".intern(), "Pulse1|P1".intern()};
        SeriesState restored = back.series(0, next);
        assertEquals(1234.5, restored.lastValue);
        assertEquals(1, restored.pending);
        assertEquals(1, restored.windows);
        assertFalse(restored.firstArrival(900, 2, TTL));
        assertEquals(3, back.series.length);
    }
}
