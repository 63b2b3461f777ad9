package io.meterflow.stream;

import java.io.IOException;
import java.time.Instant;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.kafka.shaded.org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.flink.util.Collector;

/**
 * Kafka record → {@link Reading}: one parse of the payload and the spec's validation, in the
 * source's own thread.
 *
 * <p>Validation is the plan's: the (measurement, series) must be one of the spec's, the unit
 * must be its unit, the value must lie in its [min, max], the meter id must be at most
 * {@code max_meter_id_chars} long, and the event time must lie between {@code max_reading_age_ms}
 * before and {@code max_clock_skew_ms} after the record's arrival. Anything else becomes a bounded
 * {@link DeadLetter} with a reason: bad_encoding, bad_json, missing_field, missing_value, wrong_type,
 * bad_timestamp, not_finite, unknown_measurement, unit_mismatch, out_of_range, bad_meter_id,
 * future_timestamp, too_old — attributed to the meter id and the instant the parser read, or to
 * the record's key ({@link DeadLetter#attribute}).
 */
public final class ReadingDeserializer implements KafkaRecordDeserializationSchema<Reading> {
    private static final long serialVersionUID = 1L;

    private final Plan plan;
    private transient ReadingParser.Result parsed;

    public ReadingDeserializer(Plan plan) {
        this.plan = plan;
    }

    @Override
    public void deserialize(ConsumerRecord<byte[], byte[]> record, Collector<Reading> out) throws IOException {
        deserializeValue(record.key(), record.value(), record.partition(), record.offset(), record.timestamp(), out);
    }

    /**
     * The record's value, with its key and where and when it arrived, as a reading or a dead letter
     * (the key is looked at only for a dead letter).
     */
    void deserializeValue(byte[] key, byte[] payload, int partition, long offset, long ingestTime, Collector<Reading> out) {
        if (parsed == null) {
            parsed = new ReadingParser.Result();
        }
        Reading reading = read(payload, partition, offset, ingestTime);
        if (reading.deadLetter != null) {
            ReadingParser.Result r = parsed;
            reading.deadLetter.attribute(r.meterId, r.timestamp, r.eventTime, key, plan.maxMeterIdChars);
        }
        out.collect(reading);
    }

    private Reading read(byte[] payload, int partition, long offset, long ingestTime) {
        ReadingParser.Result r = parsed;
        Reading reading = new Reading();
        reading.partition = partition;
        reading.offset = offset;
        reading.ingestTime = ingestTime;
        if (!ReadingParser.parse(payload, r)) {
            return dead(reading, r.error, r.detail, payload);
        }
        int index = plan.indexOf(r.measurementType, r.series);
        if (index < 0) {
            return dead(reading, "unknown_measurement",
                    "no measurement " + r.measurementType + "/" + r.series + " in this pipeline", payload);
        }
        Plan.Measurement m = plan.measurements[index];
        if (!m.unit.equals(r.unit)) {
            return dead(reading, "unit_mismatch", m.label() + " is in " + m.unit + ", got " + r.unit, payload);
        }
        if (r.value < m.min || r.value > m.max) {
            return dead(reading, "out_of_range", m.label() + " must lie in " + m.rangeText + ", got " + r.value, payload);
        }
        if (r.meterId.length() > plan.maxMeterIdChars) {
            return dead(reading, "bad_meter_id", "meter_id has " + r.meterId.length() + " characters; at most "
                    + plan.maxMeterIdChars + " are allowed", payload);
        }
        if (r.eventTime > ingestTime + plan.maxClockSkewMs) {
            return dead(reading, "future_timestamp", "timestamp " + r.timestamp + " is more than "
                    + plan.maxClockSkewMs / 1000 + " s ahead of the record's arrival ("
                    + Instant.ofEpochMilli(ingestTime) + "); check the device clock", payload);
        }
        if (r.eventTime < ingestTime - plan.maxReadingAgeMs) {
            return dead(reading, "too_old", "timestamp " + r.timestamp + " is more than "
                    + plan.maxReadingAgeMs / 86_400_000L + " days before the record's arrival ("
                    + Instant.ofEpochMilli(ingestTime) + "); check the device clock", payload);
        }
        reading.meterId = r.meterId;
        reading.measurement = index;
        reading.value = r.value;
        reading.eventTime = r.eventTime;
        return reading;
    }

    private Reading dead(Reading reading, String reason, String detail, byte[] payload) {
        reading.deadLetter = DeadLetter.of(reason, detail, payload, plan.deadLetterPayloadBytes,
                reading.partition, reading.offset, reading.ingestTime);
        return reading;
    }

    @Override
    public TypeInformation<Reading> getProducedType() {
        return ReadingTypeInfo.INSTANCE;
    }
}
