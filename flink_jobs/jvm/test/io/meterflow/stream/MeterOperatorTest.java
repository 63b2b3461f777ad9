package io.meterflow.stream;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.apache.flink.table.data.RowData;
import org.junit.jupiter.api.Test;

/** The meter operator driving the alert rules, on Flink's mini-cluster (real timers and watermarks). */
class MeterOperatorTest {
    static final long H = AlertRulesTest.H;
    static final long T0 = AlertRulesTest.T0;

    static Reading reading(String meter, int measurement, long t, double value) {
        Reading r = new Reading();
        r.meterId = meter;
        r.measurement = measurement;
        r.eventTime = t;
        r.ingestTime = t;
        r.value = value;
        return r;
    }

    /** The operator fed {@code readings} (in this order) on a parallelism-1 mini-cluster job; its lake output. */
    static SingleOutputStreamOperator<RowData> wire(Plan plan, List<Reading> readings) {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.setParallelism(1);
        env.getConfig().enableObjectReuse(); // the lake rows go to a discarding sink uncopied
        DataStream<Reading> in = env.fromData(readings, ReadingTypeInfo.INSTANCE)
                .assignTimestampsAndWatermarks(WatermarkStrategy
                        .<Reading>forGenerator(context -> new ReadingWatermarks(plan.graceMs))
                        .withTimestampAssigner((r, ts) -> r.eventTime));
        AlertCommand none = new AlertCommand();
        none.meterId = "nobody";
        none.alertId = "none";
        none.action = "ack";
        none.by = "";
        DataStream<AlertCommand> commands = env.fromData(List.of(none), TypeInformation.of(AlertCommand.class));
        SingleOutputStreamOperator<RowData> lake = in.keyBy(new StreamingJob.ByMeter())
                .connect(commands.keyBy(new StreamingJob.CommandByMeter()))
                .transform("meters", TypeInformation.of(RowData.class), new MeterOperator(plan));
        lake.sinkTo(new DiscardingSink<>());
        return lake;
    }

    /** Runs {@code readings} (in this order) through the operator; the alert transitions it emits. */
    static List<AlertEvent> run(Plan plan, List<Reading> readings) throws Exception {
        List<AlertEvent> out = new ArrayList<>();
        try (var events = wire(plan, readings).getSideOutput(MeterOperator.ALERTS).executeAndCollect()) {
            events.forEachRemaining(out::add);
        }
        return out;
    }

    @Test
    void aRegistersFirstReadingEndsNoStepOfANight() throws Exception {
        Plan plan = AlertRulesTest.plan("{\"name\":\"NIGHT\",\"kind\":\"nightFlow\",\"measurement\":\"Pulse1_Total\","
                + "\"threshold\":0.5,\"from_minute\":120,\"to_minute\":300,\"nights\":1,\"severity\":\"WARNING\"}");
        int total = AlertRulesTest.TOTAL;
        List<AlertEvent> events = run(plan, List.of(
                reading("M1", total, T0 + 2 * H, 10), // the meter's first reading: no step
                reading("M1", total, T0 + 3 * H, 12),
                reading("M1", total, T0 + 4 * H, 14),
                reading("M2", total, T0 + 8 * H, 1))); // moves the watermark past the night's end
        assertEquals(1, events.size());
        AlertEvent opened = events.get(0);
        assertEquals("OPENED", opened.transition);
        assertEquals("M1", opened.meterId);
        assertEquals(T0 + 5 * H, opened.at); // the night's two steps of 2 L flow
        assertEquals(4.0, opened.value);
    }

    @Test
    void aPowerReadingConsumesItsIntervalsEnergy() throws Exception {
        double perMinute = 60_000.0 / 3_600_000.0; // what meterflow/consumption.py sends for a 1m interval
        String json = ReadingDeserializerTest.PLAN
                .replace("{\"name\":\"Pulse1\",\"series\":\"P1\",\"unit\":\"L\",\"kind\":\"interval\","
                        + "\"interval_ms\":900000,\"consumption_factor\":1.0,",
                        "{\"name\":\"active\",\"series\":\"house\",\"unit\":\"kW\",\"kind\":\"power\","
                        + "\"interval_ms\":60000,\"consumption_factor\":" + perMinute + ",")
                .replaceFirst("\"rules\":\\[.*?\\}\\],", "\"rules\":[],");
        Plan plan = Plan.fromJson(json);
        List<Reading> readings = List.of(reading("H", 0, T0, 3.0), reading("H", 0, T0 + 60_000, 6.0),
                reading("H", 0, T0 + 120_000, 1.2), reading("H", 0, T0 + H, 0.5)); // the last closes the window
        List<WindowResult> windows = new ArrayList<>();
        try (var out = wire(plan, readings).getSideOutput(MeterOperator.WINDOWS).executeAndCollect()) {
            out.forEachRemaining(windows::add);
        }
        WindowResult first = windows.stream().filter(w -> w.windowStart == T0).findFirst().orElseThrow();
        assertEquals(3, first.readings);
        assertEquals(10.2, first.sum, 1e-12); // the window's kW values, as a gauge's
        assertEquals(3.0 * perMinute + 6.0 * perMinute + 1.2 * perMinute, first.consumption); // kWh
    }
}
