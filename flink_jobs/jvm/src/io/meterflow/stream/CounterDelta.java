package io.meterflow.stream;

/** An increment of one ingest counter ({@code valid}, {@code dlq:<reason>}, {@code on_time}, {@code late}) in one minute of arrival. */
public final class CounterDelta {
    /** The minute of arrival (Kafka record timestamp), epoch milliseconds. */
    public long minute;
    public String counter;
    public long delta;

    public CounterDelta() {}

    CounterDelta(long minute, String counter, long delta) {
        this.minute = minute;
        this.counter = counter;
        this.delta = delta;
    }

    /** The key the counter operator partitions by: one counter in one minute. */
    String key() {
        return minute + "|" + counter;
    }
}
