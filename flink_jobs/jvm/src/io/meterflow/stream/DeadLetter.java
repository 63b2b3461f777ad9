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
 */
public final class DeadLetter {
    public String reason;
    public String detail;
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
        return d;
    }

    private static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JVM has no SHA-256", e);
        }
    }
}
