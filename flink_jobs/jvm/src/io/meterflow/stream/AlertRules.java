package io.meterflow.stream;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalTime;
import java.time.ZonedDateTime;
import java.time.zone.ZoneOffsetTransition;
import java.util.Arrays;
import java.util.HexFormat;

/**
 * The alert rules of one meter and their lifecycle (docs/alerts.md states the rules for users).
 *
 * <p>Every kind follows one lifecycle: an alert <b>opens</b> at its first breach, later breaches
 * <b>update</b> it (one active alert per slot: meter, rule and series), it <b>escalates</b> one
 * severity step when {@code escalateAfter} passes unacknowledged, a person may
 * <b>acknowledge</b> it, and it <b>resolves</b> when its condition clears (or by hand). Its id
 * is a hash of (meter, slot, opening time), so a replay raises the same alerts with the same ids.
 *
 * <ul>
 *   <li><b>threshold</b>: a reading beyond the threshold opens or updates; a reading back on the
 *       clear side (beyond {@code clearThreshold} when set) resolves. Every unique reading counts,
 *       late ones too, in arrival order.
 *   <li><b>noData</b>: no reading of the meter (or of the measurement) for {@code for} of event
 *       time opens it at {@code newest + for}; the next reading resolves it.
 *   <li><b>continuousFlow</b>: consumption &gt; 0 in each of {@code count} consecutive clock
 *       intervals of {@code every} in spec.timeZone opens it at the end of the count-th; each further
 *       flowing interval updates it; an interval with zero consumption resolves it; an interval
 *       without a reading breaks the run (unknown is not flow) but resolves nothing.
 *   <li><b>nightFlow</b>: a night flows when it has at least two consumption steps between
 *       {@code from} and {@code to} (local time) and every one is &gt; threshold; {@code nights}
 *       flowing nights in a row open it at the end of the last; a night that does not flow
 *       resolves it (a night without readings does not flow).
 *   <li><b>stuck</b>: a register or gauge reporting the same value for {@code for} while the meter
 *       keeps reporting opens it; a different value resolves it.
 *   <li><b>outlier</b> (seed 001): a reading whose robust z-score against the series' previous
 *       {@code count} readings exceeds {@code threshold} opens or updates it; the next reading within
 *       the limit resolves it. z = 0.6745 (x - median) / MAD; when the MAD is 0, (x - median) /
 *       (1.2533 x mean absolute deviation); a window without spread judges nothing, nor does one not
 *       yet full. Every reading, outliers too, joins the window (the median is robust to them).
 * </ul>
 * Consumption (continuousFlow, nightFlow) is an interval measurement's value or a register's step,
 * of on-time readings only (a register's first reading ends no step); stuck and register steps see
 * readings in event-time order, as the watermark passes them. Time-driven transitions (a silence,
 * a closed interval or night, an escalation) happen when the watermark passes them, and never at a
 * drain's end of time. No alert resolves before it opened (a late reading that clears it resolves
 * it at its opening).
 */
final class AlertRules {
    static final String OPENED = "OPENED";
    static final String UPDATED = "UPDATED";
    static final String ESCALATED = "ESCALATED";
    static final String ACKNOWLEDGED = "ACKNOWLEDGED";
    static final String RESOLVED = "RESOLVED";

    /** Where transitions go and how timers are asked for (the operator's output and timer service). */
    interface Effects {
        void emit(AlertEvent event);

        void wakeAt(long eventTime);
    }

    private final Plan plan;
    private final String[] keys;
    /**
     * Per slot, the last clock period found (an interval, a night, or null between nights) and the
     * instants [from, to) it answers for: readings of all meters arrive close together in event time,
     * so most lookups skip the time-zone arithmetic.
     */
    private final long[][] periodCache;
    private final long[] cachedFrom;
    private final long[] cachedTo;

    AlertRules(Plan plan) {
        this.plan = plan;
        int n = plan.slots.length;
        this.keys = new String[n];
        for (Plan.Slot slot : plan.slots) {
            keys[slot.index] = slot.key;
        }
        periodCache = new long[n][];
        cachedFrom = new long[n];
        cachedTo = new long[n];
        Arrays.fill(cachedFrom, Long.MAX_VALUE);
        Arrays.fill(cachedTo, Long.MIN_VALUE);
    }

    boolean any() {
        return plan.slots.length > 0;
    }

    // ------------------------------------------------------------------ inputs

    /** Every unique reading, in arrival order (late ones too): threshold and noData slots. */
    void onReading(String meter, MeterState state, int measurement, long t, double value, Effects fx) {
        for (Plan.Slot slot : plan.measurements[measurement].slots) {
            if (slot.rule.kind == Plan.RuleKind.THRESHOLD) {
                threshold(meter, slot, state.alert(slot.index, keys), t, value, fx);
            } else if (slot.rule.kind == Plan.RuleKind.NO_DATA) {
                seen(meter, slot, state.alert(slot.index, keys), t, value, fx);
            }
        }
        for (Plan.Slot slot : plan.meterWideSlots) {
            seen(meter, slot, state.alert(slot.index, keys), t, value, fx);
        }
    }

    /** A consumption part of an on-time reading at {@code t}: an interval's value or a register's step. */
    void onConsumption(String meter, MeterState state, int measurement, long t, double part, Effects fx) {
        for (Plan.Slot slot : plan.measurements[measurement].slots) {
            Plan.RuleKind kind = slot.rule.kind;
            if (kind != Plan.RuleKind.CONTINUOUS_FLOW && kind != Plan.RuleKind.NIGHT_FLOW) {
                continue;
            }
            long[] period = period(slot, t);
            if (period == null) {
                continue; // a step outside the night's hours
            }
            AlertState a = state.alert(slot.index, keys);
            int found = a.period(period[0], period[1]);
            int i = found & ~AlertState.CREATED;
            if ((found & AlertState.CREATED) != 0) {
                fx.wakeAt(period[1] - 1);
            }
            a.pFlow[i] += part;
            a.pSteps[i]++;
            if (!(part > slot.rule.threshold)) {
                a.pAllAbove[i] = false;
            }
        }
    }

    /** An on-time reading of a measurement with stuck or outlier slots, in event-time order. */
    void onOrdered(String meter, MeterState state, int measurement, long t, double value, Effects fx) {
        for (Plan.Slot slot : plan.measurements[measurement].slots) {
            if (slot.rule.kind == Plan.RuleKind.OUTLIER) {
                outlier(meter, slot, state.alert(slot.index, keys), t, value, fx);
                continue;
            }
            if (slot.rule.kind != Plan.RuleKind.STUCK) {
                continue;
            }
            AlertState a = state.alert(slot.index, keys);
            if (!a.hasValue || value != a.value) {
                if (a.open) {
                    resolve(meter, slot, a, t, value, null, "the value changed to " + value, fx);
                }
                a.hasValue = true;
                a.value = value;
                a.since = t;
            } else if (a.open) {
                breach(meter, slot, a, t, value, fx);
            } else if (t - a.since >= slot.rule.forMs) {
                open(meter, slot, a, t, value, "unchanged at " + value + " since " + Instant.ofEpochMilli(a.since), fx);
            }
        }
    }

    /** A person's acknowledgement or resolution of one of this meter's alerts. */
    void onCommand(String meter, MeterState state, AlertCommand command, Effects fx) {
        for (Plan.Slot slot : plan.slots) {
            AlertState a = state.alertIfAny(slot.index, keys);
            if (a == null || !a.open || !command.alertId.equals(a.id)) {
                continue;
            }
            if ("ack".equals(command.action)) {
                if (a.ackAt == AlertState.NONE) {
                    a.ackBy = command.by;
                    a.ackAt = command.at;
                    fx.emit(event(meter, slot, a, ACKNOWLEDGED, command.at, a.lastValue, null));
                }
            } else if ("resolve".equals(command.action)) {
                resolve(meter, slot, a, command.at, a.lastValue, command.by, "resolved by " + command.by, fx);
                a.run = 0;
                a.since = a.lastSeen; // stuck: the clock starts again
            }
            return;
        }
    }

    /** The watermark passed {@code time}: closed intervals and nights, silences, escalations. */
    void onTime(String meter, MeterState state, long time, Effects fx) {
        for (Plan.Slot slot : plan.slots) {
            AlertState a = state.alertIfAny(slot.index, keys);
            if (a == null) {
                continue;
            }
            switch (slot.rule.kind) {
                case NO_DATA:
                    silence(meter, slot, a, time, fx);
                    break;
                case CONTINUOUS_FLOW:
                case NIGHT_FLOW:
                    closePeriods(meter, slot, a, time, fx);
                    break;
                default:
                    break;
            }
            if (escalates(slot, a) && a.openedAt + slot.rule.escalateAfterMs <= time) {
                a.escalated = true;
                a.severity++;
                fx.emit(event(meter, slot, a, ESCALATED, a.openedAt + slot.rule.escalateAfterMs, a.lastValue, null));
            }
        }
    }

    /**
     * The earliest event time at which {@link #onTime} has something to do for this meter (a
     * silence's deadline, a period's end, an escalation), or {@link Long#MAX_VALUE}: until then the
     * meter's window timers need not visit its rules.
     */
    long nextDue(MeterState state) {
        long due = Long.MAX_VALUE;
        for (Plan.Slot slot : plan.slots) {
            AlertState a = state.alertIfAny(slot.index, keys);
            if (a == null) {
                continue;
            }
            if (slot.rule.kind == Plan.RuleKind.NO_DATA && a.deadline != AlertState.NONE) {
                due = Math.min(due, a.deadline);
            }
            int p = a.earliestPeriod();
            if (p >= 0) {
                due = Math.min(due, a.pEnd[p] - 1);
            }
            if (escalates(slot, a)) {
                due = Math.min(due, a.openedAt + slot.rule.escalateAfterMs);
            }
        }
        return due;
    }

    /** An open alert that escalates once {@code escalateAfter} has passed: not escalated, acknowledged or at the top. */
    private static boolean escalates(Plan.Slot slot, AlertState a) {
        return a.open && slot.rule.escalateAfterMs > 0 && !a.escalated && a.ackAt == AlertState.NONE
                && a.severity < Plan.Rule.SEVERITIES.length - 1;
    }

    // ------------------------------------------------------------------ kinds

    private void threshold(String meter, Plan.Slot slot, AlertState a, long t, double value, Effects fx) {
        Plan.Rule rule = slot.rule;
        if (rule.matches(value)) {
            if (a.open) {
                breach(meter, slot, a, t, value, fx);
            } else {
                open(meter, slot, a, t, value, "value " + value + " " + rule.condition + " " + rule.threshold, fx);
            }
        } else if (a.open && rule.clears(value)) {
            resolve(meter, slot, a, t, value, null, "value " + value + " is clear", fx);
        }
    }

    private void outlier(String meter, Plan.Slot slot, AlertState a, long t, double value, Effects fx) {
        Plan.Rule rule = slot.rule;
        if (a.ringSize == rule.count && a.ring.length == rule.count) {
            double z = robustZ(a.ring, a.ringSize, value, scratch(rule.count));
            if (Math.abs(z) > rule.threshold) {
                if (a.open) {
                    breach(meter, slot, a, t, value, fx);
                } else {
                    open(meter, slot, a, t, value, String.format(java.util.Locale.ROOT,
                            "robust z-score %.2f against the last %d readings (limit %s)", z, rule.count,
                            rule.threshold), fx);
                }
            } else if (a.open) {
                resolve(meter, slot, a, t, value, null, "value " + value + " is within the limit again", fx);
            }
        }
        a.remember(value, rule.count);
    }

    private double[] scratch;

    private double[] scratch(int n) {
        if (scratch == null || scratch.length < n) {
            scratch = new double[n];
        }
        return scratch;
    }

    /**
     * The robust z-score of {@code x} against {@code values[0, n)}: 0.6745 (x - median) / MAD, or
     * (x - median) / (1.253314 x mean absolute deviation) when the MAD is 0 (more than half the
     * values equal); 0 when the values do not spread at all. {@code work} holds n doubles.
     */
    static double robustZ(double[] values, int n, double x, double[] work) {
        System.arraycopy(values, 0, work, 0, n);
        double median = median(work, n);
        double meanDeviation = 0.0;
        for (int i = 0; i < n; i++) {
            double d = Math.abs(values[i] - median);
            work[i] = d;
            meanDeviation += d;
        }
        meanDeviation /= n;
        double mad = median(work, n);
        if (mad > 0) {
            return 0.6745 * (x - median) / mad;
        }
        if (meanDeviation > 0) {
            return (x - median) / (1.253314 * meanDeviation);
        }
        return 0.0;
    }

    /** The median of {@code a[0, n)} (the mean of the two middle values when n is even); sorts a. */
    static double median(double[] a, int n) {
        Arrays.sort(a, 0, n);
        return n % 2 == 1 ? a[n / 2] : (a[n / 2 - 1] + a[n / 2]) / 2.0;
    }

    private void seen(String meter, Plan.Slot slot, AlertState a, long t, double value, Effects fx) {
        if (a.open) {
            resolve(meter, slot, a, t, value, null, "a reading at " + Instant.ofEpochMilli(t), fx);
        }
        if (t > a.latest) {
            a.latest = t;
        }
        if (a.deadline == AlertState.NONE) {
            a.deadline = a.latest + slot.rule.forMs;
            fx.wakeAt(a.deadline);
        }
    }

    private void silence(String meter, Plan.Slot slot, AlertState a, long time, Effects fx) {
        if (a.deadline == AlertState.NONE || a.deadline > time) {
            return;
        }
        long due = a.latest + slot.rule.forMs;
        if (due > time) {
            a.deadline = due; // a newer reading moved it: wait again
            fx.wakeAt(due);
            return;
        }
        a.deadline = AlertState.NONE;
        if (!a.open) {
            open(meter, slot, a, due, 0.0, "no reading since " + Instant.ofEpochMilli(a.latest), fx);
        }
    }

    private void closePeriods(String meter, Plan.Slot slot, AlertState a, long time, Effects fx) {
        Plan.Rule rule = slot.rule;
        boolean night = rule.kind == Plan.RuleKind.NIGHT_FLOW;
        for (int i = a.earliestPeriod(); i >= 0 && a.pEnd[i] - 1 <= time; i = a.earliestPeriod()) {
            long start = a.pStart[i];
            long end = a.pEnd[i];
            boolean flowing = night ? a.pSteps[i] >= 2 && a.pAllAbove[i] : a.pSteps[i] > 0 && a.pFlow[i] > 0;
            double flow = a.pFlow[i];
            int steps = a.pSteps[i];
            a.removePeriod(i);
            boolean consecutive = a.lastPeriodEnd == AlertState.NONE || a.lastPeriodEnd == start
                    || (night && a.lastPeriodEnd == previousNightEnd(rule, end));
            a.lastPeriodEnd = end;
            if (!consecutive) {
                a.run = 0; // a period without readings in between: unknown is not flow
            }
            if (flowing) {
                a.run++;
                int needed = night ? rule.nights : rule.count;
                if (a.open) {
                    breach(meter, slot, a, end, flow, fx);
                } else if (a.run >= needed) {
                    String what = night ? a.run + " nights in a row with every step above " + rule.threshold
                            : a.run + " consecutive intervals of " + rule.everyMs / 60_000 + " min with flow";
                    open(meter, slot, a, end, flow, what, fx);
                }
            } else {
                a.run = 0;
                if (a.open) {
                    String why = night ? (steps < 2 ? "a night with " + steps + " steps" : "a night with a step at or below "
                            + rule.threshold) : "an interval without flow";
                    resolve(meter, slot, a, end, flow, null, why, fx);
                }
            }
            if (night && (a.run > 0 || a.open)) {
                long[] next = nightEnding(rule, nextNightEnd(rule, end));
                int created = a.period(next[0], next[1]);
                if ((created & AlertState.CREATED) != 0) {
                    fx.wakeAt(next[1] - 1); // so a night without readings is judged too
                }
            }
        }
    }

    // ------------------------------------------------------------------ lifecycle

    private void open(String meter, Plan.Slot slot, AlertState a, long t, double value, String detail, Effects fx) {
        a.open = true;
        a.id = id(meter, slot, t);
        a.openedAt = t;
        a.lastSeen = t;
        a.resolvedAt = AlertState.NONE;
        a.breaches = 1;
        a.firstValue = value;
        a.lastValue = value;
        a.peakValue = value;
        a.severity = slot.rule.severity;
        a.escalated = false;
        a.ackBy = null;
        a.ackAt = AlertState.NONE;
        a.detail = detail;
        fx.emit(event(meter, slot, a, OPENED, t, value, null));
        if (slot.rule.escalateAfterMs > 0) {
            fx.wakeAt(t + slot.rule.escalateAfterMs);
        }
    }

    private void breach(String meter, Plan.Slot slot, AlertState a, long t, double value, Effects fx) {
        a.breaches++;
        a.lastValue = value;
        if (slot.rule.worse(value, a.peakValue)) {
            a.peakValue = value;
        }
        a.lastSeen = Math.max(a.lastSeen, t);
        fx.emit(event(meter, slot, a, UPDATED, t, value, null));
    }

    /**
     * Resolves at {@code t}, or at the opening when {@code t} is earlier: a late reading (arrival
     * order) may clear an alert it predates, and no alert resolves before it opened.
     */
    private void resolve(String meter, Plan.Slot slot, AlertState a, long t, double value, String by, String why,
            Effects fx) {
        long at = Math.max(t, a.openedAt);
        a.open = false;
        a.resolvedAt = at;
        a.detail = why;
        fx.emit(event(meter, slot, a, RESOLVED, at, value, by));
    }

    private AlertEvent event(String meter, Plan.Slot slot, AlertState a, String transition, long at, double value,
            String resolvedBy) {
        AlertEvent e = new AlertEvent();
        e.meterId = meter;
        e.slot = slot.index;
        e.transition = transition;
        e.at = at;
        e.alertId = a.id;
        e.open = a.open;
        e.openedAt = a.openedAt;
        e.lastSeen = a.lastSeen;
        e.resolvedAt = a.resolvedAt;
        e.breaches = a.breaches;
        e.value = value;
        e.firstValue = a.firstValue;
        e.lastValue = a.lastValue;
        e.peakValue = a.peakValue;
        e.severity = a.severity;
        e.escalated = a.escalated;
        e.ackBy = a.ackBy;
        e.ackAt = a.ackAt;
        e.resolvedBy = resolvedBy;
        e.detail = a.detail;
        return e;
    }

    /** A stable id: the same alert of a replay has the same id. */
    static String id(String meter, Plan.Slot slot, long openedAt) {
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-1");
            byte[] digest = sha.digest((meter + "|" + slot.key + "|" + openedAt).getBytes(StandardCharsets.UTF_8));
            return HexFormat.of().formatHex(digest, 0, 8);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JVM has no SHA-1", e);
        }
    }

    // ------------------------------------------------------------------ clocks (spec.timeZone)

    /** The flow slot's period containing {@code t} ({@link #interval} or {@link #night}), cached. */
    long[] period(Plan.Slot slot, long t) {
        int i = slot.index;
        if (cachedFrom[i] <= t && t < cachedTo[i]) {
            return periodCache[i];
        }
        Plan.Rule rule = slot.rule;
        long[] found = rule.kind == Plan.RuleKind.CONTINUOUS_FLOW ? interval(rule, t) : night(rule, t);
        long[] range = found != null ? found : betweenNights(rule, t);
        if (rule.kind == Plan.RuleKind.NIGHT_FLOW && clockChangesWithin(range[0], range[1])) {
            range = new long[] {t, t + 1}; // a night's hours may be cut short by the change: no shortcut
        }
        cachedFrom[i] = range[0];
        cachedTo[i] = range[1];
        periodCache[i] = found;
        return found;
    }

    private boolean clockChangesWithin(long from, long to) {
        if (from == Long.MIN_VALUE || to == Long.MAX_VALUE) {
            return true;
        }
        ZoneOffsetTransition next = plan.timeZone.getRules().nextTransition(Instant.ofEpochMilli(from - 1));
        return next != null && next.getInstant().toEpochMilli() <= to;
    }

    /** The instants [end of the night before, start of the night after) around {@code t}, outside a night. */
    private long[] betweenNights(Plan.Rule rule, long t) {
        LocalDate day = Instant.ofEpochMilli(t).atZone(plan.timeZone).toLocalDate();
        long before = Long.MIN_VALUE;
        long after = Long.MAX_VALUE;
        for (int d = -1; d <= 2; d++) {
            long[] n = nightEnding(rule, day.plusDays(d));
            if (n[1] <= t) {
                before = Math.max(before, n[1]);
            }
            if (n[0] > t) {
                after = Math.min(after, n[0]);
            }
        }
        return new long[] {before, after};
    }

    /**
     * The clock interval of {@code every} containing {@code t}, as {start, end} instants: intervals
     * run every {@code every} from each local midnight (so on a day when clocks change, an hour may
     * repeat or be missing, as the clock on the wall says) and the last one ends at the next midnight.
     */
    long[] interval(Plan.Rule rule, long t) {
        LocalDate day = Instant.ofEpochMilli(t).atZone(plan.timeZone).toLocalDate();
        long midnight = day.atStartOfDay(plan.timeZone).toInstant().toEpochMilli();
        long next = day.plusDays(1).atStartOfDay(plan.timeZone).toInstant().toEpochMilli();
        long start = midnight + (t - midnight) / rule.everyMs * rule.everyMs;
        return new long[] {start, Math.min(start + rule.everyMs, next)};
    }

    /** The night whose hours contain {@code t}, or null: {start, end} instants. */
    long[] night(Plan.Rule rule, long t) {
        ZonedDateTime local = Instant.ofEpochMilli(t).atZone(plan.timeZone);
        int minute = local.getHour() * 60 + local.getMinute();
        LocalDate endDate;
        if (rule.fromMinute < rule.toMinute) {
            if (minute < rule.fromMinute || minute >= rule.toMinute) {
                return null;
            }
            endDate = local.toLocalDate();
        } else if (minute >= rule.fromMinute) {
            endDate = local.toLocalDate().plusDays(1);
        } else if (minute < rule.toMinute) {
            endDate = local.toLocalDate();
        } else {
            return null;
        }
        return nightEnding(rule, endDate);
    }

    private long[] nightEnding(Plan.Rule rule, LocalDate endDate) {
        LocalDate startDate = rule.fromMinute < rule.toMinute ? endDate : endDate.minusDays(1);
        long start = startDate.atTime(LocalTime.ofSecondOfDay(rule.fromMinute * 60L)).atZone(plan.timeZone)
                .toInstant().toEpochMilli();
        long end = endDate.atTime(LocalTime.ofSecondOfDay(rule.toMinute * 60L)).atZone(plan.timeZone)
                .toInstant().toEpochMilli();
        return new long[] {start, end};
    }

    private LocalDate nextNightEnd(Plan.Rule rule, long end) {
        return Instant.ofEpochMilli(end).atZone(plan.timeZone).toLocalDate().plusDays(1);
    }

    private long previousNightEnd(Plan.Rule rule, long end) {
        return nightEnding(rule, Instant.ofEpochMilli(end).atZone(plan.timeZone).toLocalDate().minusDays(1))[1];
    }

}
