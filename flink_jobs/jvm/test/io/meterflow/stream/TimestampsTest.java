package io.meterflow.stream;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.time.DateTimeException;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.temporal.ChronoUnit;
import java.util.Random;

import org.junit.jupiter.api.Test;

/** The hand-written ISO 8601 reader agrees with {@code OffsetDateTime.parse} on every input. */
class TimestampsTest {

    private static long reference(String text) {
        try {
            return OffsetDateTime.parse(text).toInstant().truncatedTo(ChronoUnit.MILLIS).toEpochMilli();
        } catch (DateTimeException e) {
            return Timestamps.INVALID;
        }
    }

    @Test
    void commonShapes() {
        assertEquals(Instant.parse("2024-05-01T00:15:00Z").toEpochMilli(), Timestamps.parseMillis("2024-05-01T00:15:00Z"));
        assertEquals(Instant.parse("2024-04-30T14:15:00.123Z").toEpochMilli(),
                Timestamps.parseMillis("2024-05-01T00:15:00.123+10:00"));
        assertEquals(Instant.parse("2024-05-01T05:15:00.120Z").toEpochMilli(),
                Timestamps.parseMillis("2024-05-01T00:15:00.12-05:00"));
        // finer than a millisecond is truncated, never rounded
        assertEquals(Instant.parse("2024-05-01T00:15:00.999Z").toEpochMilli(),
                Timestamps.parseMillis("2024-05-01T00:15:00.999999999Z"));
        assertEquals(Instant.parse("2024-02-29T23:59:59Z").toEpochMilli(), Timestamps.parseMillis("2024-02-29T23:59:59Z"));
    }

    @Test
    void rejectsWhatIsNotAnInstantWithAnOffset() {
        for (String bad : new String[] {
            "2024-05-01T00:15:00", "2024-05-01 00:15:00Z", "2023-02-29T00:00:00Z", "2024-13-01T00:00:00Z",
            "2024-05-01T24:00:00Z", "2024-05-01T00:60:00Z", "2024-05-01T00:00:60Z",
            "2024-05-01T00:00:00+25:00", "yesterday", "", "2024-05-01T00:00:00ZZ", "2024-05-01T00:00:00.1234567891Z"}) {
            assertEquals(Timestamps.INVALID, Timestamps.parseMillis(bad), bad);
            assertEquals(reference(bad), Timestamps.parseMillis(bad), bad);
        }
    }

    @Test
    void shapesTheFastPathLeavesToJava() {
        for (String text : new String[] {"2024-05-01T10:15Z", "2024-05-01T10:15:30+0530", "+12024-05-01T10:15:30Z",
            "0000-01-01T00:00:00Z", "2024-05-01T10:15:30.5+05:30"}) {
            assertEquals(reference(text), Timestamps.parseMillis(text), text);
        }
    }

    @Test
    void agreesWithJavaOnRandomInstants() {
        Random random = new Random(7);
        String[] fractions = {"", ".1", ".12", ".123", ".1234", ".123456", ".123456789"};
        for (int i = 0; i < 20_000; i++) {
            long seconds = random.nextLong(-2_000_000_000L, 7_000_000_000L);
            int offsetMinutes = (random.nextInt(36 * 60) - 18 * 60) / 15 * 15;
            ZoneOffset offset = ZoneOffset.ofTotalSeconds(offsetMinutes * 60);
            String local = OffsetDateTime.ofInstant(Instant.ofEpochSecond(seconds), offset).toLocalDateTime()
                    .truncatedTo(ChronoUnit.SECONDS).toString();
            if (local.length() == 16) {
                local += ":00"; // LocalDateTime drops zero seconds
            }
            String zone = offsetMinutes == 0 && random.nextBoolean() ? "Z" : offset.getId().equals("Z") ? "+00:00" : offset.getId();
            String text = local + fractions[random.nextInt(fractions.length)] + zone;
            assertEquals(reference(text), Timestamps.parseMillis(text), text);
        }
    }
}
