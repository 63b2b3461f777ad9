package io.meterflow.batch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.util.List;

import io.meterflow.batch.DailyFixtures.Row;
import org.junit.jupiter.api.Test;

/** The daily rows' wire form: the block {@code flink_jobs/batch/daily.py} decodes with numpy. */
class DailyRowsTest {
    private static MeterReadings.Group group(int measurement, int day, long readings, double sum) {
        MeterReadings.Group g = new MeterReadings.Group(measurement, day);
        g.readings = readings;
        g.sum = sum;
        return g;
    }

    @Test
    void oneRowHasEveryColumnInTheDocumentedOrder() {
        MeterReadings.Group g = group(3, 300, 96, 814.0);
        g.min = -1.25;
        g.max = 40.0;
        g.consumption = 814.0;
        g.hasConsumption = true;
        g.firstMs = 1_714_521_600_000L;
        g.lastMs = 1_714_607_099_999L;
        g.firstValue = 5.0;
        g.lastValue = 7.0;
        g.unanchored = true;
        g.resets = 2;
        g.negativeSteps = 4;
        g.negativeTotal = -3.5;
        g.maxGapMs = 900_000L;
        g.hasGap = true;
        g.late = 6;
        g.duplicates = 3;
        g.clockAhead = 1;
        g.maxAheadMs = 125_000L;
        g.hasArrival = true;
        g.maxFlatMs = 7_200_000L;
        DailyRows rows = new DailyRows();
        rows.add("m-ü", g, "°C");
        byte[] block = rows.toBytes();
        // 8 header bytes; 4 + 4 for the two string lengths and their UTF-8 bytes ("m-ü" 4, "°C" 3);
        // fixed columns: 1 + 2 + 8 + 5 x 8 + 1 + 2 x 8 + 2 x 8 + 1 + 4 + 4 + 8 + 8 + 1 + 4
        // + 4 + 4 + 8 + 1 + 8 = 139
        assertEquals(8 + 8 + 7 + 139, block.length);
        ByteBuffer head = ByteBuffer.wrap(block); // big-endian
        assertEquals(0x4d464431, head.getInt()); // "MFD1"
        assertEquals(1, head.getInt());
        assertEquals(4, head.getInt()); // UTF-8 bytes of "m-ü", not its 3 chars

        Row r = DailyFixtures.decode(block).get(0);
        assertEquals("m-ü", r.meter);
        assertEquals(3, r.measurement);
        assertEquals(300, r.day);
        assertEquals("°C", r.unit);
        assertEquals(96, r.readings);
        assertEquals(814.0, r.sum);
        assertEquals(814.0 / 96, r.avg); // sum / readings
        assertEquals(-1.25, r.min);
        assertEquals(40.0, r.max);
        assertEquals(814.0, r.consumption);
        assertTrue(r.hasConsumption);
        assertEquals(1_714_521_600_000L, r.firstMs);
        assertEquals(1_714_607_099_999L, r.lastMs);
        assertEquals(5.0, r.firstValue);
        assertEquals(7.0, r.lastValue);
        assertTrue(r.unanchored);
        assertEquals(2, r.resets);
        assertEquals(4, r.negativeSteps);
        assertEquals(-3.5, r.negativeTotal);
        assertEquals(900_000L, r.maxGapMs);
        assertTrue(r.hasGap);
        assertEquals(6, r.late);
        assertEquals(3, r.duplicates);
        assertEquals(1, r.clockAhead);
        assertEquals(125_000L, r.maxAheadMs);
        assertTrue(r.hasArrival);
        assertEquals(7_200_000L, r.maxFlatMs);
    }

    @Test
    void doublesTravelAsTheirExactBits() {
        MeterReadings.Group g = group(0, 0, 3, 0.1 + 0.2);
        g.min = Double.MIN_VALUE;
        g.max = -0.0;
        DailyRows rows = new DailyRows();
        rows.add("m", g, "L");
        Row r = DailyFixtures.decode(rows.toBytes()).get(0);
        assertEquals(Double.doubleToRawLongBits(0.30000000000000004), Double.doubleToRawLongBits(r.sum));
        assertEquals(Double.MIN_VALUE, r.min);
        assertEquals(Double.doubleToRawLongBits(-0.0), Double.doubleToRawLongBits(r.max));
    }

    @Test
    void rowsGrowPastTheirFirstArraysAndClearForTheNextBlock() {
        DailyRows rows = new DailyRows();
        for (int i = 0; i < 40; i++) { // the arrays start at 16 rows: grown to 32, then 64
            rows.add("m-" + i, group(i % 4, i, i + 1, 2.0 * i), "L");
        }
        assertEquals(40, rows.size());
        List<Row> decoded = DailyFixtures.decode(rows.toBytes());
        assertEquals(40, decoded.size());
        for (int i = 0; i < 40; i++) {
            Row r = decoded.get(i);
            assertEquals("m-" + i, r.meter);
            assertEquals(i % 4, r.measurement);
            assertEquals(i, r.day);
            assertEquals(i + 1, r.readings);
            assertEquals(2.0 * i, r.sum);
            assertFalse(r.hasConsumption);
        }
        rows.clear();
        assertEquals(0, rows.size());
        assertArrayEquals(new byte[] {0x4d, 0x46, 0x44, 0x31, 0, 0, 0, 0}, rows.toBytes()); // magic, no rows
        rows.add("again", group(1, 2, 1, 9.0), "V");
        List<Row> next = DailyFixtures.decode(rows.toBytes());
        assertEquals(1, next.size());
        assertEquals("again", next.get(0).meter);
        assertEquals(9.0, next.get(0).avg); // 9 / 1
    }
}
