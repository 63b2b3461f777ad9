package io.meterflow.batch;

import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Daily rows in columns, and their wire form: one block of big-endian columns that Python reads
 * with numpy ({@code flink_jobs/batch/daily.py}, which documents the layout). Doubles travel as
 * their IEEE bits, so nothing is rounded on the way.
 *
 * <p>One row per meter x measurement x series x local day of the scan, the columns of
 * {@code DAILY_COLUMNS} (measurement, series and kind are the measurement's position in the plan,
 * the day its position in the scan).
 */
public final class DailyRows {
    /** Rows per block: a block stays well below the collect sink's batch size (2 MB). */
    public static final int BLOCK_ROWS = 4096;
    static final int MAGIC = 0x4d464431; // "MFD1"

    private int size;
    private String[] meter = new String[16];
    private byte[] measurement = new byte[16];
    private short[] day = new short[16];
    private String[] unit = new String[16];
    private long[] readings = new long[16];
    private double[] sum = new double[16];
    private double[] avg = new double[16];
    private double[] min = new double[16];
    private double[] max = new double[16];
    private double[] consumption = new double[16];
    private boolean[] hasConsumption = new boolean[16];
    private long[] firstMs = new long[16];
    private long[] lastMs = new long[16];
    private double[] firstValue = new double[16];
    private double[] lastValue = new double[16];
    private boolean[] unanchored = new boolean[16];
    private int[] resets = new int[16];
    private int[] negativeSteps = new int[16];
    private double[] negativeTotal = new double[16];
    private long[] maxGapMs = new long[16];
    private boolean[] hasGap = new boolean[16];
    private int[] late = new int[16];
    private int[] duplicates = new int[16];
    private int[] clockAhead = new int[16];
    private long[] maxAheadMs = new long[16];
    private boolean[] hasArrival = new boolean[16];
    private long[] maxFlatMs = new long[16];

    public int size() {
        return size;
    }

    /** Appends one row (see {@link MeterReadings.Group} for what each field holds). */
    void add(String meterId, MeterReadings.Group g, String unitText) {
        if (size == meter.length) {
            grow(size * 2);
        }
        int i = size++;
        meter[i] = meterId;
        measurement[i] = (byte) g.measurement;
        day[i] = (short) g.day;
        unit[i] = unitText;
        readings[i] = g.readings;
        sum[i] = g.sum;
        avg[i] = g.sum / g.readings;
        min[i] = g.min;
        max[i] = g.max;
        consumption[i] = g.consumption;
        hasConsumption[i] = g.hasConsumption;
        firstMs[i] = g.firstMs;
        lastMs[i] = g.lastMs;
        firstValue[i] = g.firstValue;
        lastValue[i] = g.lastValue;
        unanchored[i] = g.unanchored;
        resets[i] = g.resets;
        negativeSteps[i] = g.negativeSteps;
        negativeTotal[i] = g.negativeTotal;
        maxGapMs[i] = g.maxGapMs;
        hasGap[i] = g.hasGap;
        late[i] = g.late;
        duplicates[i] = g.duplicates;
        clockAhead[i] = g.clockAhead;
        maxAheadMs[i] = g.maxAheadMs;
        hasArrival[i] = g.hasArrival;
        maxFlatMs[i] = g.maxFlatMs;
    }

    /** Forgets the rows (the arrays are kept for the next block). */
    void clear() {
        Arrays.fill(meter, 0, size, null);
        Arrays.fill(unit, 0, size, null);
        size = 0;
    }

    private void grow(int capacity) {
        meter = Arrays.copyOf(meter, capacity);
        measurement = Arrays.copyOf(measurement, capacity);
        day = Arrays.copyOf(day, capacity);
        unit = Arrays.copyOf(unit, capacity);
        readings = Arrays.copyOf(readings, capacity);
        sum = Arrays.copyOf(sum, capacity);
        avg = Arrays.copyOf(avg, capacity);
        min = Arrays.copyOf(min, capacity);
        max = Arrays.copyOf(max, capacity);
        consumption = Arrays.copyOf(consumption, capacity);
        hasConsumption = Arrays.copyOf(hasConsumption, capacity);
        firstMs = Arrays.copyOf(firstMs, capacity);
        lastMs = Arrays.copyOf(lastMs, capacity);
        firstValue = Arrays.copyOf(firstValue, capacity);
        lastValue = Arrays.copyOf(lastValue, capacity);
        unanchored = Arrays.copyOf(unanchored, capacity);
        resets = Arrays.copyOf(resets, capacity);
        negativeSteps = Arrays.copyOf(negativeSteps, capacity);
        negativeTotal = Arrays.copyOf(negativeTotal, capacity);
        maxGapMs = Arrays.copyOf(maxGapMs, capacity);
        hasGap = Arrays.copyOf(hasGap, capacity);
        late = Arrays.copyOf(late, capacity);
        duplicates = Arrays.copyOf(duplicates, capacity);
        clockAhead = Arrays.copyOf(clockAhead, capacity);
        maxAheadMs = Arrays.copyOf(maxAheadMs, capacity);
        hasArrival = Arrays.copyOf(hasArrival, capacity);
        maxFlatMs = Arrays.copyOf(maxFlatMs, capacity);
    }

    /**
     * The block: magic, row count, then the columns in order — meter ids (int32 UTF-8 lengths, then
     * the bytes), measurement (int8), day (int16), unit (likewise), readings
     * (int64), sum, avg, min, max (float64), consumption (float64) and its presence (int8),
     * first_ms, last_ms (int64), first_value, last_value (float64), unanchored (int8), resets,
     * negative_steps (int32), negative_total (float64), max_gap_ms (int64) and its presence (int8),
     * late_readings, duplicates, clock_ahead (int32), max_ahead_ms (int64) and its presence (int8),
     * max_flat_ms (int64).
     */
    public byte[] toBytes() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream(size * 140 + 64);
        try (DataOutputStream out = new DataOutputStream(bytes)) {
            out.writeInt(MAGIC);
            out.writeInt(size);
            writeStrings(out, meter);
            for (int i = 0; i < size; i++) out.writeByte(measurement[i]);
            for (int i = 0; i < size; i++) out.writeShort(day[i]);
            writeStrings(out, unit);
            for (int i = 0; i < size; i++) out.writeLong(readings[i]);
            writeDoubles(out, sum);
            writeDoubles(out, avg);
            writeDoubles(out, min);
            writeDoubles(out, max);
            writeDoubles(out, consumption);
            writeFlags(out, hasConsumption);
            for (int i = 0; i < size; i++) out.writeLong(firstMs[i]);
            for (int i = 0; i < size; i++) out.writeLong(lastMs[i]);
            writeDoubles(out, firstValue);
            writeDoubles(out, lastValue);
            writeFlags(out, unanchored);
            for (int i = 0; i < size; i++) out.writeInt(resets[i]);
            for (int i = 0; i < size; i++) out.writeInt(negativeSteps[i]);
            writeDoubles(out, negativeTotal);
            for (int i = 0; i < size; i++) out.writeLong(maxGapMs[i]);
            writeFlags(out, hasGap);
            for (int i = 0; i < size; i++) out.writeInt(late[i]);
            for (int i = 0; i < size; i++) out.writeInt(duplicates[i]);
            for (int i = 0; i < size; i++) out.writeInt(clockAhead[i]);
            for (int i = 0; i < size; i++) out.writeLong(maxAheadMs[i]);
            writeFlags(out, hasArrival);
            for (int i = 0; i < size; i++) out.writeLong(maxFlatMs[i]);
        } catch (IOException e) {
            throw new UncheckedIOException(e); // a byte array does not fail
        }
        return bytes.toByteArray();
    }

    /** Strings as their UTF-8 byte lengths (int32 each), then all their bytes. */
    private void writeStrings(DataOutputStream out, String[] values) throws IOException {
        byte[][] utf8 = new byte[size][];
        for (int i = 0; i < size; i++) {
            utf8[i] = values[i].getBytes(StandardCharsets.UTF_8);
            out.writeInt(utf8[i].length);
        }
        for (int i = 0; i < size; i++) out.write(utf8[i]);
    }

    private void writeDoubles(DataOutputStream out, double[] values) throws IOException {
        for (int i = 0; i < size; i++) out.writeDouble(values[i]);
    }

    private void writeFlags(DataOutputStream out, boolean[] values) throws IOException {
        for (int i = 0; i < size; i++) out.writeByte(values[i] ? 1 : 0);
    }
}
