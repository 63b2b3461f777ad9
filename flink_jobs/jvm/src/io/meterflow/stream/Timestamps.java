package io.meterflow.stream;

import java.time.DateTimeException;
import java.time.OffsetDateTime;
import java.time.temporal.ChronoUnit;

/**
 * ISO 8601 instants with a UTC offset → epoch milliseconds, on the hot path.
 *
 * <p>{@code OffsetDateTime.parse} costs about a microsecond a reading; the common shapes of the
 * reading contract ({@code 2024-05-01T10:15:00Z}, {@code …T10:15:00.123+10:00}) are read here
 * digit by digit, and anything else falls back to {@code OffsetDateTime.parse}, so the two agree
 * on every input. Fractions finer than a millisecond are truncated, as before.
 */
final class Timestamps {
    /** Returned when the text is not an ISO 8601 instant with an offset. */
    static final long INVALID = Long.MIN_VALUE;

    private static final int[] DAYS_BEFORE_MONTH = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};

    private Timestamps() {}

    static long parseMillis(String text) {
        long fast = fast(text);
        return fast != INVALID ? fast : slow(text);
    }

    private static long slow(String text) {
        try {
            return OffsetDateTime.parse(text).toInstant().truncatedTo(ChronoUnit.MILLIS).toEpochMilli();
        } catch (DateTimeException | ArithmeticException e) {
            return INVALID;
        }
    }

    /** yyyy-MM-ddTHH:mm:ss[.f{1,9}](Z|±HH:MM); INVALID when the text has another shape. */
    private static long fast(String s) {
        int n = s.length();
        if (n < 20 || s.charAt(4) != '-' || s.charAt(7) != '-' || s.charAt(10) != 'T'
                || s.charAt(13) != ':' || s.charAt(16) != ':') {
            return INVALID;
        }
        int year = digits(s, 0, 4);
        int month = digits(s, 5, 2);
        int day = digits(s, 8, 2);
        int hour = digits(s, 11, 2);
        int minute = digits(s, 14, 2);
        int second = digits(s, 17, 2);
        if ((year | month | day | hour | minute | second) < 0 || year < 1 || month < 1 || month > 12 || day < 1
                || day > monthLength(year, month) || hour > 23 || minute > 59 || second > 59) {
            return INVALID;
        }
        int i = 19;
        int millis = 0;
        if (s.charAt(i) == '.') {
            int start = ++i;
            while (i < n && s.charAt(i) >= '0' && s.charAt(i) <= '9') {
                if (i - start < 3) {
                    millis = millis * 10 + (s.charAt(i) - '0');
                }
                i++;
            }
            int count = i - start;
            if (count == 0 || count > 9) {
                return INVALID;
            }
            for (int k = count; k < 3; k++) {
                millis *= 10;
            }
        }
        if (i >= n) {
            return INVALID;
        }
        int offsetSeconds;
        char sign = s.charAt(i);
        if (sign == 'Z' && i == n - 1) {
            offsetSeconds = 0;
        } else if ((sign == '+' || sign == '-') && i + 6 == n && s.charAt(i + 3) == ':') {
            int oh = digits(s, i + 1, 2);
            int om = digits(s, i + 4, 2);
            if ((oh | om) < 0 || oh > 18 || om > 59) {
                return INVALID;
            }
            offsetSeconds = (oh * 3600 + om * 60) * (sign == '-' ? -1 : 1);
        } else {
            return INVALID;
        }
        long days = epochDay(year, month, day);
        long seconds = days * 86_400L + hour * 3600L + minute * 60L + second - offsetSeconds;
        return seconds * 1000L + millis;
    }

    private static int digits(String s, int from, int count) {
        int v = 0;
        for (int i = from; i < from + count; i++) {
            char c = s.charAt(i);
            if (c < '0' || c > '9') {
                return -1;
            }
            v = v * 10 + (c - '0');
        }
        return v;
    }

    private static boolean leap(int year) {
        return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    }

    private static int monthLength(int year, int month) {
        if (month == 2) {
            return leap(year) ? 29 : 28;
        }
        return (month == 4 || month == 6 || month == 9 || month == 11) ? 30 : 31;
    }

    /** Days since 1970-01-01 of a proleptic Gregorian date (years 0..9999). */
    private static long epochDay(int year, int month, int day) {
        long y = year - 1;
        long daysBeforeYear = 365 * y + y / 4 - y / 100 + y / 400;
        long doy = DAYS_BEFORE_MONTH[month - 1] + day - 1 + (month > 2 && leap(year) ? 1 : 0);
        return daysBeforeYear + doy - 719_162L; // days from 0001-01-01 to 1970-01-01
    }
}
