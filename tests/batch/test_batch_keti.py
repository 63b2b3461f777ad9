"""Real data: KETI room 554, its last three days, through the speed layer and the batch, in Pacific time.

The KETI files write UTC (the data README; the source notebook builds the times from unix
seconds). Room 554's CO2 is above 1,500 ppm from 00:16 to 00:35 in the file: 17:16-17:35 PDT on
29 August, a late-afternoon meeting. The expected values are computed here with pandas straight
from the file, read as UTC and converted to America/Los_Angeles (the smart-building time zone).
The data end at 11:23 PDT on 31 August: the rest of that day is the end of the data set, not a
silent room.

Room 413's rows of the same days are replayed too, from a copy of the real file in which some
cells are emptied (the real files have none): each such cell must be one dead letter
(``missing_value``) while the rest of its row is served.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest

from meterflow.spec import MeterPipeline
from meterflow.stack.broker import BrokerInfo
from tests.batch.support import replay_and_serve, rows
from tests.conftest import unique_pipeline, write_manifest

pytestmark = [pytest.mark.integration, pytest.mark.flink]

FIRST, LAST = "2013-08-29", "2013-08-31"
ZONE = "America/Los_Angeles"
ROOM = "room_554"
CO2_LIMIT = 1500.0  # the smart-building HIGH_CO2 rule


GAPPY_ROOM = "room_413"
EMPTIED = {"co2": ("", 401), "temperature": ("?", 577)}
"""Cells emptied in room 413's copy: the column, what is written instead, and every how many rows."""


def raw_room(shared_data: Path, number: int = 554) -> pd.DataFrame:
    """A room's rows of the replayed Pacific days, with their instant and their Pacific day."""
    frame = pd.read_csv(shared_data / "keti-building" / f"{number}.csv.gz", parse_dates=["timestamp"])
    frame["instant"] = frame["timestamp"].dt.tz_localize("UTC")
    frame["day"] = frame["instant"].dt.tz_convert(ZONE).dt.date
    return frame[(frame["day"] >= date.fromisoformat(FIRST)) & (frame["day"] <= date.fromisoformat(LAST))]


def emptied_copy(shared_data: Path, folder: Path) -> Path:
    """Room 413's file with the cells of :data:`EMPTIED` blanked (every other cell as it was)."""
    frame = pd.read_csv(shared_data / "keti-building" / "413.csv.gz", dtype=str)
    for column, (blank, every) in EMPTIED.items():
        frame.loc[frame.index % every == every - 1, column] = blank
    path = folder / "413.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def keti(broker: BrokerInfo, shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> MeterPipeline:
    pipeline = unique_pipeline("smart-building", flink={"parallelism": 1, "checkpointInterval": "2s"})
    folder = tmp_path_factory.mktemp("keti")
    manifest = write_manifest(pipeline, folder)
    rooms = [shared_data / "keti-building" / "554.csv.gz", emptied_copy(shared_data, folder)]
    replay_and_serve(manifest, "keti", rooms, FIRST, LAST)
    return pipeline


def test_daily_figures_fall_on_pacific_days(keti: MeterPipeline, shared_data: Path) -> None:
    raw = raw_room(shared_data)
    expected = {
        (day, measurement): (len(group), round(float(group[measurement].max()), 6))
        for day, group in raw.groupby("day")
        for measurement in ("co2", "temperature", "humidity", "light")
    }
    got = {
        (day, m): (n, top)
        for day, m, n, top in rows(
            keti,
            f"SELECT day, measurement_type, readings, round(max, 6) FROM daily_stats "
            f"WHERE meter_id = '{ROOM}' AND measurement_type IN ('co2', 'temperature', 'humidity', 'light')",
        )
    }
    assert got == expected
    assert got[(date(2013, 8, 29), "co2")] == (1440, 1669.5)  # the meeting's peak, on the 29th


def test_the_meeting_is_one_high_co2_alert_at_17_16_pdt(keti: MeterPipeline, shared_data: Path) -> None:
    raw = raw_room(shared_data).reset_index(drop=True)
    high = raw[raw["co2"] > CO2_LIMIT]
    after = raw.loc[high.index[-1] + 1, "instant"]  # the first reading back under the limit resolves it
    got = rows(
        keti,
        "SELECT event_time, last_seen, resolved_at, breaches, state, round(peak_value, 6) FROM alerts FINAL "
        f"WHERE rule = 'HIGH_CO2' AND meter_id = '{ROOM}'",
    )
    assert got == [
        (_naive(high["instant"].iloc[0]), _naive(high["instant"].iloc[-1]), _naive(after), len(high), "RESOLVED",
         round(float(high["co2"].max()), 6)),
    ]  # fmt: skip
    opened = high["instant"].iloc[0].tz_convert(ZONE)
    assert (opened.date(), opened.hour, opened.minute, len(high)) == (date(2013, 8, 29), 17, 16, 20)


def test_the_end_of_the_data_is_not_a_silent_room(keti: MeterPipeline, shared_data: Path) -> None:
    raw = raw_room(shared_data)
    gaps = raw["instant"].diff().dt.total_seconds() / 3600
    assert gaps.max() <= 1  # noDataHours of smart-building: no silence in these days
    assert raw["instant"].max().tz_convert(ZONE).hour == 11  # the data end mid-morning on the 31st
    assert rows(keti, f"SELECT day, rule FROM problem_meters WHERE meter_id = '{ROOM}' AND rule = 'NO_DATA'") == []


def _naive(moment: pd.Timestamp) -> datetime:
    """A pandas UTC instant as ClickHouse's DateTime64(3, 'UTC') comes back: naive UTC."""
    return moment.to_pydatetime().astimezone(UTC).replace(tzinfo=None)


def test_an_emptied_cell_is_one_dead_letter_and_its_row_is_kept(keti: MeterPipeline, shared_data: Path) -> None:
    raw = raw_room(shared_data, 413).reset_index()  # "index": the row's place in the file
    emptied = {
        column: raw[raw["index"] % every == every - 1] for column, (_, every) in EMPTIED.items()
    }  # fmt: skip
    missing = sum(len(rows_) for rows_ in emptied.values())
    assert missing > 10
    [(dead,)] = rows(keti, "SELECT sumIf(value, counter = 'dlq:missing_value') FROM ingest_counters FINAL")
    assert dead == missing
    [(received, valid, dlq)] = rows(keti, "SELECT in_total, valid, dlq FROM ingest_totals")
    readings = (len(raw_room(shared_data)) + len(raw)) * 5  # every cell of both rooms' replayed rows
    assert (received, valid + dlq, dlq) == (readings, readings, missing)  # in = valid + dlq, from the file onward
    served = {
        (day, m): n
        for day, m, n in rows(
            keti, f"SELECT day, measurement_type, readings FROM daily_stats WHERE meter_id = '{GAPPY_ROOM}'"
        )
    }
    for day, group in raw.groupby("day"):
        for column in ("co2", "temperature", "humidity"):
            blanked = len(emptied[column][emptied[column]["day"] == day]) if column in emptied else 0
            assert served[(day, column)] == len(group) - blanked, (day, column)
