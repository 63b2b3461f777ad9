"""Real data: the UCI household's whole-house energy, served as daily kWh by both layers.

``Global_active_power`` is a minute's mean power in kW (the data README), so the energy of a
minute is kW x 1/60 h. The household-power manifest declares it ``kind: power``; its daily
consumption is that energy in kWh, the same in the speed layer (per 1-minute window, added up per
Paris day) and in the batch (per reading). The sub-meterings are already Wh per minute and are
summed. The expected values are computed here with pandas straight from the file, whose dates
and times are Paris wall time (December: no daylight saving).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from meterflow.spec import MeterPipeline
from meterflow.stack.broker import BrokerInfo
from tests.batch.support import replay_and_serve, rows
from tests.conftest import unique_pipeline, write_manifest

pytestmark = [pytest.mark.integration, pytest.mark.flink]

FIRST, LAST = "2006-12-17", "2006-12-18"
SUB_METERINGS = {"sub_metering_1": "Sub_metering_1", "sub_metering_2": "Sub_metering_2",
                 "sub_metering_3": "Sub_metering_3"}  # fmt: skip


def raw_days(shared_data: Path) -> pd.DataFrame:
    """The file's rows of the replayed days, with their Paris day."""
    path = shared_data / "uci-household-power" / "household_power_consumption.txt.gz"
    frame = pd.read_csv(path, sep=";", na_values="?")
    frame["day"] = pd.to_datetime(frame["Date"], format="%d/%m/%Y").dt.date
    return frame[(frame["day"] >= date.fromisoformat(FIRST)) & (frame["day"] <= date.fromisoformat(LAST))]


@pytest.fixture(scope="module")
def uci(broker: BrokerInfo, shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> MeterPipeline:
    pipeline = unique_pipeline("household-power", flink={"parallelism": 1, "checkpointInterval": "2s"})
    folder = tmp_path_factory.mktemp("uci")
    manifest = write_manifest(pipeline, folder)
    path = shared_data / "uci-household-power" / "household_power_consumption.txt.gz"
    replay_and_serve(manifest, "uci-power", [path], FIRST, LAST)
    return pipeline


def test_the_whole_house_is_served_in_kwh_a_day(uci: MeterPipeline, shared_data: Path) -> None:
    raw = raw_days(shared_data)
    assert raw["Global_active_power"].notna().all() and len(raw) == 2 * 1440  # every minute, no '?'
    expected = {
        day: (len(group), round(float((group["Global_active_power"] / 60).sum()), 9))
        for day, group in raw.groupby("day")
    }
    served = rows(
        uci,
        "SELECT day, source, readings, round(consumption, 9), consumption_unit, unit FROM consumption_daily "
        "WHERE measurement_type = 'global_active_power' ORDER BY day",
    )
    assert served == [(day, "batch", n, kwh, "kWh", "kW") for day, (n, kwh) in sorted(expected.items())]
    # the figure: 3,390.46 kW of minute averages on the 17th are 56.5 kWh
    assert round(float(raw[raw["day"] == date(2006, 12, 17)]["Global_active_power"].sum()), 2) == 3390.46
    assert round(served[0][3], 4) == 56.5077


def test_speed_and_batch_agree_on_the_energy(uci: MeterPipeline) -> None:
    drift = rows(
        uci,
        "SELECT day, kind, speed_readings, batch_readings, drift FROM speed_vs_batch "
        "WHERE measurement_type = 'global_active_power' ORDER BY day",
    )
    assert drift == [(date(2006, 12, 17), "power", 1440, 1440, 0.0), (date(2006, 12, 18), "power", 1440, 1440, 0.0)]


def test_the_sub_meterings_are_summed_in_wh(uci: MeterPipeline, shared_data: Path) -> None:
    raw = raw_days(shared_data)
    expected = {
        (day, name): (round(float(group[column].sum()), 6), "Wh")
        for day, group in raw.groupby("day")
        for name, column in SUB_METERINGS.items()
    }
    served = {
        (day, name): (total, unit)
        for day, name, total, unit in rows(
            uci,
            "SELECT day, measurement_type, round(consumption, 6), consumption_unit FROM consumption_daily "
            "WHERE measurement_type LIKE 'sub_metering_%'",
        )
    }
    assert served == expected


def test_voltage_is_a_level_with_no_consumption(uci: MeterPipeline, shared_data: Path) -> None:
    raw = raw_days(shared_data)
    expected = {
        day: (round(float(g["Voltage"].mean()), 6), float(g["Voltage"].min()), float(g["Voltage"].max()))
        for day, g in raw.groupby("day")
    }
    served = {
        day: (avg, lo, hi, consumption, unit)
        for day, avg, lo, hi, consumption, unit in rows(
            uci,
            "SELECT day, round(avg, 6), min, max, consumption, consumption_unit FROM consumption_daily "
            "WHERE measurement_type = 'voltage'",
        )
    }
    assert served == {day: (*figures, None, None) for day, figures in expected.items()}
