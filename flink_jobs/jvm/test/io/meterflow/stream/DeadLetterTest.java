package io.meterflow.stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Base64;

import org.junit.jupiter.api.Test;

/** A dead letter is bounded whatever arrives, and says what was cut. */
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
}
