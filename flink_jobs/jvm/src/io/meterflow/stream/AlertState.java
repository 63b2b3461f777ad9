package io.meterflow.stream;

import java.util.Arrays;

/**
 * One alert slot of one meter (a rule on one measurement and series, or a meter-wide rule): the
 * episode, if one is open or was last, and what the rule's kind tracks between readings.
 *
 * <ul>
 *   <li>episode: open, id, when it opened, was last seen and resolved, breaches, first, last and
 *       peak value, severity (raised once by escalation), acknowledgement;
 *   <li>noData: the newest reading's event time and the deadline a timer waits for;
 *   <li>stuck: the value and since when it has not changed;
 *   <li>outlier: the series' last {@code count} values (a ring), for their median and MAD;
 *   <li>continuousFlow and nightFlow: the open periods (clock intervals, nights) with their
 *       consumption, and the run of flowing periods.
 * </ul>
 */
final class AlertState {
    static final long NONE = Long.MIN_VALUE;

    /** The plan's slot key (re-slotted by name when the spec changes). */
    String key;

    // --- the episode
    boolean open;
    String id;
    long openedAt = NONE;
    long lastSeen = NONE;
    long resolvedAt = NONE;
    long breaches;
    double firstValue;
    double lastValue;
    double peakValue;
    int severity;
    boolean escalated;
    String ackBy;
    long ackAt = NONE;
    String detail = "";

    // --- noData
    long latest = NONE;
    long deadline = NONE;

    // --- stuck
    boolean hasValue;
    double value;
    long since = NONE;

    // --- outlier: the last values in a ring ({@code ringNext} is where the next one goes)
    double[] ring = new double[0];
    int ringSize;
    int ringNext;

    /** Adds {@code value} to the ring of at most {@code capacity} values, replacing the oldest when full. */
    void remember(double value, int capacity) {
        if (ring.length != capacity) { // first use, or the rule's window changed: keep the newest values
            double[] resized = new double[capacity];
            int keep = Math.min(ringSize, capacity);
            for (int i = 0; i < keep; i++) {
                resized[i] = ring[Math.floorMod(ringNext - keep + i, ring.length)];
            }
            ring = resized;
            ringSize = keep;
            ringNext = keep % capacity;
        }
        ring[ringNext] = value;
        ringNext = (ringNext + 1) % capacity;
        ringSize = Math.min(ringSize + 1, capacity);
    }

    // --- continuousFlow, nightFlow
    long[] pStart = new long[0];
    long[] pEnd = new long[0];
    double[] pFlow = new double[0];
    int[] pSteps = new int[0];
    boolean[] pAllAbove = new boolean[0];
    int periods;
    int run;
    long lastPeriodEnd = NONE;

    AlertState(String key) {
        this.key = key;
    }

    /** The open period [start, end), created when absent; its index and whether it is new (bit 31). */
    int period(long start, long end) {
        for (int i = 0; i < periods; i++) {
            if (pStart[i] == start) {
                return i;
            }
        }
        if (periods == pStart.length) {
            int n = Math.max(2, periods * 2);
            pStart = Arrays.copyOf(pStart, n);
            pEnd = Arrays.copyOf(pEnd, n);
            pFlow = Arrays.copyOf(pFlow, n);
            pSteps = Arrays.copyOf(pSteps, n);
            pAllAbove = Arrays.copyOf(pAllAbove, n);
        }
        int i = periods++;
        pStart[i] = start;
        pEnd[i] = end;
        pFlow[i] = 0.0;
        pSteps[i] = 0;
        pAllAbove[i] = true;
        return i | CREATED;
    }

    static final int CREATED = 1 << 30;

    void removePeriod(int i) {
        int last = --periods;
        if (i != last) {
            pStart[i] = pStart[last];
            pEnd[i] = pEnd[last];
            pFlow[i] = pFlow[last];
            pSteps[i] = pSteps[last];
            pAllAbove[i] = pAllAbove[last];
        }
    }

    /** The index of the open period that ends first, or -1. */
    int earliestPeriod() {
        int best = -1;
        for (int i = 0; i < periods; i++) {
            if (best < 0 || pEnd[i] < pEnd[best]) {
                best = i;
            }
        }
        return best;
    }

    AlertState copy() {
        AlertState c = new AlertState(key);
        c.open = open;
        c.id = id;
        c.openedAt = openedAt;
        c.lastSeen = lastSeen;
        c.resolvedAt = resolvedAt;
        c.breaches = breaches;
        c.firstValue = firstValue;
        c.lastValue = lastValue;
        c.peakValue = peakValue;
        c.severity = severity;
        c.escalated = escalated;
        c.ackBy = ackBy;
        c.ackAt = ackAt;
        c.detail = detail;
        c.latest = latest;
        c.deadline = deadline;
        c.hasValue = hasValue;
        c.value = value;
        c.since = since;
        c.pStart = Arrays.copyOf(pStart, periods);
        c.pEnd = Arrays.copyOf(pEnd, periods);
        c.pFlow = Arrays.copyOf(pFlow, periods);
        c.pSteps = Arrays.copyOf(pSteps, periods);
        c.pAllAbove = Arrays.copyOf(pAllAbove, periods);
        c.periods = periods;
        c.run = run;
        c.lastPeriodEnd = lastPeriodEnd;
        c.ring = ring.clone();
        c.ringSize = ringSize;
        c.ringNext = ringNext;
        return c;
    }
}
