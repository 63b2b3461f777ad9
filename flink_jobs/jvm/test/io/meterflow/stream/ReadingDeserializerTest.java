package io.meterflow.stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Instant;

import org.apache.flink.util.Collector;
import org.junit.jupiter.api.Test;

/** The spec's validation: measurement, unit, range, meter id and clock bounds. */
class ReadingDeserializerTest {
    static final String PLAN = "{\"pipeline\":\"p\",\"job_name\":\"j\",\"parallelism\":1,"
            + "\"measurements\":[{\"name\":\"Pulse1\",\"series\":\"P1\",\"unit\":\"L\",\"kind\":\"interval\","
            + "\"interval_ms\":900000,\"consumption_factor\":1.0,\"min\":0.0,\"max\":100000.0,\"range_text\":\"[0.0, 100000.0]\"},"
            + "{\"name\":\"Pulse1_Total\",\"series\":\"T1\",\"unit\":\"L\",\"kind\":\"register\",\"interval_ms\":900000,"
            + "\"consumption_factor\":0.0,"
            + "\"min\":0.0,\"max\":null,\"range_text\":\"[0.0, inf]\"}],"
            + "\"rules\":[{\"name\":\"HIGH_FLOW\",\"kind\":\"threshold\",\"measurement\":\"Pulse1\",\"condition\":\">\",\"threshold\":500.0,"
            + "\"severity\":\"WARNING\"}],"
            + "\"time_zone\":\"Australia/Brisbane\","
            + "\"windows\":{\"size_ms\":300000,\"slide_ms\":300000,\"grace_ms\":60000},\"register_reset_ratio\":0.1,"
            + "\"aggregate_columns\":[],\"dedup_ttl_ms\":93600000,\"idle_timeout_ms\":0,\"dead_letter_payload_bytes\":16384,"
            + "\"max_meter_id_chars\":8,\"max_clock_skew_ms\":3600000,\"max_reading_age_ms\":86400000,"
            + "\"kafka\":{\"bootstrap\":\"b\",\"group_id\":\"g\",\"topics\":{\"readings\":\"r\",\"dlq\":\"d\",\"aggregates\":\"a\","
            + "\"alerts\":\"al\",\"counters\":\"c\",\"alert_commands\":\"ac\"},\"transactional_id_prefix\":\"t\",\"source_properties\":{}},"
            + "\"lake\":{\"catalog_name\":\"m\",\"catalog_properties\":{},\"namespace\":\"n\",\"table\":\"readings\"}}";

    static final long ARRIVAL = Instant.parse("2024-05-01T12:00:00Z").toEpochMilli();

    private final ReadingDeserializer deserializer = new ReadingDeserializer(Plan.fromJson(PLAN));

    private Reading read(String meter, String stamp, String measurement, String series, String unit, String value) {
        return read(meter, json(meter, stamp, measurement, series, unit, value).getBytes(StandardCharsets.UTF_8));
    }

    private static String json(String meter, String stamp, String measurement, String series, String unit, String value) {
        return "{\"meter_id\":\"" + meter + "\",\"timestamp\":\"" + stamp + "\",\"measurement_type\":\""
                + measurement + "\",\"series\":\"" + series + "\",\"unit\":\"" + unit + "\",\"value\":" + value + "}";
    }

    /** The record with this key (null: none) and value, as the source hands it over. */
    private Reading read(String key, byte[] payload) {
        return read(key == null ? null : key.getBytes(StandardCharsets.UTF_8), payload);
    }

    private Reading read(byte[] key, byte[] payload) {
        Reading[] out = new Reading[1];
        deserializer.deserializeValue(key, payload, 1, 7L, ARRIVAL, new Collector<>() {
            @Override
            public void collect(Reading record) {
                out[0] = record;
            }

            @Override
            public void close() {}
        });
        return out[0];
    }

    private void rejects(String reason, Reading r) {
        assertEquals(reason, r.deadLetter == null ? null : r.deadLetter.reason);
        assertTrue(r.deadLetter.detail.length() > 10, r.deadLetter.detail);
        assertEquals(7L, r.deadLetter.sourceOffset);
    }

    @Test
    void aValidReadingCarriesItsMeasurementIndex() {
        Reading r = read("M1", "2024-05-01T11:00:00Z", "Pulse1_Total", "T1", "L", "1234.5");
        assertNull(r.deadLetter);
        assertEquals(1, r.measurement);
        assertEquals(1234.5, r.value);
        assertEquals(ARRIVAL - 3_600_000L, r.eventTime);
        assertEquals(ARRIVAL, r.ingestTime);
    }

    @Test
    void theSpecsRules() {
        rejects("unknown_measurement", read("M1", "2024-05-01T11:00:00Z", "Pulse2", "P1", "L", "1"));
        rejects("unknown_measurement", read("M1", "2024-05-01T11:00:00Z", "Pulse1", "T1", "L", "1"));
        rejects("unit_mismatch", read("M1", "2024-05-01T11:00:00Z", "Pulse1", "P1", "kL", "1"));
        rejects("out_of_range", read("M1", "2024-05-01T11:00:00Z", "Pulse1", "P1", "L", "100001"));
        rejects("out_of_range", read("M1", "2024-05-01T11:00:00Z", "Pulse1_Total", "T1", "L", "-1"));
        rejects("bad_meter_id", read("M123456789", "2024-05-01T11:00:00Z", "Pulse1", "P1", "L", "1"));
    }

    @Test
    void clocksAreBoundedAgainstArrival() {
        assertNull(read("M1", "2024-05-01T13:00:00Z", "Pulse1", "P1", "L", "1").deadLetter); // an hour ahead: allowed
        rejects("future_timestamp", read("M1", "2024-05-01T13:00:00.001Z", "Pulse1", "P1", "L", "1"));
        rejects("future_timestamp", read("M1", "2100-01-01T00:00:00Z", "Pulse1", "P1", "L", "1"));
        assertNull(read("M1", "2024-04-30T12:00:00Z", "Pulse1", "P1", "L", "1").deadLetter); // a day behind: allowed
        rejects("too_old", read("M1", "1970-01-01T00:00:00Z", "Pulse1", "P1", "L", "1"));
    }

    private static long at(String instant) {
        return Instant.parse(instant).toEpochMilli();
    }

    private static void attributed(String meterId, long eventTime, Reading r) {
        assertEquals(meterId, r.deadLetter.meterId);
        assertEquals(eventTime, r.deadLetter.eventTime);
    }

    @Test
    void aDeadLetterNamesTheMeterAndTheInstantItsPayloadNames() {
        Reading r = read("OTHER", json("M1", "2024-05-01T11:00:00+10:00", "Pulse1", "P1", "L", "100001").getBytes(StandardCharsets.UTF_8));
        rejects("out_of_range", r);
        attributed("M1", at("2024-05-01T01:00:00Z"), r); // the payload's meter id wins over the key
        // stopped before the timestamp was checked: it is read for the dead letter all the same
        attributed("M1", at("2024-05-01T11:00:00Z"), read("M1", "2024-05-01T11:00:00Z", "Pulse1", "P1", "L", "NaN"));
        attributed("M1", at("2100-01-01T00:00:00Z"), read("M1", "2100-01-01T00:00:00Z", "Pulse1", "P1", "L", "1"));
    }

    @Test
    void aDeadLetterWithoutAMeterIdOfItsOwnTakesTheKey() {
        Reading badJson = read("m-7", "not json at all".getBytes(StandardCharsets.UTF_8));
        rejects("bad_json", badJson);
        attributed("m-7", Timestamps.INVALID, badJson);
        Reading tooLong = read("M2", json("M123456789", "2024-05-01T11:00:00Z", "Pulse1", "P1", "L", "1")
                .getBytes(StandardCharsets.UTF_8));
        rejects("bad_meter_id", tooLong);
        attributed("M2", at("2024-05-01T11:00:00Z"), tooLong);
        Reading wrongType = read("M3", "{\"meter_id\":true,\"timestamp\":\"2024-05-01T11:00:00Z\"}".getBytes(StandardCharsets.UTF_8));
        rejects("wrong_type", wrongType);
        attributed("M3", Timestamps.INVALID, wrongType); // the parse stopped at the meter id, before the timestamp
        // a payload that is not UTF-8 names nothing that is trusted, even where its meter id is whole
        String text = json("M1", "2024-05-01T11:00:00Z", "Pulse1", "P1", "L?", "1");
        byte[] notUtf8 = text.getBytes(StandardCharsets.UTF_8);
        notUtf8[text.indexOf("L?") + 1] = (byte) 0xFF; // ASCII before it: the character's index is its byte's
        Reading badEncoding = read("M4", notUtf8);
        rejects("bad_encoding", badEncoding);
        attributed("M4", Timestamps.INVALID, badEncoding);
    }

    @Test
    void aDeadLetterWithNoValidMeterIdAnywhereHasAnEmptyOne() {
        byte[] garbage = "{\"meter_id\":".getBytes(StandardCharsets.UTF_8);
        attributed("", Timestamps.INVALID, read((String) null, garbage));
        attributed("", Timestamps.INVALID, read("", garbage));
        attributed("", Timestamps.INVALID, read("M123456789", garbage)); // too long a key
        attributed("", Timestamps.INVALID, read(new byte[] {(byte) 0xFF, 0x41}, garbage)); // not UTF-8
        Reading longBoth = read("M123456789", json("M123456789", "1899-12-31T23:59:59Z", "Pulse1", "P1", "L", "1")
                .getBytes(StandardCharsets.UTF_8));
        rejects("bad_meter_id", longBoth);
        attributed("", Timestamps.INVALID, longBoth); // and a clock before 1900 is named only in the detail
    }

    @Test
    void aValidReadingIgnoresTheKey() {
        Reading r = read("ANY", json("M1", "2024-05-01T11:00:00Z", "Pulse1", "P1", "L", "1").getBytes(StandardCharsets.UTF_8));
        assertNull(r.deadLetter);
        assertEquals("M1", r.meterId);
    }
}
