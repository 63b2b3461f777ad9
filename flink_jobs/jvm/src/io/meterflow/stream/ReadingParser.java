package io.meterflow.stream;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonFactory;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonParser;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonToken;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.json.JsonReadFeature;

/**
 * Single-pass parsing of the reading contract (DESIGN.md) from a Kafka record's bytes.
 *
 * <p>Reason codes match {@code meterflow/reading.py}: bad_encoding, bad_json, missing_field,
 * missing_value (a {@code "value": null}: the meter, or a replayed file's empty cell, had no value),
 * wrong_type, bad_timestamp, not_finite. Jackson reads the UTF-8 bytes directly (no String of the
 * whole payload is made); a payload that is not UTF-8 is {@code bad_encoding}, so distinct bad
 * meter ids never merge into one replacement character.
 */
final class ReadingParser {

    private static final JsonFactory JSON =
            JsonFactory.builder().enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS).build();

    /**
     * A parsed reading, or the reason it is not one (reused: one per parser thread). A failed parse
     * keeps the fields it read before it stopped (the meter id and the timestamp say whose dead
     * letter it is), but none of a payload that is not UTF-8.
     */
    static final class Result {
        String meterId;
        String timestamp;
        String measurementType;
        String series;
        String unit;
        double value;
        boolean hasValue;
        boolean valueNull;
        long eventTime;
        String error;
        String detail;

        void reset() {
            meterId = timestamp = measurementType = series = unit = error = detail = null;
            hasValue = valueNull = false;
            value = 0.0;
            eventTime = Timestamps.INVALID;
        }

        boolean fail(String reason, String why) {
            this.error = reason;
            this.detail = why;
            return false;
        }
    }

    private ReadingParser() {}

    /** Fills {@code r}; true when it holds a reading, false when {@code r.error} says why not. */
    static boolean parse(byte[] payload, Result r) {
        r.reset();
        if (payload == null || payload.length == 0) {
            return r.fail("bad_json", "the record has no value");
        }
        try (JsonParser p = JSON.createParser(payload)) {
            if (p.nextToken() != JsonToken.START_OBJECT) {
                return failUnlessBadEncoding(payload, r, "the record is not a JSON object");
            }
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String field = p.currentName();
                JsonToken token = p.nextToken();
                switch (field) {
                    case "meter_id":
                        r.meterId = text(p, token, true);
                        if (r.meterId == null) {
                            return r.fail("wrong_type", "meter_id must be a string or an integer");
                        }
                        break;
                    case "timestamp":
                        r.timestamp = text(p, token, false);
                        if (r.timestamp == null) {
                            return r.fail("wrong_type", "timestamp must be an ISO 8601 string");
                        }
                        break;
                    case "measurement_type":
                        r.measurementType = text(p, token, true);
                        if (r.measurementType == null) {
                            return r.fail("wrong_type", "measurement_type must be a string");
                        }
                        break;
                    case "series":
                        r.series = text(p, token, true);
                        if (r.series == null) {
                            return r.fail("wrong_type", "series must be a string");
                        }
                        break;
                    case "unit":
                        r.unit = text(p, token, false);
                        if (r.unit == null) {
                            return r.fail("wrong_type", "unit must be a string");
                        }
                        break;
                    case "value":
                        if (token == JsonToken.VALUE_NUMBER_INT || token == JsonToken.VALUE_NUMBER_FLOAT) {
                            r.value = p.getDoubleValue();
                            r.hasValue = true;
                            r.valueNull = false;
                        } else if (token == JsonToken.VALUE_NULL) {
                            r.hasValue = false;
                            r.valueNull = true;
                        } else {
                            return r.fail("wrong_type", "value must be a number, got " + describe(p, token));
                        }
                        break;
                    default:
                        p.skipChildren();
                }
            }
            if (p.currentToken() != JsonToken.END_OBJECT || p.nextToken() != null) {
                return failUnlessBadEncoding(payload, r, "unexpected content after the JSON object");
            }
        } catch (Exception e) {
            return failUnlessBadEncoding(payload, r, "not valid JSON: " + firstLine(e.getMessage()));
        }
        if (!ascii(payload) && !isUtf8(payload)) {
            return badEncoding(r);
        }
        String missing =
                empty(r.meterId) ? "meter_id"
                        : empty(r.timestamp) ? "timestamp"
                        : empty(r.measurementType) ? "measurement_type"
                        : empty(r.series) ? "series"
                        : empty(r.unit) ? "unit"
                        : !r.hasValue ? "value"
                        : null;
        if ("value".equals(missing) && r.valueNull) {
            return r.fail("missing_value", "value is null: the reading carries no value");
        }
        if (missing != null) {
            return r.fail("missing_field", missing + " is missing or null");
        }
        if (Double.isNaN(r.value) || Double.isInfinite(r.value)) {
            return r.fail("not_finite", "value is " + r.value);
        }
        r.eventTime = Timestamps.parseMillis(r.timestamp);
        if (r.eventTime == Timestamps.INVALID) {
            return r.fail("bad_timestamp", "timestamp '" + r.timestamp + "' is not ISO 8601 with a UTC offset");
        }
        return true;
    }

    /** True when {@code bytes} are well-formed UTF-8. */
    static boolean isUtf8(byte[] bytes) {
        try {
            StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes));
            return true;
        } catch (CharacterCodingException e) {
            return false;
        }
    }

    private static boolean ascii(byte[] bytes) {
        for (byte b : bytes) {
            if (b < 0) {
                return false;
            }
        }
        return true;
    }

    private static boolean failUnlessBadEncoding(byte[] payload, Result r, String why) {
        if (!isUtf8(payload)) {
            return badEncoding(r);
        }
        return r.fail("bad_json", why);
    }

    /** Not UTF-8: no text read from it is trusted, so it names no meter id and no timestamp. */
    private static boolean badEncoding(Result r) {
        r.meterId = null;
        r.timestamp = null;
        return r.fail("bad_encoding", "the record is not UTF-8 text (payload kept as base64)");
    }

    private static boolean empty(String s) {
        return s == null || s.isEmpty();
    }

    private static String text(JsonParser p, JsonToken token, boolean integersToo) throws java.io.IOException {
        if (token == JsonToken.VALUE_STRING || (integersToo && token == JsonToken.VALUE_NUMBER_INT)) {
            return p.getText();
        }
        if (token == JsonToken.VALUE_NULL) {
            return ""; // present but null: reported as missing
        }
        if (token == JsonToken.START_OBJECT || token == JsonToken.START_ARRAY) {
            p.skipChildren();
        }
        return null;
    }

    private static String describe(JsonParser p, JsonToken token) throws java.io.IOException {
        if (token == JsonToken.VALUE_STRING) {
            String text = p.getText();
            return "the string '" + (text.length() > 64 ? text.substring(0, 64) + "…" : text) + "'";
        }
        if (token == JsonToken.START_OBJECT || token == JsonToken.START_ARRAY) {
            p.skipChildren();
            return "a JSON " + (token == JsonToken.START_OBJECT ? "object" : "array");
        }
        return p.getText();
    }

    private static String firstLine(String message) {
        if (message == null) {
            return "unreadable";
        }
        int cut = message.indexOf('\n');
        String line = cut < 0 ? message : message.substring(0, cut);
        return line.length() > 200 ? line.substring(0, 200) + "…" : line;
    }
}
