package io.meterflow.stream;

/**
 * Everything the job keeps about one meter: a {@link SeriesState} per measurement of the plan.
 *
 * <p>Slots follow the plan's measurement order; each remembers its "name|series", so state
 * restored after the spec changed (a measurement added, removed or moved) is re-slotted by name.
 */
final class MeterState {
    SeriesState[] series;
    /** Alert slots of the plan (the same re-slotting by name as the series). */
    AlertState[] alerts = new AlertState[0];
    /**
     * The earliest event time the alert rules have work at ({@link AlertRules#nextDue}); not kept
     * in checkpoints or copies: {@link Long#MIN_VALUE} (unknown) makes the next timer visit them.
     */
    transient long rulesDue = Long.MIN_VALUE;

    MeterState(int measurements) {
        this.series = new SeriesState[measurements];
    }

    /** The state of alert slot {@code index} ({@code keys} are the plan's slot keys), created when absent. */
    AlertState alert(int index, String[] keys) {
        AlertState a = alertIfAny(index, keys);
        if (a == null) {
            a = new AlertState(keys[index]);
            alerts[index] = a;
        }
        return a;
    }

    /** The state of alert slot {@code index}, or null when it has none. */
    AlertState alertIfAny(int index, String[] keys) {
        if (alerts.length != keys.length) {
            realignAlerts(keys);
        }
        AlertState a = alerts[index];
        if (a != null && a.key != keys[index]) {
            realignAlerts(keys);
            a = alerts[index];
        }
        return a;
    }

    private void realignAlerts(String[] keys) {
        AlertState[] next = new AlertState[keys.length];
        for (AlertState a : alerts) {
            if (a == null) {
                continue;
            }
            for (int i = 0; i < keys.length; i++) {
                if (keys[i].equals(a.key)) {
                    a.key = keys[i];
                    next[i] = a;
                }
            }
        }
        alerts = next;
    }

    /** The state of measurement {@code index} ({@code keys} are the plan's), created when absent. */
    SeriesState series(int index, String[] keys) {
        SeriesState s = index < series.length ? series[index] : null;
        if (s != null && s.key == keys[index]) {
            return s;
        }
        if (s == null && series.length == keys.length && aligned(keys)) {
            s = new SeriesState(keys[index]);
            series[index] = s;
            return s;
        }
        realign(keys);
        if (series[index] == null) {
            series[index] = new SeriesState(keys[index]);
        }
        return series[index];
    }

    private boolean aligned(String[] keys) {
        for (int i = 0; i < series.length; i++) {
            if (series[i] != null && series[i].key != keys[i]) {
                return false;
            }
        }
        return true;
    }

    /** Re-slots restored state by name; state of a measurement the plan no longer has is dropped. */
    private void realign(String[] keys) {
        SeriesState[] next = new SeriesState[keys.length];
        for (SeriesState s : series) {
            if (s == null) {
                continue;
            }
            for (int i = 0; i < keys.length; i++) {
                if (keys[i].equals(s.key)) {
                    s.key = keys[i];
                    next[i] = s;
                }
            }
        }
        series = next;
    }

    MeterState copy() {
        MeterState c = new MeterState(series.length);
        for (int i = 0; i < series.length; i++) {
            c.series[i] = series[i] == null ? null : series[i].copy();
        }
        c.alerts = new AlertState[alerts.length];
        for (int i = 0; i < alerts.length; i++) {
            c.alerts[i] = alerts[i] == null ? null : alerts[i].copy();
        }
        return c;
    }
}
