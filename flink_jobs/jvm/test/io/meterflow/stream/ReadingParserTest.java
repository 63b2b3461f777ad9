package io.meterflow.stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Instant;

import org.junit.jupiter.api.Test;

/** One parse per record, and a named reason for everything that is not a reading. */
class ReadingParserTest {
    private final ReadingParser.Result r = new ReadingParser.Result();

    private boolean parse(String json) {
        return ReadingParser.parse(json.getBytes(StandardCharsets.UTF_8), r);
    }

    @Test
    void aReading() {
        assertTrue(parse("{\"meter_id\":\"M1\",\"timestamp\":\"2024-05-01T10:15:00+10:00\",\"measurement_type\":\"Pulse1\","
                + "\"series\":\"P1\",\"unit\":\"L\",\"value\":12.5,\"extra\":{\"a\":[1,2]}}"));
        assertEquals("M1", r.meterId);
        assertEquals("Pulse1", r.measurementType);
        assertEquals("P1", r.series);
        assertEquals("L", r.unit);
        assertEquals(12.5, r.value);
        assertEquals(Instant.parse("2024-05-01T00:15:00Z").toEpochMilli(), r.eventTime);
    }

    @Test
    void integerMeterIds() {
        assertTrue(parse("{\"meter_id\":42,\"timestamp\":\"2024-05-01T00:00:00Z\",\"measurement_type\":\"Pulse1\","
                + "\"series\":\"P1\",\"unit\":\"L\",\"value\":1}"));
        assertEquals("42", r.meterId);
    }

    private void rejects(String reason, String json) {
        assertFalse(parse(json), json);
        assertEquals(reason, r.error, json);
        assertTrue(r.detail != null && !r.detail.isEmpty(), json);
    }

    @Test
    void reasons() {
        String tail = ",\"measurement_type\":\"Pulse1\",\"series\":\"P1\",\"unit\":\"L\"";
        rejects("bad_json", "");
        rejects("bad_json", "not json");
        rejects("bad_json", "[1,2]");
        rejects("bad_json", "{\"meter_id\":\"M1\"} trailing");
        rejects("missing_field", "{\"timestamp\":\"2024-05-01T00:00:00Z\"" + tail + ",\"value\":1}");
        rejects("missing_field", "{\"meter_id\":\"M1\",\"timestamp\":\"2024-05-01T00:00:00Z\"" + tail + "}");
        rejects("missing_value", "{\"meter_id\":\"M1\",\"timestamp\":\"2024-05-01T00:00:00Z\"" + tail + ",\"value\":null}");
        // a missing meter id counts first, as for every other field
        rejects("missing_field", "{\"timestamp\":\"2024-05-01T00:00:00Z\"" + tail + ",\"value\":null}");
        // the last value token decides
        rejects("missing_value", "{\"meter_id\":\"M1\",\"timestamp\":\"2024-05-01T00:00:00Z\"" + tail + ",\"value\":1,\"value\":null}");
        rejects("wrong_type", "{\"meter_id\":{\"x\":1},\"timestamp\":\"2024-05-01T00:00:00Z\"" + tail + ",\"value\":1}");
        rejects("wrong_type", "{\"meter_id\":\"M1\",\"timestamp\":\"2024-05-01T00:00:00Z\"" + tail + ",\"value\":\"12\"}");
        rejects("not_finite", "{\"meter_id\":\"M1\",\"timestamp\":\"2024-05-01T00:00:00Z\"" + tail + ",\"value\":NaN}");
        rejects("bad_timestamp", "{\"meter_id\":\"M1\",\"timestamp\":\"2024-05-01 00:00\"" + tail + ",\"value\":1}");
    }

    @Test
    void textThatIsNotUtf8IsBadEncodingNeverMerged() {
        byte[] bytes = "{\"meter_id\":\"M?\",\"timestamp\":\"2024-05-01T00:00:00Z\",\"measurement_type\":\"Pulse1\",\"series\":\"P1\",\"unit\":\"L\",\"value\":1}"
                .getBytes(StandardCharsets.UTF_8);
        bytes[14] = (byte) 0xFF;
        assertFalse(ReadingParser.parse(bytes, r));
        assertEquals("bad_encoding", r.error);
        byte[] garbage = {(byte) 0xC3, (byte) 0x28, 0x7B};
        assertFalse(ReadingParser.parse(garbage, r));
        assertEquals("bad_encoding", r.error);
    }
}
