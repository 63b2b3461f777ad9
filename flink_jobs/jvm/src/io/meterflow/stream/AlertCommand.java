package io.meterflow.stream;

/**
 * A person's action on an alert (``meterflow alerts ack|resolve``), from the alert-commands topic,
 * keyed by meter like the readings so it reaches the state that owns the alert.
 */
public final class AlertCommand {
    public String meterId;
    public String alertId;
    /** "ack" or "resolve". */
    public String action;
    public String by;
    /** When the person acted (wall clock, epoch milliseconds). */
    public long at;

    public AlertCommand() {}
}
