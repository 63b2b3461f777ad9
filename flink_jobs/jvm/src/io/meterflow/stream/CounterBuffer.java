package io.meterflow.stream;

import java.util.HashMap;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Counts per (counter, minute of arrival) held in memory between two checkpoints.
 *
 * <p>Operators flush it downstream just before each checkpoint barrier (and when they finish),
 * so it never needs state of its own: after a failure, the replay from the last checkpoint counts
 * the same records again. Readings mostly arrive in order, so the last minute of each counter is
 * kept at hand.
 */
final class CounterBuffer {
    private static final long MINUTE_MS = 60_000L;

    private static final class Counter {
        final Map<Long, long[]> byMinute = new HashMap<>();
        long lastMinute = Long.MIN_VALUE;
        long[] last;
    }

    private final Map<String, Counter> counters = new HashMap<>();
    private String lastName;
    private Counter lastCounter;

    void add(String counter, long arrival) {
        Counter c;
        if (counter == lastName) {
            c = lastCounter; // the same constant as the record before: the usual case
        } else {
            c = counters.computeIfAbsent(counter, k -> new Counter());
            lastName = counter;
            lastCounter = c;
        }
        long minute = arrival - Math.floorMod(arrival, MINUTE_MS);
        if (minute != c.lastMinute) {
            c.lastMinute = minute;
            c.last = c.byMinute.computeIfAbsent(minute, k -> new long[1]);
        }
        c.last[0]++;
    }

    boolean isEmpty() {
        return counters.isEmpty();
    }

    /** Hands every count to {@code out} and forgets them. */
    void flush(Consumer<CounterCount> out) {
        for (Map.Entry<String, Counter> e : counters.entrySet()) {
            for (Map.Entry<Long, long[]> m : e.getValue().byMinute.entrySet()) {
                out.accept(new CounterCount(m.getKey(), e.getKey(), m.getValue()[0]));
            }
        }
        counters.clear();
        lastName = null;
        lastCounter = null;
    }
}
