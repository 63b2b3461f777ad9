"""Real data: one month of DAIAD (Alicante) through the speed layer and the batch, every meter-day to the litre.

October 2016 holds the data set's traps: the 25-hour day of 30 October whose 02:00-03:00 is
written twice (the 78 "duplicated" timestamps: the replay gives the second one winter time),
negative register steps, silent meters. The expected daily consumption is computed here with
pandas straight from the CSV, by the rule of meterflow/consumption.py, in Europe/Madrid days.
"""

from __future__ import annotations

import itertools
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from meterflow.consumption import REGISTER_RESET_RATIO
from meterflow.spec import MeterPipeline
from meterflow.stack.broker import BrokerInfo
from tests.batch.support import replay_and_serve, rows
from tests.conftest import unique_pipeline, write_manifest

pytestmark = [pytest.mark.integration, pytest.mark.flink]

FIRST, LAST = "2016-10-01", "2016-10-31"
ZONE = "Europe/Madrid"


def expected_daily(csv: Path) -> pd.DataFrame:
    """Consumption and negative steps per (meter, local day) of October 2016, from the raw CSV."""
    frame = pd.read_csv(csv, sep=";")
    frame.columns = ["meter", "local", "value", "diff"]
    frame["t"] = pd.to_datetime(frame["local"], format="%d/%m/%Y %H:%M:%S")
    frame = frame[(frame["t"] >= FIRST) & (frame["t"] < "2016-11-01")]
    # local order is event-time order: the repeated 02:xx hour keeps its file order (summer, then winter)
    frame = frame.sort_values(["meter", "t"], kind="stable")
    previous = frame.groupby("meter")["value"].shift()
    value = frame["value"]
    reset = (value < previous) & (value <= previous * REGISTER_RESET_RATIO)
    frame["step"] = (value - previous).where(~reset, value).fillna(0.0)  # first reading of the month: 0
    frame["negative"] = ((value < previous) & ~reset).astype(int)
    frame["day"] = frame["t"].dt.date
    return frame.groupby(["meter", "day"]).agg(consumption=("step", "sum"), negative=("negative", "sum"))


@pytest.fixture(scope="module")
def daiad(broker: BrokerInfo, shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> MeterPipeline:
    pipeline = unique_pipeline("daiad-water", flink={"parallelism": 1, "checkpointInterval": "2s"})
    manifest = write_manifest(pipeline, tmp_path_factory.mktemp("daiad"))
    replay_and_serve(manifest, "daiad", [shared_data / "daiad" / "swm_trialA_clean.csv.gz"], FIRST, LAST)
    return pipeline


def test_daily_consumption_equals_the_csv_to_the_litre(daiad: MeterPipeline, shared_data: Path) -> None:
    expected = expected_daily(shared_data / "daiad" / "swm_trialA_clean.csv.gz")
    got = {
        (m, d): (c, n)
        for m, d, c, n in rows(daiad, "SELECT meter_id, day, consumption, negative_steps FROM daily_stats")
    }
    assert len(expected) > 2_500
    assert set(got) == set(expected.index)
    wrong = {
        key: (got[key][0], row.consumption)
        for key, row in expected.iterrows()
        if abs(got[key][0] - row.consumption) > 0.5
    }
    assert wrong == {}
    negative = {key: int(row.negative) for key, row in expected.iterrows() if row.negative}
    assert negative  # real negative register steps happen in this month
    assert {key: n for key, (_, n) in got.items() if n} == negative


def test_the_speed_layer_agrees_where_nothing_was_late(daiad: MeterPipeline) -> None:
    [(meter_days, drifting, late)] = rows(
        daiad, "SELECT count(), countIf(drift != 0 OR readings_drift != 0), sum(late_readings) FROM speed_vs_batch"
    )
    assert (meter_days, drifting, late) == (len(rows(daiad, "SELECT 1 FROM daily_stats")), 0, 0)
    assert rows(daiad, "SELECT DISTINCT source FROM consumption_daily") == [("batch",)]


def test_months_and_problems_follow_the_days(daiad: MeterPipeline) -> None:
    monthly = dict(rows(daiad, "SELECT meter_id, consumption FROM monthly_stats"))
    daily = dict(rows(daiad, "SELECT meter_id, sum(consumption) FROM daily_stats GROUP BY meter_id"))
    assert monthly.keys() == daily.keys()
    assert all(abs(monthly[m] - daily[m]) < 1e-6 for m in monthly)
    assert rows(daiad, "SELECT DISTINCT days_recomputed FROM monthly_stats") == [(31,)]
    negative = set(rows(daiad, "SELECT meter_id, day FROM daily_stats WHERE negative_steps > 0"))
    flagged = set(rows(daiad, "SELECT meter_id, day FROM problem_meters WHERE rule = 'NEGATIVE_STEP'"))
    assert negative == flagged and negative
    assert rows(daiad, "SELECT DISTINCT suburb, usage_type FROM daily_stats") == [("unknown", "unknown")]


def test_meter_health_counts_the_csvs_readings_and_silences(daiad: MeterPipeline, shared_data: Path) -> None:
    """meter_health against the CSV: every meter-day from the meter's first reading of the month to the
    31st, its readings, the readings one an hour owes (the first day from the first reading, the last up
    to the fleet's newest reading; 25 on the 25-hour 30 October) and the longest silence touching it.
    DAIAD's records are all valid, on time and single: those components are zero."""
    frame = pd.read_csv(shared_data / "daiad" / "swm_trialA_clean.csv.gz", sep=";")
    frame.columns = ["meter", "local", "value", "diff"]
    frame["t"] = pd.to_datetime(frame["local"], format="%d/%m/%Y %H:%M:%S")
    frame = frame[(frame["t"] >= FIRST) & (frame["t"] < "2016-11-01")].copy()
    # 02:xx of 30 October happened twice: a reading there is summer time (+02:00) unless that would put
    # it at or before the meter's previous reading (file order is time order), then winter (+01:00)
    frame["utc"] = frame["t"].dt.tz_localize(ZONE, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
    repeated = frame["utc"].isna()
    assert repeated.any() and (frame.loc[repeated, "t"].dt.strftime("%Y-%m-%d %H") == "2016-10-30 02").all()
    utc = []
    previous: dict[str, pd.Timestamp] = {}
    for meter, local, known in zip(frame["meter"], frame["t"], frame["utc"], strict=True):
        at = known
        if pd.isna(known):
            summer = (local - pd.Timedelta(hours=2)).tz_localize("UTC")
            at = summer if meter not in previous or summer > previous[meter] else summer + pd.Timedelta(hours=1)
        previous[meter] = at
        utc.append(at)
    frame["utc"] = utc
    frame = frame.sort_values(["meter", "utc"], kind="stable")
    newest = frame["utc"].max()
    hour = pd.Timedelta(hours=1)
    want: dict[tuple[str, date], tuple[int, float, float]] = {}
    for meter, part in frame.groupby("meter"):
        times = list(part["utc"])
        gaps = [(b, (b - a) / hour) for a, b in itertools.pairwise(times)]
        for day in pd.date_range(times[0].tz_convert(ZONE).normalize(), pd.Timestamp(LAST, tz=ZONE), freq="D"):
            start, end = day.tz_convert("UTC"), (day + pd.DateOffset(days=1)).tz_convert("UTC")
            owed = (min(end, newest) - max(start, times[0])) / hour
            readings = sum(start <= t < end for t in times)
            seen = max(t for t in times if t < end)
            silence = max([g for b, g in gaps if start <= b < end] + [(min(end, newest) - seen) / hour])
            want[(str(meter), day.date())] = (readings, round(owed, 6), round(silence, 6))
    got = rows(
        daiad,
        """SELECT meter_id, day, readings, round(expected_readings, 6), round(longest_silence_h, 6), duplicates,
                  late_readings, dead_letters, clock_ahead, stuck_series FROM meter_health""",
    )
    assert {(m, d): (r, e, s) for m, d, r, e, s, *_ in got} == want
    assert {tuple(r[5:]) for r in got} == {(0, 0, 0, 0, 0)}
    assert len(want) > 2_600  # 87 meters
