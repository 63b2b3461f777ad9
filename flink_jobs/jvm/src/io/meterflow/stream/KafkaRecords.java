package io.meterflow.stream;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.time.Instant;

import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.flink.kafka.shaded.org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonFactory;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonGenerator;

/**
 * How each output becomes a Kafka record: dead letters, alerts and counters as JSON (few, and
 * read by people and downstream systems), window results as RowBinary blocks (many).
 */
final class KafkaRecords {
    private static final JsonFactory JSON = new JsonFactory();

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

    /** {@code <name>.readings.dlq}: the reason, a detail, the bounded payload and where it came from. */
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
            return new ProducerRecord<>(topic, null, null, null, value);
        }
    }

    /** {@code <name>.alerts}: one breach, keyed by meter (ClickHouse labels it with the meter's metadata). */
    static final class Alerts implements KafkaRecordSerializationSchema<Alert> {
        private static final long serialVersionUID = 1L;
        private final String topic;
        private final Plan plan;

        Alerts(String topic, Plan plan) {
            this.topic = topic;
            this.plan = plan;
        }

        @Override
        public ProducerRecord<byte[], byte[]> serialize(Alert a, KafkaSinkContext context, Long timestamp) {
            Plan.Measurement m = plan.measurements[a.measurement];
            Plan.Rule rule = m.rules.get(a.rule);
            byte[] value = json(g -> {
                g.writeStringField("meter_id", a.meterId);
                g.writeStringField("rule", rule.name);
                g.writeStringField("series", m.series);
                g.writeStringField("event_time", iso(a.eventTime));
                g.writeStringField("severity", rule.severity);
                g.writeStringField("measurement_type", m.name);
                g.writeStringField("unit", m.unit);
                g.writeNumberField("value", a.value);
                g.writeStringField("condition", rule.condition);
                g.writeNumberField("threshold", rule.threshold);
                g.writeBooleanField("late", a.late);
            });
            return new ProducerRecord<>(topic, null, null, a.meterId.getBytes(StandardCharsets.UTF_8), value);
        }
    }

    /** {@code <name>.counters}: the running total of one counter in one minute of arrival. */
    static final class Counters implements KafkaRecordSerializationSchema<CounterDelta> {
        private static final long serialVersionUID = 1L;
        private final String topic;

        Counters(String topic) {
            this.topic = topic;
        }

        @Override
        public ProducerRecord<byte[], byte[]> serialize(CounterDelta c, KafkaSinkContext context, Long timestamp) {
            byte[] value = json(g -> {
                g.writeStringField("minute", iso(c.minute));
                g.writeStringField("counter", c.counter);
                g.writeNumberField("value", c.delta);
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
