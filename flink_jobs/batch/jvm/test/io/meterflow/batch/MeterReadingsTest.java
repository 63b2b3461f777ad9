package io.meterflow.batch;

import static io.meterflow.batch.DailyFixtures.BATTERY;
import static io.meterflow.batch.DailyFixtures.PER_MINUTE;
import static io.meterflow.batch.DailyFixtures.POWER;
import static io.meterflow.batch.DailyFixtures.PULSE;
import static io.meterflow.batch.DailyFixtures.TEMP;
import static io.meterflow.batch.DailyFixtures.TOTAL;
import static io.meterflow.batch.DailyFixtures.dayStart;
import static io.meterflow.batch.DailyFixtures.micros;
import static io.meterflow.batch.DailyFixtures.ms;
import static io.meterflow.batch.DailyFixtures.row;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import io.meterflow.batch.DailyFixtures.Readings;
import io.meterflow.batch.DailyFixtures.Row;
import org.junit.jupiter.api.Test;

/**
 * The per-day computation of one meter (docs/batch.md, "What is computed"): one row per
 * measurement x series x local day, with every figure checked against arithmetic done by hand.
 */
class MeterReadingsTest {
    private static final long MINUTE = 60_000L;
    private static final long HOUR = 3_600_000L;
    /** Four UTC days from 1 May 2024 (the zone does not matter until the DST tests). */
    private static final long MAY_1 = ms("2024-05-01T00:00:00Z");
    private static final DailyPlan MAY = DailyFixtures.plan(MAY_1, MAY_1 + 24 * HOUR, MAY_1 + 48 * HOUR,
            MAY_1 + 72 * HOUR, MAY_1 + 96 * HOUR);

    /** Microseconds of {@code ms} epoch milliseconds. */
    private static long us(long ms) {
        return ms * 1000L;
    }

    @Test
    void anIntervalDayIsCountedSummedAndBoundedInEventTimeOrder() {
        List<Row> rows = new Readings()
                .add(PULSE, us(MAY_1 + 90 * MINUTE), 4.0) // 01:30, added first
                .add(PULSE, us(MAY_1 + 60 * MINUTE), 1.5) // 01:00
                .add(PULSE, us(MAY_1 + 75 * MINUTE), 2.5) // 01:15
                .daily(MAY);
        assertEquals(1, rows.size());
        Row r = row(rows, PULSE, 0);
        assertEquals("m-1", r.meter);
        assertEquals("L", r.unit);
        assertEquals(3, r.readings);
        assertEquals(8.0, r.sum); // 1.5 + 2.5 + 4.0
        assertEquals(8.0 / 3, r.avg);
        assertEquals(1.5, r.min);
        assertEquals(4.0, r.max);
        assertTrue(r.hasConsumption);
        assertEquals(8.0, r.consumption); // interval: the sum of the values
        assertEquals(MAY_1 + 60 * MINUTE, r.firstMs);
        assertEquals(MAY_1 + 90 * MINUTE, r.lastMs);
        assertEquals(1.5, r.firstValue); // the earliest reading's, not the first added
        assertEquals(4.0, r.lastValue);
        assertTrue(r.unanchored); // the series' first reading of the scan is on this day
        assertEquals(0, r.resets);
        assertEquals(0, r.negativeSteps);
        assertEquals(0.0, r.negativeTotal);
        assertTrue(r.hasGap);
        assertEquals(15 * MINUTE, r.maxGapMs); // 01:00 -> 01:15 -> 01:30; the first has no gap
        assertEquals(0, r.late);
    }

    @Test
    void aPowerDayConsumesEachReadingsEnergyAndAveragesItsPower() {
        List<Row> rows = new Readings()
                .add(POWER, us(MAY_1 + 2 * MINUTE), 1.2) // kW over the minute 00:02
                .add(POWER, us(MAY_1), 3.0)
                .add(POWER, us(MAY_1 + MINUTE), 6.0)
                .daily(MAY);
        Row r = row(rows, POWER, 0);
        assertEquals("kW", r.unit); // the values' unit; consumption is kWh (meterflow/consumption.py)
        assertEquals(3, r.readings);
        assertEquals(10.2, r.sum, 1e-12);
        assertEquals(1.2, r.min);
        assertEquals(6.0, r.max);
        assertTrue(r.hasConsumption);
        assertEquals(3.0 * PER_MINUTE + 6.0 * PER_MINUTE + 1.2 * PER_MINUTE, r.consumption); // in event-time order
    }

    @Test
    void registerStepsResetsAndNegativeStepsFollowTheSeriesAcrossDays() {
        List<Row> rows = new Readings()
                .add(TOTAL, us(MAY_1 + 1 * HOUR), 100.0) // day 0: the series' first reading, step 0
                .add(TOTAL, us(MAY_1 + 2 * HOUR), 110.0) // +10
                .add(TOTAL, us(MAY_1 + 3 * HOUR), 108.0) // -2: a negative step (108 > 110 x 0.1)
                .add(TOTAL, us(MAY_1 + 25 * HOUR), 120.0) // day 1: 120 - 108 = +12 (previous on day 0)
                .add(TOTAL, us(MAY_1 + 26 * HOUR), 80.0) // -40: negative (80 > 12)
                .add(TOTAL, us(MAY_1 + 27 * HOUR), 8.0) // reset: 8 <= 80 x 0.1 = 8 (at most 10 %), step 8
                .add(TOTAL, us(MAY_1 + 28 * HOUR), 8.5) // +0.5
                .add(TOTAL, us(MAY_1 + 29 * HOUR), 7.0) // -1.5: negative (7 > 8.5 x 0.1 = 0.85)
                .add(TOTAL, us(MAY_1 + 72 * HOUR), 10.0) // day 3 at its very start: 10 - 7 = +3 (day 2 is empty)
                .daily(MAY);
        assertEquals(3, rows.size()); // no row for day 2

        Row d0 = row(rows, TOTAL, 0);
        assertEquals(3, d0.readings);
        assertTrue(d0.hasConsumption);
        assertEquals(8.0, d0.consumption); // 0 + 10 - 2: steps, never the sum of the register (318)
        assertEquals(318.0, d0.sum); // 100 + 110 + 108
        assertEquals(106.0, d0.avg); // 318 / 3
        assertEquals(100.0, d0.min);
        assertEquals(110.0, d0.max);
        assertEquals(100.0, d0.firstValue);
        assertEquals(108.0, d0.lastValue);
        assertTrue(d0.unanchored);
        assertEquals(0, d0.resets);
        assertEquals(1, d0.negativeSteps);
        assertEquals(-2.0, d0.negativeTotal);
        assertEquals(HOUR, d0.maxGapMs);

        Row d1 = row(rows, TOTAL, 1);
        assertEquals(5, d1.readings);
        assertEquals(-21.0, d1.consumption); // 12 - 40 + 8 + 0.5 - 1.5
        assertEquals(223.5, d1.sum); // 120 + 80 + 8 + 8.5 + 7
        assertEquals(44.7, d1.avg, 1e-12); // 223.5 / 5
        assertEquals(7.0, d1.min);
        assertEquals(120.0, d1.max);
        assertEquals(120.0, d1.firstValue);
        assertEquals(7.0, d1.lastValue);
        assertFalse(d1.unanchored); // its first step had its predecessor (108, day 0)
        assertEquals(1, d1.resets);
        assertEquals(2, d1.negativeSteps);
        assertEquals(-41.5, d1.negativeTotal); // -40 - 1.5; the reset is not a negative step
        assertEquals(22 * HOUR, d1.maxGapMs); // day 0 03:00 -> day 1 01:00
        assertEquals(MAY_1 + 25 * HOUR, d1.firstMs);
        assertEquals(MAY_1 + 29 * HOUR, d1.lastMs);

        Row d3 = row(rows, TOTAL, 3);
        assertEquals(1, d3.readings);
        assertEquals(3.0, d3.consumption); // 10 - 7, the previous reading two days earlier
        assertEquals(0, d3.resets); // 10 > 7 x 0.1 and rising anyway
        assertFalse(d3.unanchored);
        assertEquals(43 * HOUR, d3.maxGapMs); // day 1 05:00 -> day 3 00:00
        assertEquals(MAY_1 + 72 * HOUR, d3.firstMs);
    }

    @Test
    void eachSeriesIsAnchoredOnItsOwnFirstReading() {
        List<Row> rows = new Readings()
                .add(PULSE, us(MAY_1 + HOUR), 3.0)
                .add(PULSE, us(MAY_1 + 25 * HOUR), 4.0)
                .add(TOTAL, us(MAY_1 + 26 * HOUR), 5000.0) // the register's first reading: step 0 however large
                .add(TOTAL, us(MAY_1 + 27 * HOUR), 5012.25) // +12.25
                .daily(MAY);
        assertEquals(3, rows.size());
        assertTrue(row(rows, PULSE, 0).unanchored);
        assertFalse(row(rows, PULSE, 1).unanchored);
        Row total = row(rows, TOTAL, 1);
        assertTrue(total.unanchored);
        assertEquals(12.25, total.consumption); // 0 + (5012.25 - 5000)
        assertEquals(0, total.resets);
        assertEquals(0, total.negativeSteps);
    }

    @Test
    void aDuplicateKeepsTheFirstArrivalToTheMicrosecond() {
        long t = MAY_1 + HOUR;
        long t2 = MAY_1 + HOUR + 15 * MINUTE;
        List<Row> rows = new Readings()
                // three arrivals of one reading at t: the one without an ingest time sorts first and is kept
                .add(PULSE, us(t), 1.0, 2000L, 0, 0L, true, null)
                .add(PULSE, us(t), 2.0, 1000L, 0, 1L, false, null)
                .add(PULSE, us(t), 3.0, ReadingBlock.NULL_LONG, 0, 2L, false, null)
                // three at t2 ingested together: partition 0 before 1, then offset 3 before 9
                .add(PULSE, us(t2), 4.0, 500L, 1, 0L, false, null)
                .add(PULSE, us(t2), 5.0, 500L, 0, 9L, false, null)
                .add(PULSE, us(t2), 6.0, 500L, 0, 3L, true, null)
                // one microsecond later: another reading, in the same millisecond
                .add(PULSE, us(t) + 1, 0.5, 100L, 0, 4L, false, null)
                // the same instant in another series: not a duplicate
                .add(TOTAL, us(t), 50.0, 3000L, 0, 5L, false, null)
                .daily(MAY);
        Row pulse = row(rows, PULSE, 0);
        assertEquals(3, pulse.readings); // 3.0 @t, 0.5 @t+1us, 6.0 @t2
        assertEquals(9.5, pulse.sum); // 3 + 0.5 + 6
        assertEquals(9.5, pulse.consumption);
        assertEquals(0.5, pulse.min);
        assertEquals(6.0, pulse.max);
        assertEquals(3.0, pulse.firstValue);
        assertEquals(6.0, pulse.lastValue);
        assertEquals(1, pulse.late); // the kept 6.0 was late; the dropped 1.0's flag does not count
        assertEquals(t, pulse.firstMs);
        assertEquals(t2, pulse.lastMs);
        assertEquals(15 * MINUTE, pulse.maxGapMs); // t, t (+1 us: 0 ms), t2
        assertEquals(4, pulse.duplicates); // two dropped copies at t, two at t2
        Row total = row(rows, TOTAL, 0);
        assertEquals(0, total.duplicates);
        assertEquals(1, total.readings);
        assertEquals(50.0, total.firstValue);
        assertTrue(total.hasGap);
        assertEquals(0, total.maxGapMs); // after the pulse reading at the same instant (measurement order)
    }

    @Test
    void aClockAheadOfArrivalAndAStuckValueAreMeasuredPerDay() {
        long t = MAY_1 + HOUR;
        List<Row> rows = new Readings()
                // arrivals (ingest) against event times: 1 s behind, 30 s ahead (within 60 s), 2 min ahead
                .add(TEMP, us(t), 21.5, us(t + 1000), 0, 0L, false, null)
                .add(TEMP, us(t + HOUR), 21.5, us(t + HOUR - 30_000), 0, 1L, false, null)
                .add(TEMP, us(t + 3 * HOUR), 21.5, us(t + 3 * HOUR - 2 * MINUTE), 0, 2L, false, null)
                .add(TEMP, us(t + 4 * HOUR), 22.0, ReadingBlock.NULL_LONG, 0, 3L, false, null) // arrival unknown
                .add(TEMP, us(t + 5 * HOUR), 22.0) // flat again, from t + 4 h
                // the next day: still 22.0 since t + 4 h, then a change
                .add(TEMP, us(MAY_1 + 24 * HOUR + HOUR), 22.0)
                .add(TEMP, us(MAY_1 + 24 * HOUR + 2 * HOUR), 22.5)
                .add(PULSE, us(t), 0.0, us(t + 5 * MINUTE), 0, 9L, false, null) // its own series: arrived 5 min later
                .daily(MAY);
        Row day0 = row(rows, TEMP, 0);
        assertEquals(1, day0.clockAhead); // only the 2 min; 30 s is within the tolerance
        assertTrue(day0.hasArrival);
        assertEquals(2 * MINUTE, day0.maxAheadMs);
        assertEquals(3 * HOUR, day0.maxFlatMs); // 21.5 from t to t + 3 h
        assertEquals(0, day0.duplicates);
        Row day1 = row(rows, TEMP, 1);
        assertFalse(day1.hasArrival); // no reading of the day has an ingest time
        assertEquals(0, day1.clockAhead);
        assertEquals(20 * HOUR, day1.maxFlatMs); // 22.0 from 05:00 on day 0 to 01:00 on day 1
        Row pulse = row(rows, PULSE, 0);
        assertEquals(-5 * MINUTE, pulse.maxAheadMs); // behind: negative
        assertEquals(0, pulse.maxFlatMs); // one reading: never flat
    }

    @Test
    void batteryReadingsAreAggregatedInVoltsButFirstAndLastStayRaw() {
        List<Row> rows = new Readings()
                .add(BATTERY, us(MAY_1), 2.4) // volts
                .add(BATTERY, us(MAY_1 + HOUR), 10.0) // at the split: still volts
                .add(BATTERY, us(MAY_1 + 2 * HOUR), 70.5) // 3.0 + (70.5 - 64) x 0.6 / 13 = 3.3 V
                .add(BATTERY, us(MAY_1 + 3 * HOUR), 77.0) // 3.0 + 13 x 0.6 / 13 = 3.6 V
                .add(TEMP, us(MAY_1 + 4 * HOUR), 80.0) // not a battery: kept as it is
                .daily(MAY);
        Row b = row(rows, BATTERY, 0);
        assertEquals(4, b.readings);
        assertEquals(2.4, b.min);
        assertEquals(10.0, b.max);
        assertEquals(19.3, b.sum, 1e-12); // 2.4 + 10 + 3.3 + 3.6
        assertEquals(4.825, b.avg, 1e-12); // 19.3 / 4
        assertEquals(2.4, b.firstValue);
        assertEquals(77.0, b.lastValue); // raw
        assertFalse(b.hasConsumption); // a gauge
        assertEquals(0.0, b.consumption);
        assertTrue(b.unanchored);
        assertEquals(0, b.resets);
        Row t = row(rows, TEMP, 0);
        assertEquals(80.0, t.min);
        assertEquals(80.0, t.max);
        assertFalse(t.hasConsumption);
    }

    @Test
    void gapsAreTheMetersAcrossMeasurementsAndDays() {
        List<Row> rows = new Readings()
                .add(PULSE, us(MAY_1), 1.0) // the meter's first reading: no gap
                .add(BATTERY, us(MAY_1 + 10 * MINUTE), 3.1) // 10 min after the pulse
                .add(PULSE, us(MAY_1 + 15 * MINUTE), 1.0) // 5 min after the battery
                .add(PULSE, us(MAY_1 + 75 * MINUTE), 1.0) // 60 min
                .add(BATTERY, us(MAY_1 + 24 * HOUR + 30 * MINUTE), 3.0) // day 1 00:30: 23 h 15 min after 01:15
                .daily(MAY);
        assertEquals(60 * MINUTE, row(rows, PULSE, 0).maxGapMs);
        assertEquals(10 * MINUTE, row(rows, BATTERY, 0).maxGapMs);
        assertEquals(23 * HOUR + 15 * MINUTE, row(rows, BATTERY, 1).maxGapMs); // 83,700,000 ms

        Row alone = row(new Readings().add(TEMP, us(MAY_1 + HOUR), 21.0).daily(MAY, "m-2"), TEMP, 0);
        assertEquals("m-2", alone.meter);
        assertFalse(alone.hasGap); // a meter's only reading has no gap (NULL in Python)
        assertEquals(0, alone.maxGapMs);
    }

    @Test
    void timesAreMillisecondsRoundedDown() {
        DailyPlan around1970 = DailyFixtures.plan(-24 * HOUR, 0, 24 * HOUR);
        List<Row> rows = new Readings()
                .add(PULSE, -1500, 1.0) // 1.5 ms before the epoch: floor(-1.5) = -2 ms, not -1
                .add(PULSE, 1999, 2.0) // 1.999 ms after: 1 ms
                .add(PULSE, 2000, 4.0) // 2 ms
                .daily(around1970);
        Row before = row(rows, PULSE, 0);
        assertEquals(-2, before.firstMs);
        Row after = row(rows, PULSE, 1);
        assertEquals(1, after.firstMs);
        assertEquals(2, after.lastMs);
        assertEquals(3, after.maxGapMs); // 1 - (-2) = 3, then 2 - 1 = 1
    }

    @Test
    void theUnitIsTheGreatestOfTheDaysReadings() {
        List<Row> rows = new Readings()
                .add(TEMP, us(MAY_1), 20.0) // the measurement's unit, C (null in the block)
                .add(TEMP, us(MAY_1 + HOUR), 70.0, 0L, 0, 1L, false, "F") // "F" > "C"
                .add(TEMP, us(MAY_1 + 24 * HOUR), 290.0, 0L, 0, 2L, false, "B") // day 1: only "B" readings
                .add(TEMP, us(MAY_1 + 48 * HOUR), 21.0) // day 2: the usual unit only
                .daily(MAY);
        assertEquals("F", row(rows, TEMP, 0).unit);
        assertEquals("B", row(rows, TEMP, 1).unit); // MAX over the day's readings: "C" was none of them
        assertEquals("C", row(rows, TEMP, 2).unit);
    }

    @Test
    void unitsCompareAsUtf8BytesAsFlinkSqlMaxDoes() {
        assertTrue(MeterReadings.compareUtf8("m3", "L") > 0); // 'm' 0x6d > 'L' 0x4c
        assertEquals(0, MeterReadings.compareUtf8("°C", "°C"));
        // U+1F600 is F0 9F 98 80 in UTF-8, above U+FF21 (EF BC A1); as UTF-16 its surrogate D83D sorts below FF21
        assertTrue("\uD83D\uDE00".compareTo("\uFF21") < 0);
        assertTrue(MeterReadings.compareUtf8("\uD83D\uDE00", "\uFF21") > 0);
    }

    @Test
    void localDaysFollowAthensIntoSummerTime() {
        // Europe/Athens: EET (UTC+2) until 31 Mar 2024 03:00 local = 01:00 UTC, then EEST (UTC+3).
        long mar30 = ms("2024-03-29T22:00:00Z"); // 30 Mar 00:00 EET
        long mar31 = ms("2024-03-30T22:00:00Z"); // 31 Mar 00:00 EET
        long apr1 = ms("2024-03-31T21:00:00Z"); // 1 Apr 00:00 EEST: 31 Mar had 23 hours
        long apr2 = ms("2024-04-01T21:00:00Z"); // 2 Apr 00:00 EEST
        assertEquals(mar30, dayStart("2024-03-30", "Europe/Athens"));
        assertEquals(mar31, dayStart("2024-03-31", "Europe/Athens"));
        assertEquals(apr1, dayStart("2024-04-01", "Europe/Athens"));
        assertEquals(apr2, dayStart("2024-04-02", "Europe/Athens"));
        assertEquals(23 * HOUR, apr1 - mar31);
        DailyPlan athens = DailyFixtures.plan(mar30, mar31, apr1, apr2);

        List<Row> rows = new Readings()
                .add(PULSE, micros("2024-03-30T21:59:59.999999Z"), 1.0) // 30 Mar 23:59:59.999999 EET: day 0
                .add(PULSE, micros("2024-03-30T22:00:00Z"), 2.0) // 31 Mar 00:00 exactly: day 1
                .add(PULSE, micros("2024-03-31T00:59:59Z"), 4.0) // 02:59:59 EET
                .add(PULSE, micros("2024-03-31T01:00:00Z"), 8.0) // 04:00 EEST, one second later
                .add(PULSE, micros("2024-03-31T20:59:59.999Z"), 16.0) // 23:59:59.999 EEST, still 31 Mar
                .add(PULSE, micros("2024-03-31T21:30:00Z"), 32.0) // 1 Apr 00:30 EEST (a 24 h day would keep it on 31 Mar)
                .daily(athens);
        assertEquals(3, rows.size());
        Row d0 = row(rows, PULSE, 0);
        assertEquals(1, d0.readings);
        assertEquals(1.0, d0.consumption);
        assertEquals(ms("2024-03-30T21:59:59.999Z"), d0.firstMs); // rounded down to the millisecond
        Row d1 = row(rows, PULSE, 1);
        assertEquals(4, d1.readings);
        assertEquals(30.0, d1.consumption); // 2 + 4 + 8 + 16
        assertEquals(mar31, d1.firstMs);
        assertEquals(apr1 - 1, d1.lastMs);
        assertEquals(71_999_999L, d1.maxGapMs); // 01:00:00 -> 20:59:59.999 UTC = 19 h 59 min 59.999 s
        Row d2 = row(rows, PULSE, 2);
        assertEquals(1, d2.readings);
        assertEquals(32.0, d2.consumption);
        assertEquals(30 * MINUTE + 1, d2.maxGapMs); // 20:59:59.999 -> 21:30:00
    }

    @Test
    void localDaysFollowSydneyOutOfSummerTime() {
        // Australia/Sydney: AEDT (UTC+11) until 7 Apr 2024 03:00 local = 6 Apr 16:00 UTC, then AEST (UTC+10):
        // 02:00-03:00 happens twice, and 7 Apr has 25 hours.
        long apr6 = ms("2024-04-05T13:00:00Z"); // 6 Apr 00:00 AEDT
        long apr7 = ms("2024-04-06T13:00:00Z"); // 7 Apr 00:00 AEDT
        long apr8 = ms("2024-04-07T14:00:00Z"); // 8 Apr 00:00 AEST
        long apr9 = ms("2024-04-08T14:00:00Z"); // 9 Apr 00:00 AEST
        assertEquals(apr6, dayStart("2024-04-06", "Australia/Sydney"));
        assertEquals(apr7, dayStart("2024-04-07", "Australia/Sydney"));
        assertEquals(apr8, dayStart("2024-04-08", "Australia/Sydney"));
        assertEquals(apr9, dayStart("2024-04-09", "Australia/Sydney"));
        assertEquals(25 * HOUR, apr8 - apr7);
        DailyPlan sydney = DailyFixtures.plan(apr6, apr7, apr8, apr9);

        List<Row> rows = new Readings()
                .add(TOTAL, micros("2024-04-06T12:00:00Z"), 500.0) // 6 Apr 23:00 AEDT: first, step 0
                .add(TOTAL, micros("2024-04-06T15:30:00Z"), 510.0) // 7 Apr 02:30 AEDT: +10
                .add(TOTAL, micros("2024-04-06T16:30:00Z"), 515.0) // 7 Apr 02:30 again, AEST: +5
                .add(TOTAL, micros("2024-04-07T13:30:00Z"), 530.0) // 7 Apr 23:30 AEST (24 h would say 8 Apr): +15
                .add(TOTAL, micros("2024-04-07T14:00:00Z"), 531.0) // 8 Apr 00:00 AEST: +1
                .daily(sydney);
        assertEquals(3, rows.size());
        Row d0 = row(rows, TOTAL, 0);
        assertEquals(0.0, d0.consumption);
        assertTrue(d0.unanchored);
        Row d1 = row(rows, TOTAL, 1);
        assertEquals(3, d1.readings);
        assertEquals(30.0, d1.consumption); // 10 + 5 + 15, the first step from 6 Apr's 500
        assertFalse(d1.unanchored);
        assertEquals(510.0, d1.firstValue);
        assertEquals(530.0, d1.lastValue);
        assertEquals(ms("2024-04-06T15:30:00Z"), d1.firstMs);
        assertEquals(ms("2024-04-07T13:30:00Z"), d1.lastMs);
        assertEquals(21 * HOUR, d1.maxGapMs); // 16:30 -> 13:30 the next UTC day
        Row d2 = row(rows, TOTAL, 2);
        assertEquals(1.0, d2.consumption);
        assertEquals(531.0, d2.firstValue);
    }

    @Test
    void manyReadingsAddedBackwardsAreSortedByTimeThenMeasurement() {
        // 300 minutes of one day, a pulse and a temperature reading each minute, added newest first
        // (past the reading array's first 64 slots, and through every level of the merge sort)
        Readings readings = new Readings();
        for (int i = 299; i >= 0; i--) {
            readings.add(TEMP, us(MAY_1 + i * MINUTE), 1000.0 + i);
            readings.add(PULSE, us(MAY_1 + i * MINUTE), i);
        }
        List<Row> rows = readings.daily(MAY);
        assertEquals(2, rows.size());
        Row pulse = row(rows, PULSE, 0);
        assertEquals(300, pulse.readings);
        assertEquals(44_850.0, pulse.consumption); // 0 + 1 + ... + 299 = 299 x 300 / 2
        assertEquals(0.0, pulse.firstValue);
        assertEquals(299.0, pulse.lastValue);
        assertEquals(MAY_1 + 299 * MINUTE, pulse.lastMs);
        // at equal times the pulse (measurement 0) comes before the temperature (3): each pulse is a
        // minute after the previous temperature, each temperature 0 ms after its pulse
        assertEquals(MINUTE, pulse.maxGapMs);
        Row temp = row(rows, TEMP, 0);
        assertEquals(300, temp.readings);
        assertEquals(344_850.0, temp.sum); // 300 x 1000 + 44,850
        assertEquals(1000.0, temp.min);
        assertEquals(1299.0, temp.max);
        assertTrue(temp.hasGap);
        assertEquals(0, temp.maxGapMs);
    }
}
