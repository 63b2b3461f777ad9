package io.meterflow.udf;

import java.time.DateTimeException;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.temporal.ChronoUnit;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonFactory;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonParser;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonToken;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.json.JsonReadFeature;

/**
 * Single-pass parsing of the reading contract (DESIGN.md), shared by the SQL functions.
 *
 * <p>Reason codes match meterflow/reading.py: bad_json, missing_field, wrong_type,
 * bad_timestamp, not_finite.
 */
final class ReadingParser {

    private static final JsonFactory JSON =
            JsonFactory.builder().enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS).build();

    /** A parsed reading, or the reason it is not one. */
    static final class Result {
        String meterId;
        String timestamp;
        String measurementType;
        String series;
        String unit;
        Double value;
        Instant eventTime;
        String error;
        String detail;

        Result fail(String reason, String why) {
            this.error = reason;
            this.detail = why;
            return this;
        }
    }

    private ReadingParser() {}

    static Result parse(String payload) {
        Result r = new Result();
        if (payload == null || payload.isEmpty()) {
            return r.fail("bad_json", "the record has no value");
        }
        try (JsonParser p = JSON.createParser(payload)) {
            if (p.nextToken() != JsonToken.START_OBJECT) {
                return r.fail("bad_json", "the record is not a JSON object");
            }
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String field = p.getCurrentName();
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
                        } else if (token == JsonToken.VALUE_NULL) {
                            r.value = null;
                        } else {
                            return r.fail("wrong_type", "value must be a number, got " + describe(p, token));
                        }
                        break;
                    default:
                        p.skipChildren();
                }
            }
            if (p.currentToken() != JsonToken.END_OBJECT || p.nextToken() != null) {
                return r.fail("bad_json", "unexpected content after the JSON object");
            }
        } catch (Exception e) {
            return r.fail("bad_json", "not valid JSON: " + firstLine(e.getMessage()));
        }
        String missing =
                empty(r.meterId) ? "meter_id"
                        : empty(r.timestamp) ? "timestamp"
                        : empty(r.measurementType) ? "measurement_type"
                        : empty(r.series) ? "series"
                        : empty(r.unit) ? "unit"
                        : r.value == null ? "value"
                        : null;
        if (missing != null) {
            return r.fail("missing_field", missing + " is missing or null");
        }
        if (r.value.isNaN() || r.value.isInfinite()) {
            return r.fail("not_finite", "value is " + r.value);
        }
        r.eventTime = instant(r.timestamp);
        if (r.eventTime == null) {
            return r.fail("bad_timestamp", "timestamp '" + r.timestamp + "' is not ISO 8601 with a UTC offset");
        }
        return r;
    }

    /** Only the event time: stops reading at the timestamp field. Null when there is none. */
    static Instant eventTime(String payload) {
        if (payload == null || payload.isEmpty()) {
            return null;
        }
        try (JsonParser p = JSON.createParser(payload)) {
            if (p.nextToken() != JsonToken.START_OBJECT) {
                return null;
            }
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String field = p.getCurrentName();
                JsonToken token = p.nextToken();
                if ("timestamp".equals(field)) {
                    return token == JsonToken.VALUE_STRING ? instant(p.getText()) : null;
                }
                p.skipChildren();
            }
        } catch (Exception e) {
            return null;
        }
        return null;
    }

    static Instant instant(String text) {
        try {
            return OffsetDateTime.parse(text).toInstant().truncatedTo(ChronoUnit.MILLIS);
        } catch (DateTimeException e) {
            return null;
        }
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
            return "the string '" + p.getText() + "'";
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
        return cut < 0 ? message : message.substring(0, cut);
    }
}
