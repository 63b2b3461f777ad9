package io.meterflow.stream;

import java.io.IOException;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;

/**
 * The streaming job's plan: everything the JVM needs from a MeterPipeline, as data.
 *
 * <p>Python builds it from the spec ({@code flink_jobs/streaming/plan.py}) and hands it over as
 * JSON; the operators read it and never see the manifest. Measurements are addressed by their
 * position in {@link #measurements}, which is also how readings travel between operators.
 */
public final class Plan implements Serializable {
    private static final long serialVersionUID = 1L;

    /** The kind of a measurement (the spec's {@code kind}). */
    public enum Kind {
        INTERVAL, REGISTER, GAUGE, POWER;

        static Kind of(String text) {
            return Kind.valueOf(text.toUpperCase(java.util.Locale.ROOT));
        }
    }

    /** One measurement of the spec: what a valid reading of it looks like. */
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
        public final double min;
        public final double max;
        /** The range as the spec writes it, for dead-letter details ("[0, 100000]"). */
        public final String rangeText;
        /** Slots (rule on this measurement) of every kind, and those of meter-wide rules, in spec order. */
        public final List<Slot> slots = new ArrayList<>();

        Measurement(JsonNode node) {
            this.name = node.get("name").asText();
            this.series = node.get("series").asText();
            this.unit = node.get("unit").asText();
            this.kind = Kind.of(node.get("kind").asText());
            this.consumptionFactor = node.get("consumption_factor").asDouble();
            this.min = node.hasNonNull("min") ? node.get("min").asDouble() : Double.NEGATIVE_INFINITY;
            this.max = node.hasNonNull("max") ? node.get("max").asDouble() : Double.POSITIVE_INFINITY;
            this.rangeText = node.get("range_text").asText();
        }

        /** {@code name/series}: how messages name a measurement. */
        public String label() {
            return name + "/" + series;
        }
    }

    /** What an alert rule watches (the spec's {@code rules[].kind}). */
    public enum RuleKind {
        THRESHOLD, NO_DATA, CONTINUOUS_FLOW, NIGHT_FLOW, STUCK, OUTLIER;

        static RuleKind of(String text) {
            switch (text) {
                case "threshold": return THRESHOLD;
                case "noData": return NO_DATA;
                case "continuousFlow": return CONTINUOUS_FLOW;
                case "nightFlow": return NIGHT_FLOW;
                case "stuck": return STUCK;
                case "outlier": return OUTLIER;
                default: throw new IllegalArgumentException("unknown rule kind " + text);
            }
        }

        /** The spec's spelling. */
        String spec() {
            switch (this) {
                case NO_DATA: return "noData";
                case CONTINUOUS_FLOW: return "continuousFlow";
                case NIGHT_FLOW: return "nightFlow";
                case STUCK: return "stuck";
                case OUTLIER: return "outlier";
                default: return "threshold";
            }
        }
    }

    /** An alert rule of the spec, with the fields of its kind (absent ones are NaN / 0 / null). */
    public static final class Rule implements Serializable {
        private static final long serialVersionUID = 1L;
        static final String[] SEVERITIES = {"INFO", "WARNING", "CRITICAL"};

        public final String name;
        public final RuleKind kind;
        /** Null for a meter-wide noData rule. */
        public final String measurement;
        public final String condition;
        public final double threshold;
        public final double clearThreshold;
        public final long forMs;
        public final long everyMs;
        public final int count;
        public final int fromMinute;
        public final int toMinute;
        public final int nights;
        public final long escalateAfterMs;
        public final int severity;

        Rule(JsonNode node) {
            this.name = node.get("name").asText();
            this.kind = RuleKind.of(node.get("kind").asText());
            this.measurement = node.hasNonNull("measurement") ? node.get("measurement").asText() : null;
            this.condition = node.hasNonNull("condition") ? node.get("condition").asText() : null;
            this.threshold = node.hasNonNull("threshold") ? node.get("threshold").asDouble() : Double.NaN;
            this.clearThreshold = node.hasNonNull("clear_threshold") ? node.get("clear_threshold").asDouble() : Double.NaN;
            this.forMs = node.path("for_ms").asLong(0);
            this.everyMs = node.path("every_ms").asLong(0);
            this.count = node.path("count").asInt(0);
            this.fromMinute = node.path("from_minute").asInt(0);
            this.toMinute = node.path("to_minute").asInt(0);
            this.nights = node.path("nights").asInt(0);
            this.escalateAfterMs = node.path("escalate_after_ms").asLong(0);
            this.severity = java.util.Arrays.asList(SEVERITIES).indexOf(node.get("severity").asText());
            if (severity < 0) {
                throw new IllegalArgumentException("rule " + name + ": unknown severity " + node.get("severity"));
            }
            if (kind == RuleKind.THRESHOLD) {
                matches(0.0); // rejects an unknown condition early
            }
        }

        /** threshold: {@code value <condition> threshold}. */
        public boolean matches(double value) {
            switch (condition) {
                case ">": return value > threshold;
                case ">=": return value >= threshold;
                case "<": return value < threshold;
                case "<=": return value <= threshold;
                case "==": return value == threshold;
                case "!=": return value != threshold;
                default: throw new IllegalArgumentException("rule " + name + ": unknown condition " + condition);
            }
        }

        /** threshold: true when an open alert may resolve on {@code value} (hysteresis when clearThreshold is set). */
        public boolean clears(double value) {
            if (Double.isNaN(clearThreshold)) {
                return !matches(value);
            }
            return condition.startsWith(">") ? value <= clearThreshold : value >= clearThreshold;
        }

        /** A breach's value is "worse" than the peak so far (further beyond the threshold). */
        public boolean worse(double value, double peak) {
            return condition != null && condition.startsWith("<") ? value < peak : value > peak;
        }
    }

    /**
     * One place an alert can live for every meter: a rule on one measurement (a rule names a
     * measurement, which may have several series), or a meter-wide noData rule ({@code measurement} -1).
     */
    public static final class Slot implements Serializable {
        private static final long serialVersionUID = 1L;
        public final int index;
        public final Rule rule;
        public final int measurement;
        /** "rule|measurement|series": names the slot's state across spec changes. */
        public final String key;

        Slot(int index, Rule rule, int measurement, Measurement m) {
            this.index = index;
            this.rule = rule;
            this.measurement = measurement;
            this.key = (rule.name + "|" + (m == null ? "" : m.name + "|" + m.series)).intern();
        }
    }

    public final String pipeline;
    public final String jobName;
    public final int parallelism;
    public final Measurement[] measurements;
    /** Every alert slot, indexed by {@link Slot#index}. */
    public final Slot[] slots;
    /** Slots of rules that watch the whole meter (noData without a measurement). */
    public final Slot[] meterWideSlots;
    /** spec.timeZone: the clock of continuousFlow intervals and nightFlow nights. */
    public final java.time.ZoneId timeZone;
    public final long windowSizeMs;
    public final long windowSlideMs;
    /** The watermark trails the newest event time by this much (watermarkDelay + allowedLateness). */
    public final long graceMs;
    /** A register fall to at most this share of the previous value is a reset (meterflow/consumption.py). */
    public final double registerResetRatio;
    /** The columns of a window row, in the order ClickHouse's RowBinary insert names them. */
    public final List<String> aggregateColumns = new ArrayList<>();
    /** How long a reading's identity is remembered for de-duplication, from its arrival. */
    public final long dedupTtlMs;
    /** 0 = a silent partition holds the watermark back forever (runs that end with a drain). */
    public final long idleTimeoutMs;
    public final int deadLetterPayloadBytes;
    /** A reading stamped further than this ahead of its arrival is dead-lettered (future_timestamp). */
    public final long maxClockSkewMs;
    /** A reading stamped further than this behind its arrival is dead-lettered (too_old). */
    public final long maxReadingAgeMs;
    /** A longer meter id is dead-lettered (bad_meter_id). */
    public final int maxMeterIdChars;
    public final Kafka kafka;
    public final Lake lake;

    /** Where the job reads and writes Kafka. */
    public static final class Kafka implements Serializable {
        private static final long serialVersionUID = 1L;
        public final String bootstrap;
        public final String groupId;
        public final String readings;
        public final String deadLetters;
        public final String aggregates;
        public final String alerts;
        public final String counters;
        public final String alertCommands;
        public final String transactionalIdPrefix;
        public final Map<String, String> sourceProperties;

        Kafka(JsonNode node) {
            this.bootstrap = node.get("bootstrap").asText();
            this.groupId = node.get("group_id").asText();
            JsonNode topics = node.get("topics");
            this.readings = topics.get("readings").asText();
            this.deadLetters = topics.get("dlq").asText();
            this.aggregates = topics.get("aggregates").asText();
            this.alerts = topics.get("alerts").asText();
            this.counters = topics.get("counters").asText();
            this.alertCommands = topics.get("alert_commands").asText();
            this.transactionalIdPrefix = node.get("transactional_id_prefix").asText();
            this.sourceProperties = strings(node.get("source_properties"));
        }
    }

    /** The Iceberg table every valid reading lands in. */
    public static final class Lake implements Serializable {
        private static final long serialVersionUID = 1L;
        public final String catalogName;
        public final Map<String, String> catalogProperties;
        public final String namespace;
        public final String table;

        Lake(JsonNode node) {
            this.catalogName = node.get("catalog_name").asText();
            this.catalogProperties = strings(node.get("catalog_properties"));
            this.namespace = node.get("namespace").asText();
            this.table = node.get("table").asText();
        }
    }

    private Plan(JsonNode root) {
        this.pipeline = root.get("pipeline").asText();
        this.jobName = root.get("job_name").asText();
        this.parallelism = root.get("parallelism").asInt();
        JsonNode ms = root.get("measurements");
        this.measurements = new Measurement[ms.size()];
        for (int i = 0; i < ms.size(); i++) {
            measurements[i] = new Measurement(ms.get(i));
        }
        List<Slot> all = new ArrayList<>();
        List<Slot> meterWide = new ArrayList<>();
        for (JsonNode r : root.get("rules")) {
            Rule rule = new Rule(r);
            if (rule.measurement == null) {
                Slot slot = new Slot(all.size(), rule, -1, null);
                all.add(slot);
                meterWide.add(slot);
                continue;
            }
            boolean found = false;
            for (int i = 0; i < measurements.length; i++) {
                Measurement m = measurements[i];
                if (m.name.equals(rule.measurement)) {
                    Slot slot = new Slot(all.size(), rule, i, m);
                    all.add(slot);
                    m.slots.add(slot);
                    found = true;
                }
            }
            if (!found) {
                throw new IllegalArgumentException("rule " + rule.name + " names no measurement: " + rule.measurement);
            }
        }
        this.slots = all.toArray(new Slot[0]);
        this.meterWideSlots = meterWide.toArray(new Slot[0]);
        this.timeZone = java.time.ZoneId.of(root.get("time_zone").asText());
        JsonNode w = root.get("windows");
        this.windowSizeMs = w.get("size_ms").asLong();
        this.windowSlideMs = w.get("slide_ms").asLong();
        this.graceMs = w.get("grace_ms").asLong();
        if (windowSlideMs <= 0 || windowSizeMs % windowSlideMs != 0) {
            throw new IllegalArgumentException("window size " + windowSizeMs + " ms is not a multiple of the slide");
        }
        this.registerResetRatio = root.get("register_reset_ratio").asDouble();
        root.get("aggregate_columns").forEach(c -> aggregateColumns.add(c.asText()));
        this.dedupTtlMs = root.get("dedup_ttl_ms").asLong();
        this.idleTimeoutMs = root.get("idle_timeout_ms").asLong();
        this.deadLetterPayloadBytes = root.get("dead_letter_payload_bytes").asInt();
        this.maxClockSkewMs = root.get("max_clock_skew_ms").asLong();
        this.maxReadingAgeMs = root.get("max_reading_age_ms").asLong();
        this.maxMeterIdChars = root.get("max_meter_id_chars").asInt();
        this.kafka = new Kafka(root.get("kafka"));
        this.lake = new Lake(root.get("lake"));
    }

    public static Plan fromJson(String json) {
        try {
            return new Plan(new ObjectMapper().readTree(json));
        } catch (IOException e) {
            throw new IllegalArgumentException("the streaming job's plan is not valid JSON: " + e.getMessage(), e);
        }
    }

    /** The index of {@code (name, series)} in {@link #measurements}, or -1. */
    public int indexOf(String name, String series) {
        for (int i = 0; i < measurements.length; i++) {
            Measurement m = measurements[i];
            if (m.name.equals(name) && m.series.equals(series)) {
                return i;
            }
        }
        return -1;
    }

    /** Windows a reading at {@code t} belongs to (hopping windows overlap: size / slide of them). */
    public int windowsPerReading() {
        return (int) (windowSizeMs / windowSlideMs);
    }

    private static Map<String, String> strings(JsonNode node) {
        Map<String, String> out = new LinkedHashMap<>();
        if (node != null) {
            node.fields().forEachRemaining(e -> out.put(e.getKey(), e.getValue().asText()));
        }
        return out;
    }
}
