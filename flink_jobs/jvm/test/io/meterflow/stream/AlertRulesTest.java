package io.meterflow.stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;

import org.junit.jupiter.api.Test;

/** Every rule kind's lifecycle, driven the way the meter operator drives it. */
class AlertRulesTest {
    static final long H = 3_600_000L;
    static final long T0 = Instant.parse("2024-05-01T00:00:00Z").toEpochMilli();

    /** A plan with one interval, one register and one gauge measurement and the given rules (UTC clock). */
    static Plan plan(String rules) {
        return plan("UTC", rules);
    }

    /** The same plan on the clock of {@code zone}. */
    static Plan plan(String zone, String rules) {
        String json = ReadingDeserializerTest.PLAN
                .replace("\"time_zone\":\"Australia/Brisbane\"", "\"time_zone\":\"" + zone + "\"")
                .replaceFirst("\"rules\":\\[.*?\\}\\],", "\"rules\":[" + rules + "],")
                .replace("\"measurements\":[", "\"measurements\":[{\"name\":\"Battery\",\"series\":\"V\",\"unit\":\"V\","
                        + "\"kind\":\"gauge\",\"interval_ms\":86400000,\"consumption_factor\":0.0,\"min\":0.0,\"max\":100.0,\"range_text\":\"[0, 100]\"},");
        return Plan.fromJson(json);
    }

    static final int BATTERY = 0;
    static final int PULSE = 1;
    static final int TOTAL = 2;

    /** Records what the rules emit and the timers they ask for. */
    static final class Recorder implements AlertRules.Effects {
        final List<AlertEvent> events = new ArrayList<>();
        final TreeSet<Long> wakes = new TreeSet<>();

        @Override
        public void emit(AlertEvent event) {
            events.add(event);
        }

        @Override
        public void wakeAt(long eventTime) {
            wakes.add(eventTime);
        }

        String transitions() {
            StringBuilder out = new StringBuilder();
            for (AlertEvent e : events) {
                out.append(e.transition).append('@').append((e.at - T0) / 60_000).append("m ");
            }
            return out.toString().trim();
        }

        /** Fire every timer due at or before {@code upTo}, in order (as the watermark passes them). */
        void advance(AlertRules rules, MeterState state, long upTo) {
            while (!wakes.isEmpty() && wakes.first() <= upTo) {
                long t = wakes.pollFirst();
                rules.onTime("M1", state, t, this);
            }
        }
    }

    @Test
    void thresholdWithHysteresis() {
        Plan plan = plan("{\"name\":\"HIGH_FLOW\",\"kind\":\"threshold\",\"measurement\":\"Pulse1\",\"condition\":\">\","
                + "\"threshold\":500.0,\"clear_threshold\":400.0,\"severity\":\"WARNING\"}");
        AlertRules rules = new AlertRules(plan);
        MeterState state = new MeterState(3);
        Recorder fx = new Recorder();
        double[] values = {100, 600, 700, 450, 390, 600};
        for (int i = 0; i < values.length; i++) {
            rules.onReading("M1", state, PULSE, T0 + i * 15 * 60_000L, values[i], fx);
        }
        assertEquals("OPENED@15m UPDATED@30m RESOLVED@60m OPENED@75m", fx.transitions());
        AlertEvent resolved = fx.events.get(2);
        assertEquals(2, resolved.breaches);
        assertEquals(600, resolved.firstValue);
        assertEquals(700, resolved.peakValue);
        assertEquals(fx.events.get(0).alertId, resolved.alertId);
        assertNotEquals(resolved.alertId, fx.events.get(3).alertId);
        assertEquals(AlertRules.id("M1", plan.slots[0], T0 + 15 * 60_000L), resolved.alertId);
    }

    @Test
    void noDataOpensAfterTheSilenceAndTheNextReadingResolves() {
        Plan plan = plan("{\"name\":\"SILENT\",\"kind\":\"noData\",\"measurement\":null,\"for_ms\":" + 26 * H
                + ",\"severity\":\"WARNING\"}");
        AlertRules rules = new AlertRules(plan);
        MeterState state = new MeterState(3);
        Recorder fx = new Recorder();
        rules.onReading("M1", state, PULSE, T0, 1, fx);
        rules.onReading("M1", state, BATTERY, T0 + H, 3.3, fx); // any measurement keeps the meter alive
        fx.advance(rules, state, T0 + 26 * H); // the first deadline finds a newer reading: wait again
        assertEquals("", fx.transitions());
        fx.advance(rules, state, T0 + 27 * H);
        assertEquals("OPENED@1620m", fx.transitions());
        rules.onReading("M1", state, PULSE, T0 + 40 * H, 2, fx);
        assertEquals("OPENED@1620m RESOLVED@2400m", fx.transitions());
        assertTrue(fx.wakes.contains(T0 + 66 * H));
    }

    @Test
    void continuousFlowCountsClockIntervalsAndAGapBreaksTheRun() {
        Plan plan = plan("{\"name\":\"LEAK\",\"kind\":\"continuousFlow\",\"measurement\":\"Pulse1\",\"every_ms\":" + H
                + ",\"count\":3,\"severity\":\"WARNING\"}");
        AlertRules rules = new AlertRules(plan);
        MeterState state = new MeterState(3);
        Recorder fx = new Recorder();
        double[] flow = {5, 3, 1, 2, 0};
        for (int i = 0; i < flow.length; i++) {
            rules.onConsumption("M1", state, PULSE, T0 + i * H + 10 * 60_000L, flow[i], fx);
            rules.onConsumption("M1", state, PULSE, T0 + i * H + 40 * 60_000L, 0.0, fx);
            fx.advance(rules, state, T0 + (i + 1) * H - 1);
        }
        assertEquals("OPENED@180m UPDATED@240m RESOLVED@300m", fx.transitions());
        AlertEvent opened = fx.events.get(0);
        assertEquals(1.0, opened.value); // the third interval's flow
        // an interval without readings (05:00-06:00) breaks the next run: two flowing intervals do not open it
        for (int i = 6; i < 8; i++) {
            rules.onConsumption("M1", state, PULSE, T0 + i * H + 10 * 60_000L, 1, fx);
            fx.advance(rules, state, T0 + (i + 1) * H - 1);
        }
        rules.onConsumption("M1", state, PULSE, T0 + 9 * H + 10 * 60_000L, 1, fx); // after a second gap
        fx.advance(rules, state, T0 + 10 * H - 1);
        assertEquals(3, fx.events.size());
    }

    @Test
    void nightFlowNeedsEveryStepOfNightsInARow() {
        Plan plan = plan("{\"name\":\"NIGHT\",\"kind\":\"nightFlow\",\"measurement\":\"Pulse1_Total\",\"threshold\":0.5,"
                + "\"from_minute\":120,\"to_minute\":300,\"nights\":2,\"severity\":\"WARNING\"}");
        AlertRules rules = new AlertRules(plan);
        MeterState state = new MeterState(3);
        Recorder fx = new Recorder();
        long day = 24 * H;
        for (int night = 0; night < 2; night++) {
            rules.onConsumption("M1", state, TOTAL, T0 + night * day + 2 * H + 15 * 60_000L, 1.5, fx);
            rules.onConsumption("M1", state, TOTAL, T0 + night * day + 3 * H + 15 * 60_000L, 2.0, fx);
            rules.onConsumption("M1", state, TOTAL, T0 + night * day + 12 * H, 0.0, fx); // noon: not the night
            fx.advance(rules, state, T0 + night * day + 5 * H);
        }
        assertEquals("OPENED@1740m", fx.transitions()); // at 05:00 of the second night
        // the third night has no reading at all: it does not flow, and resolves
        fx.advance(rules, state, T0 + 2 * day + 5 * H);
        assertEquals("OPENED@1740m RESOLVED@3180m", fx.transitions());
    }

    @Test
    void aNightWithAStepAtTheThresholdDoesNotFlow() {
        Plan plan = plan("{\"name\":\"NIGHT\",\"kind\":\"nightFlow\",\"measurement\":\"Pulse1_Total\",\"threshold\":0.5,"
                + "\"from_minute\":1380,\"to_minute\":300,\"nights\":1,\"severity\":\"WARNING\"}");
        AlertRules rules = new AlertRules(plan);
        MeterState state = new MeterState(3);
        Recorder fx = new Recorder();
        // 23:00 the day before to 05:00: the night spans midnight
        rules.onConsumption("M1", state, TOTAL, T0 - H + 30 * 60_000L, 1, fx);
        rules.onConsumption("M1", state, TOTAL, T0 + 2 * H, 1, fx);
        fx.advance(rules, state, T0 + 5 * H);
        assertEquals("OPENED@300m", fx.transitions());
        rules.onConsumption("M1", state, TOTAL, T0 + 23 * H + 30 * 60_000L, 1, fx);
        rules.onConsumption("M1", state, TOTAL, T0 + 26 * H, 0.5, fx);
        fx.advance(rules, state, T0 + 29 * H);
        assertEquals("OPENED@300m RESOLVED@1740m", fx.transitions());
    }

    @Test
    void theCachedClockPeriodsAreTheZonesOwnAcrossClockChanges() {
        // Athens moves its clocks at 03:00/04:00 local: intervals of 45 min and nights around
        // midnight and across the changes, looked up in time order and back and forth
        Plan plan = plan("Europe/Athens", "{\"name\":\"LEAK\",\"kind\":\"continuousFlow\",\"measurement\":\"Pulse1\",\"every_ms\":"
                + 45 * 60_000L + ",\"count\":3,\"severity\":\"WARNING\"},"
                + "{\"name\":\"NIGHT\",\"kind\":\"nightFlow\",\"measurement\":\"Pulse1\",\"threshold\":0.0,"
                + "\"from_minute\":120,\"to_minute\":300,\"nights\":2,\"severity\":\"WARNING\"},"
                + "{\"name\":\"LATE_NIGHT\",\"kind\":\"nightFlow\",\"measurement\":\"Pulse1\",\"threshold\":0.0,"
                + "\"from_minute\":1380,\"to_minute\":210,\"nights\":2,\"severity\":\"WARNING\"}");
        AlertRules cached = new AlertRules(plan);
        AlertRules fresh = new AlertRules(plan);
        long[] days = {Instant.parse("2024-03-30T00:00:00Z").toEpochMilli(), Instant.parse("2024-10-26T00:00:00Z").toEpochMilli()};
        int compared = 0;
        for (long from : days) {
            for (int pass = 0; pass < 2; pass++) {
                for (long t = from; t < from + 3 * 24 * H; t += pass == 0 ? 60_000L : 7 * 60_000L + 13_000L) {
                    for (Plan.Slot slot : plan.slots) {
                        long probe = pass == 0 ? t : from + 3 * 24 * H - (t - from); // backwards too
                        long[] expected = slot.rule.kind == Plan.RuleKind.CONTINUOUS_FLOW
                                ? fresh.interval(slot.rule, probe) : fresh.night(slot.rule, probe);
                        long[] got = cached.period(slot, probe);
                        assertEquals(expected == null ? "none" : expected[0] + ".." + expected[1],
                                got == null ? "none" : got[0] + ".." + got[1], slot.key + " at " + Instant.ofEpochMilli(probe));
                        compared++;
                    }
                }
            }
        }
        assertTrue(compared > 20_000);
    }

    @Test
    void nextDueIsTheEarliestTimeTheRulesHaveWorkAt() {
        // the operator's window timers skip the rules until then
        Plan plan = plan("{\"name\":\"SILENT\",\"kind\":\"noData\",\"measurement\":null,\"for_ms\":" + 26 * H
                + ",\"severity\":\"WARNING\"},{\"name\":\"LEAK\",\"kind\":\"continuousFlow\",\"measurement\":\"Pulse1\","
                + "\"every_ms\":" + H + ",\"count\":2,\"escalate_after_ms\":" + 3 * H + ",\"severity\":\"WARNING\"}");
        AlertRules rules = new AlertRules(plan);
        MeterState state = new MeterState(3);
        Recorder fx = new Recorder();
        assertEquals(Long.MAX_VALUE, rules.nextDue(state));
        long silence = T0 + 10 * 60_000L + 26 * H;
        rules.onReading("M1", state, PULSE, T0 + 10 * 60_000L, 5, fx);
        assertEquals(silence, rules.nextDue(state));
        rules.onConsumption("M1", state, PULSE, T0 + 10 * 60_000L, 5, fx);
        assertEquals(T0 + H - 1, rules.nextDue(state)); // the interval's end
        fx.advance(rules, state, T0 + H - 1);
        assertEquals(silence, rules.nextDue(state));
        rules.onConsumption("M1", state, PULSE, T0 + H + 10 * 60_000L, 5, fx);
        fx.advance(rules, state, T0 + 2 * H - 1);
        assertEquals("OPENED@120m", fx.transitions());
        assertEquals(T0 + 5 * H, rules.nextDue(state)); // the escalation, before the silence
        assertEquals(fx.wakes.first(), rules.nextDue(state));
    }

    @Test
    void stuckIsTheSameValueForLong() {
        Plan plan = plan("{\"name\":\"STUCK\",\"kind\":\"stuck\",\"measurement\":\"Pulse1_Total\",\"for_ms\":" + 2 * H
                + ",\"severity\":\"WARNING\"}");
        AlertRules rules = new AlertRules(plan);
        MeterState state = new MeterState(3);
        Recorder fx = new Recorder();
        double[] values = {10, 10, 10, 10, 11};
        for (int i = 0; i < values.length; i++) {
            rules.onOrdered("M1", state, TOTAL, T0 + i * H, values[i], fx);
        }
        assertEquals("OPENED@120m UPDATED@180m RESOLVED@240m", fx.transitions());
    }

    @Test
    void anOutlierIsFarFromTheRollingMedianInMads() {
        Plan plan = plan("{\"name\":\"BATTERY_OUTLIER\",\"kind\":\"outlier\",\"measurement\":\"Battery\",\"count\":5,"
                + "\"threshold\":3.5,\"severity\":\"WARNING\"}");
        AlertRules rules = new AlertRules(plan);
        MeterState state = new MeterState(3);
        Recorder fx = new Recorder();
        // five readings fill the window; then 3.05 (z 0.34: median 3.0, MAD 0.1), 9.0 (z 80.3: median
        // 3.05, MAD 0.05), 9.5 (z 29.0: the 9.0 is in the window now, MAD 0.15), 3.0 (z -0.67: median 3.2)
        double[] values = {3.0, 3.1, 2.9, 3.0, 3.2, 3.05, 9.0, 9.5, 3.0};
        for (int i = 0; i < values.length; i++) {
            rules.onOrdered("M1", state, BATTERY, T0 + i * H, values[i], fx);
        }
        assertEquals("OPENED@360m UPDATED@420m RESOLVED@480m", fx.transitions());
        assertEquals("robust z-score 80.27 against the last 5 readings (limit 3.5)", fx.events.get(0).detail);
        assertEquals(9.5, fx.events.get(1).value);
    }

    @Test
    void theRobustZScoreFallsBackToTheMeanDeviationWhenTheMadIsZero() {
        double[] work = new double[5];
        assertEquals(0.6745 * 0.05 / 0.1, AlertRules.robustZ(new double[] {3.0, 3.1, 2.9, 3.0, 3.2}, 5, 3.05, work),
                1e-12);
        // four equal values: MAD 0; mean absolute deviation 0.2; 3 / (1.253314 x 0.2)
        assertEquals(3.0 / (1.253314 * 0.2), AlertRules.robustZ(new double[] {5, 5, 5, 5, 6}, 5, 8.0, work), 1e-12);
        assertEquals(0.0, AlertRules.robustZ(new double[] {5, 5, 5, 5, 5}, 5, 80.0, work)); // no spread: no judgement
        assertEquals(2.5, AlertRules.median(new double[] {4, 1, 3, 2}, 4));
    }

    @Test
    void anOutliersWindowSurvivesACheckpointAndStateOfTheFormerFormatStillReads() throws Exception {
        Plan plan = plan("{\"name\":\"BATTERY_OUTLIER\",\"kind\":\"outlier\",\"measurement\":\"Battery\",\"count\":5,"
                + "\"threshold\":3.5,\"severity\":\"WARNING\"}");
        AlertRules rules = new AlertRules(plan);
        MeterState state = new MeterState(3);
        Recorder fx = new Recorder();
        for (int i = 0; i < 7; i++) { // the ring wraps: 3.0 .. 3.6, the oldest two replaced
            rules.onOrdered("M1", state, BATTERY, T0 + i * H, 3.0 + i / 10.0, fx);
        }
        org.apache.flink.core.memory.DataOutputSerializer out = new org.apache.flink.core.memory.DataOutputSerializer(256);
        MeterStateSerializer.INSTANCE.serialize(state, out);
        byte[] bytes = out.getCopyOfBuffer();
        MeterState back = MeterStateSerializer.INSTANCE.deserialize(new org.apache.flink.core.memory.DataInputDeserializer(bytes));
        AlertRules again = new AlertRules(plan);
        Recorder fx2 = new Recorder();
        again.onOrdered("M1", back, BATTERY, T0 + 7 * H, 30.0, fx2); // judged against the restored window
        assertEquals("OPENED@420m", fx2.transitions());

        // format 1 (before the outlier windows): no -2 in front, no ring after each alert
        MeterState plain = new MeterState(1);
        AlertState stuck = plain.alert(0, new String[] {"STUCK|Battery|V"});
        stuck.hasValue = true;
        stuck.value = 3.3;
        stuck.since = T0;
        org.apache.flink.core.memory.DataOutputSerializer now = new org.apache.flink.core.memory.DataOutputSerializer(256);
        MeterStateSerializer.INSTANCE.serialize(plain, now);
        byte[] current = now.getCopyOfBuffer();
        byte[] former = java.util.Arrays.copyOfRange(current, 4, current.length - 12); // empty ring: 3 ints
        MeterState old = MeterStateSerializer.INSTANCE.deserialize(new org.apache.flink.core.memory.DataInputDeserializer(former));
        AlertState read = old.alerts[0];
        assertEquals("STUCK|Battery|V", read.key);
        assertEquals(3.3, read.value);
        assertEquals(T0, read.since);
        assertEquals(0, read.ringSize);
    }

    @Test
    void escalationAcknowledgementAndResolutionByHand() {
        Plan plan = plan("{\"name\":\"HIGH_FLOW\",\"kind\":\"threshold\",\"measurement\":\"Pulse1\",\"condition\":\">\","
                + "\"threshold\":500.0,\"escalate_after_ms\":" + H + ",\"severity\":\"WARNING\"}");
        AlertRules rules = new AlertRules(plan);
        MeterState state = new MeterState(3);
        Recorder fx = new Recorder();
        rules.onReading("M1", state, PULSE, T0, 600, fx);
        fx.advance(rules, state, T0 + H);
        assertEquals("OPENED@0m ESCALATED@60m", fx.transitions());
        assertEquals(2, fx.events.get(1).severity); // WARNING → CRITICAL
        String id = fx.events.get(0).alertId;
        AlertCommand ack = new AlertCommand();
        ack.meterId = "M1";
        ack.alertId = id;
        ack.action = "ack";
        ack.by = "ana";
        ack.at = T0 + 2 * H;
        rules.onCommand("M1", state, ack, fx);
        rules.onCommand("M1", state, ack, fx); // a second ack changes nothing
        AlertCommand resolve = new AlertCommand();
        resolve.meterId = "M1";
        resolve.alertId = id;
        resolve.action = "resolve";
        resolve.by = "ana";
        resolve.at = T0 + 3 * H;
        rules.onCommand("M1", state, resolve, fx);
        assertEquals("OPENED@0m ESCALATED@60m ACKNOWLEDGED@120m RESOLVED@180m", fx.transitions());
        assertEquals("ana", fx.events.get(3).resolvedBy);
        rules.onReading("M1", state, PULSE, T0 + 4 * H, 700, fx); // the next breach: a new alert
        assertEquals("OPENED@240m", fx.transitions().substring(fx.transitions().lastIndexOf(' ') + 1));
    }

    @Test
    void anAcknowledgedAlertDoesNotEscalate() {
        Plan plan = plan("{\"name\":\"HIGH_FLOW\",\"kind\":\"threshold\",\"measurement\":\"Pulse1\",\"condition\":\">\","
                + "\"threshold\":500.0,\"escalate_after_ms\":" + H + ",\"severity\":\"INFO\"}");
        AlertRules rules = new AlertRules(plan);
        MeterState state = new MeterState(3);
        Recorder fx = new Recorder();
        rules.onReading("M1", state, PULSE, T0, 600, fx);
        AlertCommand ack = new AlertCommand();
        ack.meterId = "M1";
        ack.alertId = fx.events.get(0).alertId;
        ack.action = "ack";
        ack.by = "bo";
        ack.at = T0 + 1;
        rules.onCommand("M1", state, ack, fx);
        fx.advance(rules, state, T0 + 2 * H);
        assertEquals("OPENED@0m ACKNOWLEDGED@0m", fx.transitions());
    }

    @Test
    void aLateReadingThatClearsAnAlertResolvesItNoEarlierThanItOpened() {
        Plan plan = plan("{\"name\":\"HIGH_FLOW\",\"kind\":\"threshold\",\"measurement\":\"Pulse1\",\"condition\":\">\","
                + "\"threshold\":500.0,\"severity\":\"WARNING\"}");
        AlertRules rules = new AlertRules(plan);
        MeterState state = new MeterState(3);
        Recorder fx = new Recorder();
        rules.onReading("M1", state, PULSE, T0 + 2 * H, 600, fx);
        rules.onReading("M1", state, PULSE, T0 + H, 20, fx); // late: from before the breach, it arrives after
        assertEquals("OPENED@120m RESOLVED@120m", fx.transitions());
        assertEquals(T0 + 2 * H, fx.events.get(1).resolvedAt);
        // noData: a late reading from inside the silence resolves the alert at its opening
        Plan silent = plan("{\"name\":\"SILENT\",\"kind\":\"noData\",\"measurement\":null,\"for_ms\":" + 26 * H
                + ",\"severity\":\"WARNING\"}");
        AlertRules noData = new AlertRules(silent);
        MeterState meter = new MeterState(3);
        Recorder out = new Recorder();
        noData.onReading("M1", meter, PULSE, T0, 1, out);
        out.advance(noData, meter, T0 + 30 * H);
        noData.onReading("M1", meter, BATTERY, T0 + 20 * H, 3.3, out);
        assertEquals("OPENED@1560m RESOLVED@1560m", out.transitions());
    }
}
