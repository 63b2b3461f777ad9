package io.meterflow.udf;

import java.time.DateTimeException;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.temporal.ChronoUnit;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonFactory;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonParser;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonToken;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.json.JsonReadFeature;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.FunctionHint;
import org.apache.flink.table.functions.TableFunction;
import org.apache.flink.types.Row;

/**
 * Parses one raw reading (the JSON contract of DESIGN.md) in a single pass, on the JVM.
 *
 * <p>Emits exactly one row per payload: the typed fields, or a reason code and a detail saying
 * what is wrong. Flink's own JSON format drops unparseable records silently; this function lets
 * the streaming job send them to the dead-letter topic instead. Reason codes are the ones of
 * meterflow/reading.py (bad_json, missing_field, wrong_type, bad_timestamp, not_finite).
 */
@FunctionHint(
        output =
                @DataTypeHint(
                        "ROW<meter_id STRING, event_time TIMESTAMP_LTZ(3), measurement_type STRING,"
                                + " series STRING, unit STRING, reading_value DOUBLE,"
                                + " error STRING, error_detail STRING>"))
public class ParseReading extends TableFunction<Row> {

    private static final JsonFactory JSON =
            JsonFactory.builder().enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS).build();

    public void eval(String payload) {
        if (payload == null || payload.isEmpty()) {
            collect(failure("bad_json", "the record has no value"));
            return;
        }
        String meterId = null, timestamp = null, type = null, series = null, unit = null;
        Double value = null;
        try (JsonParser p = JSON.createParser(payload)) {
            if (p.nextToken() != JsonToken.START_OBJECT) {
                collect(failure("bad_json", "the record is not a JSON object"));
                return;
            }
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String field = p.getCurrentName();
                JsonToken token = p.nextToken();
                switch (field) {
                    case "meter_id":
                        meterId = text(p, token, true);
                        if (meterId == null) {
                            collect(failure("wrong_type", "meter_id must be a string or an integer"));
                            return;
                        }
                        break;
                    case "timestamp":
                        timestamp = text(p, token, false);
                        if (timestamp == null) {
                            collect(failure("wrong_type", "timestamp must be an ISO 8601 string"));
                            return;
                        }
                        break;
                    case "measurement_type":
                        type = text(p, token, true);
                        if (type == null) {
                            collect(failure("wrong_type", "measurement_type must be a string"));
                            return;
                        }
                        break;
                    case "series":
                        series = text(p, token, true);
                        if (series == null) {
                            collect(failure("wrong_type", "series must be a string"));
                            return;
                        }
                        break;
                    case "unit":
                        unit = text(p, token, false);
                        if (unit == null) {
                            collect(failure("wrong_type", "unit must be a string"));
                            return;
                        }
                        break;
                    case "value":
                        if (token == JsonToken.VALUE_NUMBER_INT || token == JsonToken.VALUE_NUMBER_FLOAT) {
                            value = p.getDoubleValue();
                        } else if (token == JsonToken.VALUE_NULL) {
                            value = null;
                        } else {
                            collect(failure("wrong_type", "value must be a number, got " + describe(p, token)));
                            return;
                        }
                        break;
                    default:
                        p.skipChildren();
                }
            }
            if (p.currentToken() != JsonToken.END_OBJECT || p.nextToken() != null) {
                collect(failure("bad_json", "unexpected content after the JSON object"));
                return;
            }
        } catch (Exception e) {
            collect(failure("bad_json", "not valid JSON: " + firstLine(e.getMessage())));
            return;
        }
        String missing =
                meterId == null || meterId.isEmpty() ? "meter_id"
                        : timestamp == null ? "timestamp"
                        : type == null ? "measurement_type"
                        : series == null ? "series"
                        : unit == null ? "unit"
                        : value == null ? "value"
                        : null;
        if (missing != null) {
            collect(failure("missing_field", missing + " is missing or null"));
            return;
        }
        if (value.isNaN() || value.isInfinite()) {
            collect(failure("not_finite", "value is " + value));
            return;
        }
        Instant eventTime;
        try {
            eventTime = OffsetDateTime.parse(timestamp).toInstant().truncatedTo(ChronoUnit.MILLIS);
        } catch (DateTimeException e) {
            collect(failure("bad_timestamp", "timestamp '" + timestamp + "' is not ISO 8601 with a UTC offset"));
            return;
        }
        collect(Row.of(meterId, eventTime, type, series, unit, value, null, null));
    }

    private static String text(JsonParser p, JsonToken token, boolean integersToo) throws java.io.IOException {
        if (token == JsonToken.VALUE_STRING) {
            return p.getText();
        }
        if (integersToo && token == JsonToken.VALUE_NUMBER_INT) {
            return p.getText();
        }
        if (token == JsonToken.VALUE_NULL) {
            return "";  // present but null: reported as missing below
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

    private static Row failure(String reason, String detail) {
        return Row.of(null, null, null, null, null, null, reason, detail);
    }

    private static String firstLine(String message) {
        if (message == null) {
            return "unreadable";
        }
        int cut = message.indexOf('\n');
        return cut < 0 ? message : message.substring(0, cut);
    }
}
