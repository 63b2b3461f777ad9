package io.meterflow.stream;

/**
 * A count of one ingest counter ({@code valid}, {@code dlq:<reason>}, {@code on_time},
 * {@code late}) in one minute of arrival: an increment on its way to {@link CounterOperator}, the
 * running total on its way out of it.
 */
public final class CounterCount {
    /** The minute of arrival (Kafka record timestamp), epoch milliseconds. */
    public long minute;
    public String counter;
    public long count;

    public CounterCount() {}

    CounterCount(long minute, String counter, long count) {
        this.minute = minute;
        this.counter = counter;
        this.count = count;
    }

    /** The key the counter operator partitions by: one counter in one minute. */
    String key() {
        return minute + "|" + counter;
    }
}
