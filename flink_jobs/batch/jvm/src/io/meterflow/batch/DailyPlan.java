package io.meterflow.batch;

import java.io.IOException;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;

/**
 * What one batch run computes, as data: the lake table and snapshot to read, the scan window cut
 * into local days, and the measurements of the spec.
 *
 * <p>Python builds it ({@code flink_jobs/batch/daily.py}) and hands it over as JSON. The local
 * days are given as instants (epoch milliseconds of each day's start, and the end of the last), so
 * the JVM never converts time zones: Python's {@code day_bounds} is the one definition of a day.
 */
public final class DailyPlan implements Serializable {
    private static final long serialVersionUID = 1L;

    /** The kind of a measurement (the spec's {@code kind}). */
    public enum Kind { INTERVAL, REGISTER, GAUGE, POWER }

    /** One measurement of the spec. */
    public static final class Measurement implements Serializable {
        private static final long serialVersionUID = 1L;
        public final String name;
        public final String series;
        public final String unit;
        public final Kind kind;
        /**
         * A reading's value times this is its consumption (interval 1, power the hours of a reading:
         * meterflow/consumption.py); 0 for registers (stepped) and gauges.
         */
        public final double consumptionFactor;
        /** Battery readings are normalised to volts before they are aggregated. */
        public final boolean battery;

        public Measurement(String name, String series, String unit, Kind kind, double consumptionFactor,
                           boolean battery) {
            this.name = name;
            this.series = series;
            this.unit = unit;
            this.kind = kind;
            this.consumptionFactor = consumptionFactor;
            this.battery = battery;
        }
    }

    public final String jobName;
    public final int parallelism;
    public final String catalogName;
    public final Map<String, String> catalogProperties;
    public final String namespace;
    public final String table;
    /** The snapshot to read; null: the table's current one. */
    public final Long snapshotId;
    /** {@code dayStartsMs[i]} .. {@code dayStartsMs[i + 1]}: local day {@code i} of the scan (the last entry ends the scan). */
    public final long[] dayStartsMs;
    public final List<Measurement> measurements;
    /** A fall to at most this share of the previous register value is a reset. */
    public final double resetRatio;
    /** A reading whose event time is more than this ahead of its arrival counts against its meter's clock. */
    public final long clockAheadToleranceMs;
    /** Battery values above {@code batteryScale[0]} are on the second scale: {@code [split, scaleLow, scaleSpan, voltsLow, voltsSpan]}. */
    public final double[] batteryScale;
    /** The file the daily rows are written to (by the client, after the job). */
    public final String output;

    public DailyPlan(String jobName, int parallelism, String catalogName, Map<String, String> catalogProperties,
                     String namespace, String table, Long snapshotId, long[] dayStartsMs,
                     List<Measurement> measurements, double resetRatio, long clockAheadToleranceMs,
                     double[] batteryScale, String output) {
        if (dayStartsMs.length < 2) {
            throw new IllegalArgumentException("a scan needs at least one day");
        }
        for (int i = 1; i < dayStartsMs.length; i++) {
            if (dayStartsMs[i] <= dayStartsMs[i - 1]) {
                throw new IllegalArgumentException("day bounds must increase");
            }
        }
        if (measurements.size() > Byte.MAX_VALUE) {
            throw new IllegalArgumentException("at most 127 measurements");
        }
        this.jobName = jobName;
        this.parallelism = parallelism;
        this.catalogName = catalogName;
        this.catalogProperties = catalogProperties;
        this.namespace = namespace;
        this.table = table;
        this.snapshotId = snapshotId;
        this.dayStartsMs = dayStartsMs.clone();
        this.measurements = List.copyOf(measurements);
        this.resetRatio = resetRatio;
        this.clockAheadToleranceMs = clockAheadToleranceMs;
        if (batteryScale.length != 5) {
            throw new IllegalArgumentException("the battery scale has five numbers");
        }
        this.batteryScale = batteryScale.clone();
        this.output = output;
    }

    public long scanStartMs() {
        return dayStartsMs[0];
    }

    public long scanEndMs() {
        return dayStartsMs[dayStartsMs.length - 1];
    }

    /** A battery reading in volts, whichever of its two scales it came on ({@code flink_jobs/batch/battery.py}). */
    public double volts(double value) {
        if (value > batteryScale[0]) {
            return batteryScale[3] + (value - batteryScale[1]) * batteryScale[4] / batteryScale[2];
        }
        return value;
    }

    public int days() {
        return dayStartsMs.length - 1;
    }

    /** The plan Python wrote (see {@code flink_jobs/batch/daily.py}). */
    public static DailyPlan fromJson(String json) {
        try {
            JsonNode root = new ObjectMapper().readTree(json);
            JsonNode lake = root.get("lake");
            Map<String, String> props = new HashMap<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = lake.get("catalog_properties").fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                props.put(e.getKey(), e.getValue().asText());
            }
            JsonNode bounds = root.get("day_starts_ms");
            long[] days = new long[bounds.size()];
            for (int i = 0; i < days.length; i++) {
                days[i] = bounds.get(i).asLong();
            }
            List<Measurement> measurements = new ArrayList<>();
            for (JsonNode m : root.get("measurements")) {
                measurements.add(new Measurement(m.get("name").asText(), m.get("series").asText(),
                        m.get("unit").asText(), Kind.valueOf(m.get("kind").asText().toUpperCase(java.util.Locale.ROOT)),
                        m.get("consumption_factor").asDouble(), m.get("battery").asBoolean()));
            }
            JsonNode scale = root.get("battery_scale");
            double[] battery = new double[scale.size()];
            for (int i = 0; i < battery.length; i++) {
                battery[i] = scale.get(i).asDouble();
            }
            JsonNode snapshot = root.get("snapshot_id");
            return new DailyPlan(root.get("job_name").asText(), root.get("parallelism").asInt(),
                    lake.get("catalog_name").asText(), props, lake.get("namespace").asText(), lake.get("table").asText(),
                    snapshot == null || snapshot.isNull() ? null : snapshot.asLong(), days, measurements,
                    root.get("reset_ratio").asDouble(), root.get("clock_ahead_tolerance_ms").asLong(), battery, root.get("output").asText());
        } catch (IOException e) {
            throw new IllegalArgumentException("the batch plan is not valid JSON: " + e.getMessage(), e);
        }
    }
}
