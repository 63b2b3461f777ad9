package io.meterflow.batch;

import java.io.ByteArrayInputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.LocalDate;
import java.time.ZoneId;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** Plans, reading blocks and a decoder of {@link DailyRows#toBytes()} for the batch tests. */
final class DailyFixtures {
    /** Measurement positions in {@link #plan}. */
    static final int PULSE = 0, TOTAL = 1, BATTERY = 2, TEMP = 3, POWER = 4;
    /** What Python sends as the consumption factor of a power measurement read every minute (kW → kWh). */
    static final double PER_MINUTE = 60_000.0 / 3_600_000.0;

    private DailyFixtures() {}

    /** The water spec's measurements (interval, register, battery gauge, plain gauge) and a minutely kW power; reset at 10 %. */
    static DailyPlan plan(long... dayStartsMs) {
        List<DailyPlan.Measurement> m = List.of(
                new DailyPlan.Measurement("Pulse1", "P1", "L", DailyPlan.Kind.INTERVAL, 1.0, false),
                new DailyPlan.Measurement("Pulse1_Total", "T1", "L", DailyPlan.Kind.REGISTER, 0.0, false),
                new DailyPlan.Measurement("Battery", "V", "V", DailyPlan.Kind.GAUGE, 0.0, true),
                new DailyPlan.Measurement("Temperature", "C", "C", DailyPlan.Kind.GAUGE, 0.0, false),
                new DailyPlan.Measurement("active", "house", "kW", DailyPlan.Kind.POWER, PER_MINUTE, false));
        return new DailyPlan("meterflow-batch-test", 1, "meterflow", Map.of(), "ns", "readings", null,
                dayStartsMs, m, 0.1, 60_000L, new double[] {10.0, 64.0, 13.0, 3.0, 0.6}, "/tmp/rows.bin");
    }

    /** Epoch milliseconds of an ISO instant ({@code 2024-03-30T22:00:00Z}). */
    static long ms(String instant) {
        return Instant.parse(instant).toEpochMilli();
    }

    /** Epoch microseconds of an ISO instant (sub-millisecond digits kept). */
    static long micros(String instant) {
        Instant t = Instant.parse(instant);
        return Math.addExact(Math.multiplyExact(t.getEpochSecond(), 1_000_000L), t.getNano() / 1000);
    }

    /** The local day's start in {@code zone}, as Python's {@code days.day_bounds} computes it. */
    static long dayStart(String day, String zone) {
        return LocalDate.parse(day).atStartOfDay(ZoneId.of(zone)).toInstant().toEpochMilli();
    }

    /** Readings of one meter, added to a block as the source would. */
    static final class Readings {
        final ReadingBlock block = new ReadingBlock();

        /** An on-time reading with no ingest time/partition/offset and the measurement's usual unit. */
        Readings add(int measurement, long eventMicros, double value) {
            return add(measurement, eventMicros, value, ReadingBlock.NULL_LONG, ReadingBlock.NULL_INT,
                    ReadingBlock.NULL_LONG, false, null);
        }

        Readings add(int measurement, long eventMicros, double value, long ingestMicros, int partition, long offset,
                     boolean late, String unit) {
            ReadingBlock b = block;
            int j = b.size++;
            b.meter[j] = "m-1";
            b.meterIndex[j] = 0;
            b.measurement[j] = (byte) measurement;
            b.eventMicros[j] = eventMicros;
            b.value[j] = value;
            b.ingestMicros[j] = ingestMicros;
            b.partition[j] = partition;
            b.offset[j] = offset;
            b.late[j] = late;
            b.unit[j] = unit;
            return this;
        }

        /** The daily rows of these readings (via {@link MeterReadings#emit} and the wire form). */
        List<Row> daily(DailyPlan plan) {
            return daily(plan, "m-1");
        }

        List<Row> daily(DailyPlan plan, String meterId) {
            MeterReadings meter = new MeterReadings(meterId);
            for (int j = 0; j < block.size; j++) {
                meter.add(block, j);
            }
            DailyRows rows = new DailyRows();
            meter.emit(plan, micros(plan), rows);
            return decode(rows.toBytes());
        }
    }

    /** The plan's day starts in microseconds, as {@link DailyOperator#open} makes them. */
    static long[] micros(DailyPlan plan) {
        long[] out = new long[plan.dayStartsMs.length];
        for (int i = 0; i < out.length; i++) {
            out[i] = plan.dayStartsMs[i] * 1000L;
        }
        return out;
    }

    /** One decoded daily row (the columns of {@code daily._FIXED}, Python's reading of the block). */
    static final class Row {
        String meter;
        int measurement;
        int day;
        String unit;
        long readings;
        double sum, avg, min, max, consumption;
        boolean hasConsumption;
        long firstMs, lastMs;
        double firstValue, lastValue;
        boolean unanchored;
        int resets, negativeSteps;
        double negativeTotal;
        long maxGapMs;
        boolean hasGap;
        int late;
        int duplicates, clockAhead;
        long maxAheadMs;
        boolean hasArrival;
        long maxFlatMs;
    }

    /** The rows of one block, read as {@code flink_jobs/batch/daily.py} reads it. */
    static List<Row> decode(byte[] block) {
        try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(block))) {
            if (in.readInt() != DailyRows.MAGIC) {
                throw new AssertionError("no MFD1 magic");
            }
            int n = in.readInt();
            List<Row> rows = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                rows.add(new Row());
            }
            String[] meters = strings(in, n);
            for (int i = 0; i < n; i++) rows.get(i).meter = meters[i];
            for (Row r : rows) r.measurement = in.readByte();
            for (Row r : rows) r.day = in.readShort();
            String[] units = strings(in, n);
            for (int i = 0; i < n; i++) rows.get(i).unit = units[i];
            for (Row r : rows) r.readings = in.readLong();
            for (Row r : rows) r.sum = in.readDouble();
            for (Row r : rows) r.avg = in.readDouble();
            for (Row r : rows) r.min = in.readDouble();
            for (Row r : rows) r.max = in.readDouble();
            for (Row r : rows) r.consumption = in.readDouble();
            for (Row r : rows) r.hasConsumption = flag(in);
            for (Row r : rows) r.firstMs = in.readLong();
            for (Row r : rows) r.lastMs = in.readLong();
            for (Row r : rows) r.firstValue = in.readDouble();
            for (Row r : rows) r.lastValue = in.readDouble();
            for (Row r : rows) r.unanchored = flag(in);
            for (Row r : rows) r.resets = in.readInt();
            for (Row r : rows) r.negativeSteps = in.readInt();
            for (Row r : rows) r.negativeTotal = in.readDouble();
            for (Row r : rows) r.maxGapMs = in.readLong();
            for (Row r : rows) r.hasGap = flag(in);
            for (Row r : rows) r.late = in.readInt();
            for (Row r : rows) r.duplicates = in.readInt();
            for (Row r : rows) r.clockAhead = in.readInt();
            for (Row r : rows) r.maxAheadMs = in.readLong();
            for (Row r : rows) r.hasArrival = flag(in);
            for (Row r : rows) r.maxFlatMs = in.readLong();
            if (in.available() != 0) {
                throw new AssertionError(in.available() + " bytes after the last column");
            }
            return rows;
        } catch (IOException e) {
            throw new AssertionError("the block ends early", e);
        }
    }

    private static boolean flag(DataInputStream in) throws IOException {
        byte b = in.readByte();
        if (b != 0 && b != 1) {
            throw new AssertionError("a flag of " + b);
        }
        return b == 1;
    }

    private static String[] strings(DataInputStream in, int n) throws IOException {
        int[] lengths = new int[n];
        for (int i = 0; i < n; i++) lengths[i] = in.readInt();
        String[] out = new String[n];
        for (int i = 0; i < n; i++) {
            byte[] bytes = new byte[lengths[i]];
            in.readFully(bytes);
            out[i] = new String(bytes, StandardCharsets.UTF_8);
        }
        return out;
    }

    /** The one row of {@code measurement} on {@code day}; fails if there is none or several. */
    static Row row(List<Row> rows, int measurement, int day) {
        Row found = null;
        for (Row r : rows) {
            if (r.measurement == measurement && r.day == day) {
                if (found != null) {
                    throw new AssertionError("two rows of measurement " + measurement + " on day " + day);
                }
                found = r;
            }
        }
        if (found == null) {
            throw new AssertionError("no row of measurement " + measurement + " on day " + day);
        }
        return found;
    }
}
