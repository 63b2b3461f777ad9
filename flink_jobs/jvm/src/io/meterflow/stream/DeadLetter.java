package io.meterflow.stream;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.Base64;
import java.util.HexFormat;

/**
 * A record that is not a valid reading, bounded: what the dead-letter topic receives.
 *
 * <p>The payload is kept as text when it is UTF-8 and as base64 otherwise, cut to the plan's
 * {@code dead_letter_payload_bytes} (the original size and its SHA-256 are always kept), so a
 * 1 MB poison pill becomes a small dead letter and never exceeds the producer's request size.
 *
 * <p>It is attributed to a meter and an instant where the record allows ({@link #attribute}), so a
 * meter's dead letters can be counted per day: {@link #meterId} is the meter id the payload names
 * when it is a valid one, else the Kafka key (producers key readings by meter), else empty;
 * {@link #eventTime} is the instant the payload's timestamp names, when it names one.
 */
public final class DeadLetter {
    /** The first and the last instant a dead letter's event time may be (ClickHouse's DateTime64 range). */
    static final long FIRST_EVENT_TIME = -2_208_988_800_000L; // 1900-01-01T00:00:00Z
    static final long LAST_EVENT_TIME = 10_413_791_999_999L; // 2299-12-31T23:59:59.999Z

    public String reason;
    public String detail;
    /** The meter the record belongs to, as far as it says; empty when it does not say. */
    public String meterId;
    /** The reading's instant (epoch milliseconds), or {@link Timestamps#INVALID} when it has none. */
    public long eventTime;
    public String payload;
    public String payloadEncoding;
    public int payloadBytes;
    public String payloadSha256;
    public boolean payloadTruncated;
    public int sourcePartition;
    public long sourceOffset;
    public long ingestTime;

    public DeadLetter() {}

    static DeadLetter of(String reason, String detail, byte[] raw, int limit, int partition, long offset, long ingestTime) {
        DeadLetter d = new DeadLetter();
        d.reason = reason;
        byte[] bytes = raw == null ? new byte[0] : raw;
        d.payloadBytes = bytes.length;
        d.payloadSha256 = sha256(bytes);
        d.payloadTruncated = bytes.length > limit;
        boolean text = ReadingParser.isUtf8(bytes);
        byte[] kept = d.payloadTruncated ? Arrays.copyOf(bytes, limit) : bytes;
        if (text) {
            // a cut may split a multi-byte character: drop the partial one
            String s = new String(kept, StandardCharsets.UTF_8);
            d.payload = d.payloadTruncated && s.endsWith("\uFFFD") ? s.substring(0, s.length() - 1) : s;
            d.payloadEncoding = "utf-8";
        } else {
            d.payload = Base64.getEncoder().encodeToString(kept);
            d.payloadEncoding = "base64";
        }
        d.detail = detail.length() > 1024 ? detail.substring(0, 1024) + "…" : detail;
        d.sourcePartition = partition;
        d.sourceOffset = offset;
        d.ingestTime = ingestTime;
        d.meterId = "";
        d.eventTime = Timestamps.INVALID;
        return d;
    }

    /**
     * Attributes the dead letter to a meter and an instant, from what the parser read of the payload
     * ({@code parsedMeterId}, {@code timestamp}: null when it read none) and the record's Kafka key.
     *
     * <p>The meter id is the parsed one when it is non-empty and at most {@code maxMeterIdChars}
     * long; else the key, when it is such a meter id in UTF-8; else empty. The key is decoded only
     * here, for a dead letter, never on the path of a valid reading. The event time is the
     * timestamp's instant when it is an ISO 8601 instant with an offset between 1900 and 2299
     * (a wilder clock is named in the detail; ClickHouse's DateTime64 holds no other).
     */
    DeadLetter attribute(String parsedMeterId, String timestamp, long parsedEventTime, byte[] key, int maxMeterIdChars) {
        meterId = meterId(parsedMeterId, key, maxMeterIdChars);
        long t = parsedEventTime;
        if (t == Timestamps.INVALID && timestamp != null && !timestamp.isEmpty()) {
            t = Timestamps.parseMillis(timestamp); // the parse stopped before the timestamp was checked
        }
        eventTime = t != Timestamps.INVALID && t >= FIRST_EVENT_TIME && t <= LAST_EVENT_TIME ? t : Timestamps.INVALID;
        return this;
    }

    private static String meterId(String parsed, byte[] key, int maxChars) {
        if (parsed != null && !parsed.isEmpty() && parsed.length() <= maxChars) {
            return parsed;
        }
        // a meter id of maxChars UTF-16 units takes at most 3 bytes a unit: a longer key is not one
        if (key == null || key.length == 0 || key.length > 3 * maxChars || !ReadingParser.isUtf8(key)) {
            return "";
        }
        String fromKey = new String(key, StandardCharsets.UTF_8);
        return fromKey.length() <= maxChars ? fromKey : "";
    }

    private static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JVM has no SHA-256", e);
        }
    }
}
