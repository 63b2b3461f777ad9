package io.meterflow.stream;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.time.Instant;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.kafka.shaded.org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.flink.kafka.shaded.org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonFactory;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonGenerator;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.util.Collector;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * How each output becomes a Kafka record — dead letters, alert transitions and counters as JSON
 * (few, and read by people and downstream systems), window results as RowBinary blocks (many) —
 * and how people's alert commands are read.
 */
final class KafkaRecords {
    private static final JsonFactory JSON = new JsonFactory();
    private static final Logger LOG = LoggerFactory.getLogger(KafkaRecords.class);

    private KafkaRecords() {}

    /** Writes one JSON object with {@code body} into a byte array. */
    private interface Body {
        void write(JsonGenerator g) throws IOException;
    }

    private static byte[] json(Body body) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(256);
        try (JsonGenerator g = JSON.createGenerator(out)) {
            g.writeStartObject();
            body.write(g);
            g.writeEndObject();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toByteArray();
    }

    private static String iso(long millis) {
        return Instant.ofEpochMilli(millis).toString();
    }

    /**
     * {@code <name>.readings.dlq}: the reason, a detail, the meter and instant it is attributed to,
     * the bounded payload and where it came from; keyed by the meter id (none when it is empty), so
     * one meter's dead letters keep to one partition, as its readings do.
     */
    static final class DeadLetters implements KafkaRecordSerializationSchema<DeadLetter> {
        private static final long serialVersionUID = 1L;
        private final String topic;
        private final String pipeline;

        DeadLetters(String topic, String pipeline) {
            this.topic = topic;
            this.pipeline = pipeline;
        }

        @Override
        public ProducerRecord<byte[], byte[]> serialize(DeadLetter d, KafkaSinkContext context, Long timestamp) {
            byte[] value = json(g -> {
                g.writeStringField("reason", d.reason);
                g.writeStringField("detail", d.detail);
                g.writeStringField("meter_id", d.meterId);
                if (d.eventTime == Timestamps.INVALID) {
                    g.writeNullField("event_time");
                } else {
                    g.writeStringField("event_time", iso(d.eventTime));
                }
                g.writeStringField("payload", d.payload);
                g.writeStringField("payload_encoding", d.payloadEncoding);
                g.writeNumberField("payload_bytes", d.payloadBytes);
                g.writeStringField("payload_sha256", d.payloadSha256);
                g.writeBooleanField("payload_truncated", d.payloadTruncated);
                g.writeStringField("source", "kafka");
                g.writeNumberField("source_partition", d.sourcePartition);
                g.writeNumberField("source_offset", d.sourceOffset);
                g.writeStringField("ingest_time", iso(d.ingestTime));
                g.writeStringField("pipeline", pipeline);
            });
            byte[] key = d.meterId.isEmpty() ? null : d.meterId.getBytes(StandardCharsets.UTF_8);
            return new ProducerRecord<>(topic, null, null, key, value);
        }
    }

    /** {@code <name>.alerts}: one transition of one alert, keyed by meter (ClickHouse adds the meter's labels). */
    static final class Alerts implements KafkaRecordSerializationSchema<AlertEvent> {
        private static final long serialVersionUID = 1L;
        private final String topic;
        private final Plan plan;

        Alerts(String topic, Plan plan) {
            this.topic = topic;
            this.plan = plan;
        }

        @Override
        public ProducerRecord<byte[], byte[]> serialize(AlertEvent a, KafkaSinkContext context, Long timestamp) {
            Plan.Slot slot = plan.slots[a.slot];
            Plan.Measurement m = slot.measurement < 0 ? null : plan.measurements[slot.measurement];
            Plan.Rule rule = slot.rule;
            byte[] value = json(g -> {
                g.writeStringField("alert_id", a.alertId);
                g.writeStringField("transition", a.transition);
                g.writeStringField("at", iso(a.at));
                g.writeStringField("meter_id", a.meterId);
                g.writeStringField("rule", rule.name);
                g.writeStringField("kind", rule.kind.spec());
                g.writeStringField("series", m == null ? "" : m.series);
                g.writeStringField("measurement_type", m == null ? "" : m.name);
                g.writeStringField("unit", m == null ? "" : m.unit);
                g.writeStringField("severity", Plan.Rule.SEVERITIES[a.severity]);
                g.writeStringField("state", a.open ? "OPEN" : "RESOLVED");
                g.writeStringField("event_time", iso(a.openedAt));
                g.writeStringField("last_seen", iso(a.lastSeen));
                if (a.resolvedAt != AlertState.NONE) {
                    g.writeStringField("resolved_at", iso(a.resolvedAt));
                }
                g.writeNumberField("breaches", a.breaches);
                g.writeNumberField("value", a.firstValue);
                g.writeNumberField("transition_value", a.value);
                g.writeNumberField("last_value", a.lastValue);
                g.writeNumberField("peak_value", a.peakValue);
                g.writeStringField("condition", rule.condition == null ? "" : rule.condition);
                g.writeNumberField("threshold", Double.isNaN(rule.threshold) ? 0.0 : rule.threshold);
                g.writeBooleanField("escalated", a.escalated);
                if (a.ackBy != null) {
                    g.writeStringField("acknowledged_by", a.ackBy);
                    g.writeStringField("acknowledged_at", iso(a.ackAt));
                }
                if (a.resolvedBy != null) {
                    g.writeStringField("by", a.resolvedBy);
                } else if (AlertRules.ACKNOWLEDGED.equals(a.transition)) {
                    g.writeStringField("by", a.ackBy);
                }
                g.writeStringField("detail", a.detail == null ? "" : a.detail);
            });
            return new ProducerRecord<>(topic, null, null, a.meterId.getBytes(StandardCharsets.UTF_8), value);
        }
    }

    /** {@code <name>.alert-commands}: a person's action, as {@code meterflow alerts ack|resolve} writes it. */
    static final class Commands implements KafkaRecordDeserializationSchema<AlertCommand> {
        private static final long serialVersionUID = 1L;
        private transient ObjectMapper mapper;

        @Override
        public void deserialize(ConsumerRecord<byte[], byte[]> record, Collector<AlertCommand> out) {
            if (mapper == null) {
                mapper = new ObjectMapper();
            }
            try {
                JsonNode node = mapper.readTree(record.value());
                AlertCommand c = new AlertCommand();
                c.meterId = node.get("meter_id").asText();
                c.alertId = node.get("alert_id").asText();
                c.action = node.get("action").asText();
                c.by = node.path("by").asText("");
                c.at = node.path("at_ms").asLong(record.timestamp());
                out.collect(c);
            } catch (IOException | NullPointerException e) {
                LOG.warn("skipped an alert command at offset {} that is not one: {}", record.offset(), e.getMessage());
            }
        }

        @Override
        public TypeInformation<AlertCommand> getProducedType() {
            return TypeInformation.of(AlertCommand.class);
        }
    }

    /** {@code <name>.counters}: the running total of one counter in one minute of arrival. */
    static final class Counters implements KafkaRecordSerializationSchema<CounterCount> {
        private static final long serialVersionUID = 1L;
        private final String topic;

        Counters(String topic) {
            this.topic = topic;
        }

        @Override
        public ProducerRecord<byte[], byte[]> serialize(CounterCount c, KafkaSinkContext context, Long timestamp) {
            byte[] value = json(g -> {
                g.writeStringField("minute", iso(c.minute));
                g.writeStringField("counter", c.counter);
                g.writeNumberField("value", c.count);
            });
            return new ProducerRecord<>(topic, null, null, c.key().getBytes(StandardCharsets.UTF_8), value);
        }
    }

    /** {@code <name>.aggregates}: a block of RowBinary window rows, as it is. */
    static final class Blocks implements KafkaRecordSerializationSchema<byte[]> {
        private static final long serialVersionUID = 1L;
        private final String topic;

        Blocks(String topic) {
            this.topic = topic;
        }

        @Override
        public ProducerRecord<byte[], byte[]> serialize(byte[] block, KafkaSinkContext context, Long timestamp) {
            return new ProducerRecord<>(topic, null, null, null, block);
        }
    }
}
