package io.meterflow.stream;

import java.util.Arrays;

/**
 * What the job remembers about one (meter, measurement, series), in primitive arrays.
 *
 * <ul>
 *   <li><b>seen</b>: the event times of the readings already accepted (sorted), each with its
 *       arrival, for de-duplication; an entry is forgotten between 1 and 1.125 × {@code dedup_ttl_ms}
 *       after its arrival.
 *   <li><b>windows</b>: the open windows (start, count, sum, min, max, Welford mean and M2 for the
 *       standard deviation, consumption) until the watermark closes them.
 *   <li><b>register</b>: the last register value taken (event-time order) and the on-time register
 *       readings the watermark has not passed yet, whose steps are taken in event-time order.
 * </ul>
 */
final class SeriesState {
    /** The plan's "name|series" of this state (a measurement's index may change between runs). */
    String key;

    // --- de-duplication
    long[] seenTimes = new long[8];
    long[] seenArrivals = new long[8];
    int seen;
    long oldestArrival = Long.MAX_VALUE;

    // --- open windows
    long[] wStart = new long[2];
    long[] wCount = new long[2];
    double[] wSum = new double[2];
    double[] wMin = new double[2];
    double[] wMax = new double[2];
    double[] wMean = new double[2];
    double[] wM2 = new double[2];
    double[] wConsumption = new double[2];
    boolean[] wHasConsumption = new boolean[2];
    int windows;

    // --- register steps
    boolean hasLast;
    double lastValue;
    long[] pendingTimes = new long[2];
    double[] pendingValues = new double[2];
    int pending;

    SeriesState(String key) {
        this.key = key;
    }

    // ---------------------------------------------------------------- de-duplication

    /** True (and remembered) when no reading of this series with event time {@code t} was accepted. */
    boolean firstArrival(long t, long arrival, long ttlMs) {
        if (seen > 0 && arrival - oldestArrival > ttlMs + ttlMs / 8) {
            forget(arrival - ttlMs); // kept at least ttl, at most 1.125 ttl: a scan every ttl / 8
        }
        int i = seen > 0 && t > seenTimes[seen - 1] ? -(seen + 1) : Arrays.binarySearch(seenTimes, 0, seen, t);
        if (i >= 0) {
            return false;
        }
        int at = -(i + 1);
        if (seen == seenTimes.length) {
            seenTimes = Arrays.copyOf(seenTimes, seen * 2);
            seenArrivals = Arrays.copyOf(seenArrivals, seen * 2);
        }
        if (at < seen) {
            System.arraycopy(seenTimes, at, seenTimes, at + 1, seen - at);
            System.arraycopy(seenArrivals, at, seenArrivals, at + 1, seen - at);
        }
        seenTimes[at] = t;
        seenArrivals[at] = arrival;
        seen++;
        oldestArrival = Math.min(oldestArrival, arrival);
        return true;
    }

    private void forget(long arrivedBefore) {
        int kept = 0;
        long oldest = Long.MAX_VALUE;
        for (int i = 0; i < seen; i++) {
            if (seenArrivals[i] >= arrivedBefore) {
                seenTimes[kept] = seenTimes[i];
                seenArrivals[kept] = seenArrivals[i];
                oldest = Math.min(oldest, seenArrivals[i]);
                kept++;
            }
        }
        seen = kept;
        oldestArrival = oldest;
    }

    // ---------------------------------------------------------------- windows

    /** The open window starting at {@code start}, opened when absent; its index. */
    int window(long start) {
        for (int i = 0; i < windows; i++) {
            if (wStart[i] == start) {
                return i;
            }
        }
        if (windows == wStart.length) {
            int n = windows * 2;
            wStart = Arrays.copyOf(wStart, n);
            wCount = Arrays.copyOf(wCount, n);
            wSum = Arrays.copyOf(wSum, n);
            wMin = Arrays.copyOf(wMin, n);
            wMax = Arrays.copyOf(wMax, n);
            wMean = Arrays.copyOf(wMean, n);
            wM2 = Arrays.copyOf(wM2, n);
            wConsumption = Arrays.copyOf(wConsumption, n);
            wHasConsumption = Arrays.copyOf(wHasConsumption, n);
        }
        int i = windows++;
        wStart[i] = start;
        wCount[i] = 0;
        wSum[i] = 0.0;
        wMin[i] = Double.POSITIVE_INFINITY;
        wMax[i] = Double.NEGATIVE_INFINITY;
        wMean[i] = 0.0;
        wM2[i] = 0.0;
        wConsumption[i] = 0.0;
        wHasConsumption[i] = false;
        return i;
    }

    void add(int w, double value) {
        long n = ++wCount[w];
        wSum[w] += value;
        if (value < wMin[w]) {
            wMin[w] = value;
        }
        if (value > wMax[w]) {
            wMax[w] = value;
        }
        double delta = value - wMean[w];
        wMean[w] += delta / n;
        wM2[w] += delta * (value - wMean[w]);
    }

    void addConsumption(int w, double part) {
        wConsumption[w] += part;
        wHasConsumption[w] = true;
    }

    void removeWindow(int w) {
        int last = --windows;
        if (w != last) {
            wStart[w] = wStart[last];
            wCount[w] = wCount[last];
            wSum[w] = wSum[last];
            wMin[w] = wMin[last];
            wMax[w] = wMax[last];
            wMean[w] = wMean[last];
            wM2[w] = wM2[last];
            wConsumption[w] = wConsumption[last];
            wHasConsumption[w] = wHasConsumption[last];
        }
    }

    // ---------------------------------------------------------------- register steps

    void addPending(long t, double value) {
        if (pending == pendingTimes.length) {
            pendingTimes = Arrays.copyOf(pendingTimes, pending * 2);
            pendingValues = Arrays.copyOf(pendingValues, pending * 2);
        }
        int at = pending;
        while (at > 0 && pendingTimes[at - 1] > t) {
            at--;
        }
        if (at < pending) {
            System.arraycopy(pendingTimes, at, pendingTimes, at + 1, pending - at);
            System.arraycopy(pendingValues, at, pendingValues, at + 1, pending - at);
        }
        pendingTimes[at] = t;
        pendingValues[at] = value;
        pending++;
    }

    /** Drops the first {@code n} pending readings (they have been taken). */
    void dropPending(int n) {
        if (n > 0) {
            System.arraycopy(pendingTimes, n, pendingTimes, 0, pending - n);
            System.arraycopy(pendingValues, n, pendingValues, 0, pending - n);
            pending -= n;
        }
    }

    SeriesState copy() {
        SeriesState c = new SeriesState(key);
        c.seenTimes = Arrays.copyOf(seenTimes, Math.max(seen, 1));
        c.seenArrivals = Arrays.copyOf(seenArrivals, Math.max(seen, 1));
        c.seen = seen;
        c.oldestArrival = oldestArrival;
        int w = Math.max(windows, 1);
        c.wStart = Arrays.copyOf(wStart, w);
        c.wCount = Arrays.copyOf(wCount, w);
        c.wSum = Arrays.copyOf(wSum, w);
        c.wMin = Arrays.copyOf(wMin, w);
        c.wMax = Arrays.copyOf(wMax, w);
        c.wMean = Arrays.copyOf(wMean, w);
        c.wM2 = Arrays.copyOf(wM2, w);
        c.wConsumption = Arrays.copyOf(wConsumption, w);
        c.wHasConsumption = Arrays.copyOf(wHasConsumption, w);
        c.windows = windows;
        c.hasLast = hasLast;
        c.lastValue = lastValue;
        int p = Math.max(pending, 1);
        c.pendingTimes = Arrays.copyOf(pendingTimes, p);
        c.pendingValues = Arrays.copyOf(pendingValues, p);
        c.pending = pending;
        return c;
    }
}
