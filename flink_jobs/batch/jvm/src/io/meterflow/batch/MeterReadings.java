package io.meterflow.batch;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * One meter's readings in the scan, and the daily rows they make: the batch layer's semantics
 * in one place (docs/batch.md, "What is computed").
 *
 * <p>The readings are put in event-time order (ties: measurement, then arrival) and walked once:
 * <ul>
 *   <li><b>duplicates</b> — equal measurement and event time (to the microsecond): the first
 *       arrival (ingest time, Kafka partition, offset; a missing one first) is kept, the streaming
 *       job's rule;</li>
 *   <li><b>day</b> — the local day whose bounds (from the plan) hold the reading;</li>
 *   <li><b>register steps</b> — each reading minus the previous reading of its series, whatever
 *       day that fell on; a fall to at most {@code resetRatio} of it is a reset (the step is the
 *       new value), any other fall a negative step counted as it is; the series' first reading
 *       in the scan steps 0 and marks its day {@code unanchored} (Python anchors it on daily_stats);</li>
 *   <li><b>interval</b> consumption is the sum of the values, <b>power</b> consumption the sum of
 *       each value times the hours of its reading ({@code consumptionFactor}), gauges have none;</li>
 *   <li><b>battery</b> readings are normalised to volts before sum/avg/min/max ({@link DailyPlan#volts});</li>
 *   <li><b>gaps</b> — each reading's distance (ms) from the meter's previous reading of any
 *       measurement; a day keeps the longest gap ending in it (none for the meter's first);</li>
 *   <li><b>data quality</b> (the meter-day's health, {@code flink_jobs/batch/health.py}) — the
 *       duplicates dropped; readings whose event time is more than {@code clockAheadToleranceMs}
 *       ahead of their arrival (ingest time), and the most any was ahead; the longest span a
 *       series' value stayed the same, ending on the day (a stuck sensor).</li>
 * </ul>
 * Sums add in event-time order, so a run's figures do not depend on how the lake's files were
 * split or read. Times are epoch milliseconds, rounded down.
 */
final class MeterReadings {
    /** Longs per reading in {@link #data}: event time, value bits, ingest time, offset, and packed partition/late/measurement. */
    private static final int W = 5;

    final String meterId;
    private int size;
    /** The readings side by side (one cache line each): adding one touches one place in memory. */
    private long[] data = new long[W * 64];
    /** Reading position → its unit, for the rare reading whose unit is not its measurement's. */
    private Map<Integer, String> units;

    MeterReadings(String meterId) {
        this.meterId = meterId;
    }

    int size() {
        return size;
    }

    /** Adds row {@code j} of {@code b}. */
    void add(ReadingBlock b, int j) {
        int at = W * size;
        if (at == data.length) {
            data = Arrays.copyOf(data, W * (size + (size >> 1)));
        }
        long[] d = data;
        d[at] = b.eventMicros[j];
        d[at + 1] = Double.doubleToRawLongBits(b.value[j]);
        d[at + 2] = b.ingestMicros[j];
        d[at + 3] = b.offset[j];
        d[at + 4] = ((long) b.partition[j] << 32) | (b.late[j] ? 0x100L : 0L) | (b.measurement[j] & 0xffL);
        if (b.unit[j] != null) {
            if (units == null) {
                units = new HashMap<>();
            }
            units.put(size, b.unit[j]);
        }
        size++;
    }

    private long event(int i) {
        return data[W * i];
    }

    private double value(int i) {
        return Double.longBitsToDouble(data[W * i + 1]);
    }

    private int measurement(int i) {
        return (byte) data[W * i + 4];
    }

    private boolean late(int i) {
        return (data[W * i + 4] & 0x100L) != 0;
    }

    /** The daily figures of one measurement on one day, filled reading by reading. */
    static final class Group {
        final int measurement;
        final int day;
        long readings;
        double sum;
        double min;
        double max;
        double consumption;
        boolean hasConsumption;
        long firstMs;
        long lastMs;
        double firstValue;
        double lastValue;
        boolean unanchored;
        int resets;
        int negativeSteps;
        double negativeTotal;
        long maxGapMs;
        boolean hasGap;
        int late;
        int duplicates;
        int clockAhead;
        /** The most a reading's event time was ahead of its arrival (negative: behind); {@code hasArrival} when known. */
        long maxAheadMs;
        boolean hasArrival;
        /** The longest time the series' value stayed unchanged, up to a reading of this day. */
        long maxFlatMs;
        /** The greatest unit of the day's readings (UTF-8 byte order, as Flink SQL's MAX). */
        String unit;

        Group(int measurement, int day) {
            this.measurement = measurement;
            this.day = day;
        }
    }

    /** Appends this meter's daily rows (every scanned day it has readings on) to {@code out}. */
    void emit(DailyPlan plan, long[] dayStartsMicros, DailyRows out) {
        int n = plan.measurements.size();
        DailyPlan.Kind[] kind = new DailyPlan.Kind[n];
        boolean[] battery = new boolean[n];
        double[] factor = new double[n];
        for (int s = 0; s < n; s++) {
            kind[s] = plan.measurements.get(s).kind;
            factor[s] = plan.measurements.get(s).consumptionFactor;
            battery[s] = plan.measurements.get(s).battery;
        }
        double ratio = plan.resetRatio;
        Group[] current = new Group[n];
        boolean[] hasPrevious = new boolean[n];
        double[] previous = new double[n];
        long[] flatSinceMs = new long[n];
        long aheadTolerance = plan.clockAheadToleranceMs;
        boolean hasPreviousMs = false;
        long previousMs = 0;
        int day = 0;
        int[] order = order();
        int last = -1;
        for (int k = 0; k < size; k++) {
            int i = order[k];
            boolean duplicate = last >= 0 && event(i) == event(last) && measurement(i) == measurement(last);
            last = i;
            if (duplicate) {
                current[measurement(i)].duplicates++; // the kept copy's group: same measurement and instant
                continue;
            }
            long micros = event(i);
            while (micros >= dayStartsMicros[day + 1]) {
                day++;
            }
            long ms = Math.floorDiv(micros, 1000L);
            int s = measurement(i);
            double v = value(i);
            Group g = current[s];
            if (g == null || g.day != day) {
                if (g != null) {
                    flush(g, plan, out);
                }
                g = new Group(s, day);
                current[s] = g;
                g.firstMs = ms;
                g.firstValue = v;
                g.hasConsumption = kind[s] != DailyPlan.Kind.GAUGE;
                // the day's first reading's unit: the spec's only if a reading of the day has it
                String own = units == null ? null : units.get(i);
                g.unit = own != null ? own : plan.measurements.get(s).unit;
            }
            if (hasPreviousMs) {
                long gap = ms - previousMs;
                if (!g.hasGap || gap > g.maxGapMs) {
                    g.maxGapMs = gap;
                    g.hasGap = true;
                }
            }
            previousMs = ms;
            hasPreviousMs = true;

            double level = battery[s] ? plan.volts(v) : v;
            if (g.readings == 0) {
                g.min = level;
                g.max = level;
            } else {
                g.min = Math.min(g.min, level);
                g.max = Math.max(g.max, level);
            }
            g.readings++;
            g.sum += level;
            if (!hasPrevious[s]) {
                g.unanchored = true;
            }
            if (kind[s] == DailyPlan.Kind.REGISTER) {
                double step;
                if (!hasPrevious[s]) {
                    step = 0.0;
                } else {
                    double p = previous[s];
                    if (v < p && v <= p * ratio) {
                        step = v;
                        g.resets++;
                    } else {
                        step = v - p;
                        if (v < p) {
                            g.negativeSteps++;
                            g.negativeTotal += step;
                        }
                    }
                }
                g.consumption += step;
            } else if (kind[s] == DailyPlan.Kind.INTERVAL || kind[s] == DailyPlan.Kind.POWER) {
                g.consumption += v * factor[s];
            }
            g.lastMs = ms;
            g.lastValue = v;
            if (late(i)) {
                g.late++;
            }
            long ingest = data[W * i + 2];
            if (ingest != ReadingBlock.NULL_LONG) {
                long aheadMs = ms - Math.floorDiv(ingest, 1000L);
                if (!g.hasArrival || aheadMs > g.maxAheadMs) {
                    g.maxAheadMs = aheadMs;
                    g.hasArrival = true;
                }
                if (aheadMs > aheadTolerance) {
                    g.clockAhead++;
                }
            }
            if (!hasPrevious[s] || v != previous[s]) {
                flatSinceMs[s] = ms;
            } else {
                g.maxFlatMs = Math.max(g.maxFlatMs, ms - flatSinceMs[s]);
            }
            if (units != null) {
                String unit = units.get(i);
                if (unit != null && compareUtf8(unit, g.unit) > 0) {
                    g.unit = unit;
                }
            }
            previous[s] = v;
            hasPrevious[s] = true;
        }
        for (Group g : current) {
            if (g != null) {
                flush(g, plan, out);
            }
        }
    }

    private void flush(Group g, DailyPlan plan, DailyRows out) {
        out.add(meterId, g, g.unit);
    }

    static int compareUtf8(String a, String b) {
        byte[] x = a.getBytes(StandardCharsets.UTF_8);
        byte[] y = b.getBytes(StandardCharsets.UTF_8);
        return Arrays.compareUnsigned(x, y);
    }

    /** Reading positions in (event time, measurement, ingest time, partition, offset) order. */
    private int[] order() {
        int[] order = new int[size];
        for (int i = 0; i < size; i++) {
            order[i] = i;
        }
        if (size > 1) {
            mergeSort(order, new int[size], 0, size);
        }
        return order;
    }

    /** A stable merge sort of {@code a[from, to)} that costs one pass over runs already in order. */
    private void mergeSort(int[] a, int[] tmp, int from, int to) {
        if (to - from < 2) {
            return;
        }
        int mid = (from + to) >>> 1;
        mergeSort(a, tmp, from, mid);
        mergeSort(a, tmp, mid, to);
        if (compare(a[mid - 1], a[mid]) <= 0) {
            return;
        }
        System.arraycopy(a, from, tmp, from, to - from);
        int i = from, j = mid, k = from;
        while (i < mid && j < to) {
            a[k++] = compare(tmp[j], tmp[i]) < 0 ? tmp[j++] : tmp[i++];
        }
        while (i < mid) {
            a[k++] = tmp[i++];
        }
        while (j < to) {
            a[k++] = tmp[j++];
        }
    }

    private int compare(int i, int j) {
        long[] d = data;
        int a = W * i, b = W * j;
        int c = Long.compare(d[a], d[b]);
        if (c != 0) {
            return c;
        }
        c = Integer.compare((byte) d[a + 4], (byte) d[b + 4]); // measurement
        if (c != 0) {
            return c;
        }
        c = Long.compare(d[a + 2], d[b + 2]); // ingest time
        if (c != 0) {
            return c;
        }
        c = Integer.compare((int) (d[a + 4] >> 32), (int) (d[b + 4] >> 32)); // Kafka partition
        if (c != 0) {
            return c;
        }
        return Long.compare(d[a + 3], d[b + 3]); // offset
    }
}
