package io.meterflow.stream;

/**
 * A transition of one alert (opened, updated, escalated, acknowledged, resolved) with the alert's
 * state after it: what the alerts topic carries and ClickHouse's {@code alerts} (latest per alert)
 * and {@code alert_events} (every transition) hold.
 */
public final class AlertEvent {
    public String meterId;
    public int slot;
    public String transition;
    /** When the transition happened: event time, or the wall clock of an acknowledgement. */
    public long at;
    public String alertId;
    public boolean open;
    public long openedAt;
    public long lastSeen;
    public long resolvedAt;
    public long breaches;
    /** The value that made this transition (the breaching reading, the interval's flow ...). */
    public double value;
    public double firstValue;
    public double lastValue;
    public double peakValue;
    public int severity;
    public boolean escalated;
    public String ackBy;
    public long ackAt;
    /** Who resolved it by hand (a resolve command), else null. */
    public String resolvedBy;
    public String detail;

    public AlertEvent() {}
}
