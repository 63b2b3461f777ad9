package io.meterflow.stream;

/** One closed window of one (meter, measurement, series): what ClickHouse's {@code readings_agg} holds. */
public final class WindowResult {
    public String meterId;
    public int measurement;
    public long windowStart;
    public long windowEnd;
    public long readings;
    public double sum;
    public double min;
    public double max;
    public double stddev;
    /** NaN for gauges (no consumption). */
    public double consumption;

    public WindowResult() {}
}
