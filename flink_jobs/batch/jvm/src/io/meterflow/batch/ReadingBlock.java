package io.meterflow.batch;

/**
 * Up to {@link #CAPACITY} rows of the Iceberg {@code readings} table in columns, as the batch job
 * needs them: one Flink record carries a block, so the source hands readings to the operator
 * without a record (or an object) per reading.
 */
public final class ReadingBlock {
    public static final int CAPACITY = 4096;
    /** Measurement index for a reading of a measurement the spec does not declare (skipped). */
    public static final byte UNDECLARED = -1;
    /** A missing ingest time or Kafka offset: it sorts first, where Flink SQL's {@code ORDER BY} put nulls. */
    public static final long NULL_LONG = Long.MIN_VALUE;
    /** A missing Kafka partition (sorts first). */
    public static final int NULL_INT = Integer.MIN_VALUE;

    public int size;
    /** Interned: every reading of a meter holds the same String. */
    public String[] meter = new String[CAPACITY];
    /** The meter's index, dense from 0 in the order the source first met the meters. */
    public int[] meterIndex = new int[CAPACITY];
    /** Position of the reading's (measurement, series) in {@link DailyPlan#measurements}, or {@link #UNDECLARED}. */
    public byte[] measurement = new byte[CAPACITY];
    public double[] value = new double[CAPACITY];
    public long[] eventMicros = new long[CAPACITY];
    public long[] ingestMicros = new long[CAPACITY];
    public int[] partition = new int[CAPACITY];
    public long[] offset = new long[CAPACITY];
    public boolean[] late = new boolean[CAPACITY];
    /** The reading's unit where it differs from its measurement's (validation makes that rare); else null. */
    public String[] unit = new String[CAPACITY];

    public ReadingBlock() {}

    public boolean full() {
        return size == CAPACITY;
    }
}
