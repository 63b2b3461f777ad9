package io.meterflow.batch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

/** The plan Python hands the JVM ({@code flink_jobs/batch/daily.py}, {@code plan}). */
class DailyPlanTest {
    /** The shape {@code daily.plan} writes, for the two Athens days 30 and 31 Mar 2024 (the second has 23 hours). */
    private static final String PYTHON_PLAN = """
            {"job_name": "meterflow-batch-water", "parallelism": 2,
             "lake": {"catalog_name": "meterflow",
                      "catalog_properties": {"type": "iceberg", "uri": "sqlite:///tmp/cat.db", "cache-enabled": false},
                      "namespace": "water", "table": "readings"},
             "snapshot_id": 4823904513901234567,
             "scan_days": ["2024-03-30", "2024-03-31"],
             "day_starts_ms": [1711749600000, 1711836000000, 1711918800000],
             "measurements": [
               {"name": "Pulse1", "series": "P1", "unit": "L", "kind": "interval", "consumption_factor": 1.0,
                "battery": false},
               {"name": "Pulse1_Total", "series": "T1", "unit": "L", "kind": "register", "consumption_factor": 0.0,
                "battery": false},
               {"name": "Battery", "series": "V", "unit": "V", "kind": "gauge", "consumption_factor": 0.0, "battery": true},
               {"name": "active", "series": "house", "unit": "kW", "kind": "power", "consumption_factor": 0.016666666666666666,
                "battery": false}],
             "reset_ratio": 0.1,
             "clock_ahead_tolerance_ms": 60000,
             "battery_scale": [10.0, 64.0, 13.0, 3.0, 0.6],
             "output": "/tmp/meterflow-daily-x.bin"}
            """;

    @Test
    void pythonsPlanIsRead() {
        DailyPlan p = DailyPlan.fromJson(PYTHON_PLAN);
        assertEquals("meterflow-batch-water", p.jobName);
        assertEquals(2, p.parallelism);
        assertEquals("meterflow", p.catalogName);
        assertEquals(Map.of("type", "iceberg", "uri", "sqlite:///tmp/cat.db", "cache-enabled", "false"),
                p.catalogProperties); // every property as text, as Flink's catalog options are
        assertEquals("water", p.namespace);
        assertEquals("readings", p.table);
        assertEquals(4823904513901234567L, p.snapshotId); // beyond an int, exactly
        // 30 Mar 00:00 EET = 29 Mar 22:00 UTC; 31 Mar 00:00 EET = 30 Mar 22:00 UTC; 1 Apr 00:00 EEST = 31 Mar 21:00 UTC
        assertArrayEquals(new long[] {DailyFixtures.ms("2024-03-29T22:00:00Z"), DailyFixtures.ms("2024-03-30T22:00:00Z"),
                DailyFixtures.ms("2024-03-31T21:00:00Z")}, p.dayStartsMs);
        assertEquals(2, p.days());
        assertEquals(1711749600000L, p.scanStartMs());
        assertEquals(1711918800000L, p.scanEndMs());
        assertEquals(23 * 3_600_000L, p.dayStartsMs[2] - p.dayStartsMs[1]);
        assertEquals(4, p.measurements.size());
        DailyPlan.Measurement pulse = p.measurements.get(0);
        assertEquals("Pulse1", pulse.name);
        assertEquals("P1", pulse.series);
        assertEquals("L", pulse.unit);
        assertEquals(DailyPlan.Kind.INTERVAL, pulse.kind); // Python sends the enum's value, "interval"
        assertFalse(pulse.battery);
        assertEquals(DailyPlan.Kind.REGISTER, p.measurements.get(1).kind);
        assertEquals(DailyPlan.Kind.GAUGE, p.measurements.get(2).kind);
        assertTrue(p.measurements.get(2).battery);
        assertEquals(DailyPlan.Kind.POWER, p.measurements.get(3).kind);
        assertEquals(1.0 / 60, p.measurements.get(3).consumptionFactor); // Python's 60000 / 3600000, to the bit
        assertEquals(1.0, pulse.consumptionFactor);
        assertEquals(0.1, p.resetRatio);
        assertArrayEquals(new double[] {10.0, 64.0, 13.0, 3.0, 0.6}, p.batteryScale);
        assertEquals("/tmp/meterflow-daily-x.bin", p.output);
    }

    @Test
    void noSnapshotMeansTheCurrentOne() {
        assertNull(DailyPlan.fromJson(PYTHON_PLAN.replace("4823904513901234567", "null")).snapshotId);
        assertNull(DailyPlan.fromJson(PYTHON_PLAN.replace("\"snapshot_id\": 4823904513901234567,", "")).snapshotId);
    }

    @Test
    void badPlansAreRefused() {
        IllegalArgumentException notJson = assertThrows(IllegalArgumentException.class,
                () -> DailyPlan.fromJson("{\"job_name\": "));
        assertTrue(notJson.getMessage().startsWith("the batch plan is not valid JSON"), notJson.getMessage());
        // the str() of the enum, the bug fixed in 1d559c6, names no kind
        assertThrows(IllegalArgumentException.class,
                () -> DailyPlan.fromJson(PYTHON_PLAN.replace("\"interval\"", "\"MeasurementKind.interval\"")));
        assertThrows(IllegalArgumentException.class, () -> DailyPlan.fromJson(
                PYTHON_PLAN.replace("[1711749600000, 1711836000000, 1711918800000]", "[1711749600000]")));
        assertThrows(IllegalArgumentException.class, () -> DailyPlan.fromJson(
                PYTHON_PLAN.replace("[1711749600000, 1711836000000, 1711918800000]",
                        "[1711749600000, 1711749600000, 1711918800000]"))); // a day of no length
        assertThrows(IllegalArgumentException.class, () -> DailyPlan.fromJson(
                PYTHON_PLAN.replace("[10.0, 64.0, 13.0, 3.0, 0.6]", "[10.0, 64.0, 13.0, 3.0]")));
        List<DailyPlan.Measurement> many = new ArrayList<>();
        for (int i = 0; i < 128; i++) {
            many.add(new DailyPlan.Measurement("m" + i, "s", "u", DailyPlan.Kind.GAUGE, 0.0, false));
        }
        assertThrows(IllegalArgumentException.class, () -> new DailyPlan("j", 1, "c", Map.of(), "ns", "t", null,
                new long[] {0, 1}, many, 0.1, 60_000L, new double[] {10, 64, 13, 3, 0.6}, "o")); // the block's int8 holds 127
    }

    @Test
    void theBoundsAreTheCallersNoMore() {
        long[] bounds = {0, 86_400_000L};
        DailyPlan p = DailyFixtures.plan(bounds);
        bounds[1] = 1;
        assertEquals(86_400_000L, p.scanEndMs()); // copied, not shared
    }

    @Test
    void batteryValuesAboveTenAreOnTheSecondScale() {
        DailyPlan p = DailyPlan.fromJson(PYTHON_PLAN);
        assertEquals(2.4, p.volts(2.4)); // volts already
        assertEquals(10.0, p.volts(10.0)); // the split itself is volts
        assertEquals(3.0, p.volts(64.0)); // 3.0 + 0 x 0.6 / 13
        assertEquals(3.3, p.volts(70.5), 1e-12); // 3.0 + 6.5 x 0.6 / 13 = 3.0 + 0.3
        assertEquals(3.6, p.volts(77.0), 1e-12); // 3.0 + 13 x 0.6 / 13
        assertEquals(3.0 - 53.5 * 0.6 / 13, p.volts(10.5), 1e-12); // just above the split: 0.530769... V
    }

    @Test
    void thePlanSurvivesJavaSerialization() throws Exception {
        // Flink ships the operator, and the plan in it, to the task managers as serialized Java objects
        DailyPlan p = DailyPlan.fromJson(PYTHON_PLAN);
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
            out.writeObject(p);
        }
        DailyPlan back;
        try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
            back = (DailyPlan) in.readObject();
        }
        assertArrayEquals(p.dayStartsMs, back.dayStartsMs);
        assertEquals(p.snapshotId, back.snapshotId);
        assertEquals(p.catalogProperties, back.catalogProperties);
        assertEquals("Pulse1_Total", back.measurements.get(1).name);
        assertEquals(DailyPlan.Kind.REGISTER, back.measurements.get(1).kind);
        assertTrue(back.measurements.get(2).battery);
        assertEquals(3.3, back.volts(70.5), 1e-12);
    }
}
