package io.meterflow.stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.Arrays;
import java.util.Base64;

import org.apache.flink.kafka.shaded.org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

/** A dead letter is bounded whatever arrives, says what was cut, and whose it is. */
class DeadLetterTest {

    @Test
    void smallTextIsKeptAsItIs() {
        byte[] raw = "{\"meter_id\":\"é\"}".getBytes(StandardCharsets.UTF_8);
        DeadLetter d = DeadLetter.of("bad_json", "why", raw, 16384, 2, 99L, 1000L);
        assertEquals("{\"meter_id\":\"é\"}", d.payload);
        assertEquals("utf-8", d.payloadEncoding);
        assertEquals(raw.length, d.payloadBytes);
        assertFalse(d.payloadTruncated);
        assertEquals(64, d.payloadSha256.length());
        assertEquals(2, d.sourcePartition);
        assertEquals(99L, d.sourceOffset);
    }

    @Test
    void aPoisonPillIsCutToTheLimit() {
        byte[] raw = new byte[1 << 20];
        Arrays.fill(raw, (byte) '"');
        DeadLetter d = DeadLetter.of("bad_json", "x".repeat(5000), raw, 16384, 0, 0L, 0L);
        assertEquals(16384, d.payload.length());
        assertTrue(d.payloadTruncated);
        assertEquals(1 << 20, d.payloadBytes);
        assertTrue(d.detail.length() <= 1025);
    }

    @Test
    void bytesThatAreNotTextAreBase64() {
        byte[] raw = {(byte) 0xFF, (byte) 0xFE, 0x00, 0x41};
        DeadLetter d = DeadLetter.of("bad_encoding", "not UTF-8", raw, 16384, 0, 0L, 0L);
        assertEquals("base64", d.payloadEncoding);
        assertEquals(Base64.getEncoder().encodeToString(raw), d.payload);
    }

    @Test
    void aCutNeverSplitsACharacter() {
        byte[] raw = "ééééé".getBytes(StandardCharsets.UTF_8); // 10 bytes
        DeadLetter d = DeadLetter.of("bad_json", "why", raw, 5, 0, 0L, 0L);
        assertEquals("éé", d.payload);
        assertTrue(d.payloadTruncated);
    }

    @Test
    void theRecordIsKeyedByItsMeterAndNamesItsMeterAndInstant() throws Exception {
        byte[] raw = "{\"meter_id\":\"m-1\"}".getBytes(StandardCharsets.UTF_8);
        DeadLetter d = DeadLetter.of("out_of_range", "why", raw, 16384, 2, 99L, 1000L)
                .attribute("m-1", "2024-05-01T10:15:00+10:00", Timestamps.INVALID, null, 128);
        ProducerRecord<byte[], byte[]> record = new KafkaRecords.DeadLetters("p.readings.dlq", "p").serialize(d, null, null);
        assertArrayEquals("m-1".getBytes(StandardCharsets.UTF_8), record.key());
        JsonNode json = new ObjectMapper().readTree(record.value());
        assertEquals("m-1", json.get("meter_id").asText());
        assertEquals("2024-05-01T00:15:00Z", json.get("event_time").asText());
        assertEquals(Instant.parse("2024-05-01T00:15:00Z").toEpochMilli(), d.eventTime);
        assertEquals("1970-01-01T00:00:01Z", json.get("ingest_time").asText());
        assertEquals(2, json.get("source_partition").asInt());
    }

    @Test
    void aDeadLetterOfNoMeterHasNoKeyAndANullInstant() throws Exception {
        DeadLetter d = DeadLetter.of("bad_json", "why", new byte[0], 16384, 0, 0L, 0L);
        assertEquals("", d.meterId);
        assertEquals(Timestamps.INVALID, d.eventTime);
        ProducerRecord<byte[], byte[]> record = new KafkaRecords.DeadLetters("p.readings.dlq", "p").serialize(d, null, null);
        assertNull(record.key());
        JsonNode json = new ObjectMapper().readTree(record.value());
        assertEquals("", json.get("meter_id").asText());
        assertTrue(json.get("event_time").isNull());
    }

    @Test
    void aKeyIsAMeterIdOnlyWhenItIsOne() {
        byte[] raw = new byte[0];
        String bound = "x".repeat(8);
        assertEquals(bound, DeadLetter.of("bad_json", "", raw, 16, 0, 0L, 0L)
                .attribute(null, null, Timestamps.INVALID, bound.getBytes(StandardCharsets.UTF_8), 8).meterId);
        assertEquals("", DeadLetter.of("bad_json", "", raw, 16, 0, 0L, 0L)
                .attribute(null, null, Timestamps.INVALID, (bound + "x").getBytes(StandardCharsets.UTF_8), 8).meterId);
        String wide = "é".repeat(8); // 16 bytes, 8 characters
        assertEquals(wide, DeadLetter.of("bad_json", "", raw, 16, 0, 0L, 0L)
                .attribute("", null, Timestamps.INVALID, wide.getBytes(StandardCharsets.UTF_8), 8).meterId);
    }

    @Test
    void anEventTimeOutsideWhatClickHouseHoldsIsNone() {
        byte[] raw = new byte[0];
        assertEquals(DeadLetter.LAST_EVENT_TIME, DeadLetter.of("too_old", "", raw, 16, 0, 0L, 0L)
                .attribute("m", "2299-12-31T23:59:59.999Z", Timestamps.INVALID, null, 8).eventTime);
        assertEquals(Timestamps.INVALID, DeadLetter.of("future_timestamp", "", raw, 16, 0, 0L, 0L)
                .attribute("m", "+10000-01-01T00:00:00Z", Timestamps.INVALID, null, 8).eventTime);
        assertEquals(Timestamps.INVALID, DeadLetter.of("future_timestamp", "", raw, 16, 0, 0L, 0L)
                .attribute("m", "2300-01-01T00:00:00Z", Timestamps.INVALID, null, 8).eventTime);
        assertEquals(Timestamps.INVALID, DeadLetter.of("too_old", "", raw, 16, 0, 0L, 0L)
                .attribute("m", "1899-12-31T23:59:59.999Z", Timestamps.INVALID, null, 8).eventTime);
        assertEquals(DeadLetter.FIRST_EVENT_TIME, DeadLetter.of("too_old", "", raw, 16, 0, 0L, 0L)
                .attribute("m", "1900-01-01T00:00:00Z", Timestamps.INVALID, null, 8).eventTime);
        assertEquals(Timestamps.INVALID, DeadLetter.of("bad_timestamp", "", raw, 16, 0, 0L, 0L)
                .attribute("m", "01/05/2024 10:00:00", Timestamps.INVALID, null, 8).eventTime);
    }
}
