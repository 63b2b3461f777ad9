package io.meterflow.stream;

/**
 * One Kafka record of the readings topic after parsing and validation.
 *
 * <p>A valid reading travels as its meter id, the index of its measurement in the plan (name,
 * series and unit are the plan's), its value and two instants; the raw payload is dropped after
 * the parse. A record that is not a valid reading carries its {@link #deadLetter} instead and
 * never leaves the source's chain.
 */
public final class Reading {
    public String meterId;
    public int measurement;
    public double value;
    /** Event time, epoch milliseconds. */
    public long eventTime;
    /** The Kafka record timestamp (arrival), epoch milliseconds. */
    public long ingestTime;
    public int partition;
    public long offset;
    /** Non-null when this record is not a valid reading. */
    public DeadLetter deadLetter;

    public Reading() {}

    boolean valid() {
        return deadLetter == null;
    }
}
