package io.meterflow.stream;

/** A reading that breached a threshold rule (late readings too: a breach is a breach). */
public final class Alert {
    public String meterId;
    public int measurement;
    public int rule;
    public double value;
    public long eventTime;
    public boolean late;

    public Alert() {}
}
