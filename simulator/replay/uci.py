"""UCI "Individual household electric power consumption": one household, a row per minute.

File ``Date;Time;Global_active_power;Global_reactive_power;Voltage;Global_intensity;
Sub_metering_1;Sub_metering_2;Sub_metering_3`` (CRLF, ``?`` for a missing value, day-first
dates without zero padding). Each row is replayed as the seven measurements of the
household-power manifest. Times are local time, Europe/Paris; the meter id is ``household-1``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from meterflow.spec.model import MeasurementSpec, MeterPipeline
from simulator.errors import SimulatorError
from simulator.replay.source import UNPARSEABLE_DATE, Needed, RawRow, Tally, cell, data_rows, declared

NAME = "uci-power"
ZONE = "Europe/Paris"
ORDERED = True
METER_ID = "household-1"

HEADER = (
    "Date",
    "Time",
    "Global_active_power",
    "Global_reactive_power",
    "Voltage",
    "Global_intensity",
    "Sub_metering_1",
    "Sub_metering_2",
    "Sub_metering_3",
)
NEEDED = (
    Needed("{name: global_active_power, series: house, unit: kW, kind: power, interval: 1m}"),
    Needed("{name: global_reactive_power, series: house, unit: kW, kind: gauge, interval: 1m}"),
    Needed("{name: voltage, series: house, unit: V, kind: gauge, interval: 1m}"),
    Needed("{name: global_intensity, series: house, unit: A, kind: gauge, interval: 1m}"),
    Needed("{name: sub_metering_1, series: kitchen, unit: Wh, kind: interval, interval: 1m}"),
    Needed("{name: sub_metering_2, series: laundry, unit: Wh, kind: interval, interval: 1m}"),
    Needed("{name: sub_metering_3, series: heating, unit: Wh, kind: interval, interval: 1m}"),
)


def measurements(pipeline: MeterPipeline, source: str) -> list[MeasurementSpec]:
    return declared(pipeline, NAME, NEEDED, source)


def files(path: Path) -> list[Path]:
    if not path.is_file():
        raise SimulatorError(f"{path}: no such file; give household_power_consumption.txt (or .txt.gz)")
    return [path]


def rows(path: Path, tally: Tally) -> Iterator[RawRow]:
    """Usable rows in file order; the others counted in ``tally``."""
    for row in data_rows(path, ";", HEADER, tally):
        try:
            local = datetime.strptime(f"{row[0].strip()} {row[1].strip()}", "%d/%m/%Y %H:%M:%S")
        except ValueError:
            tally.skip(UNPARSEABLE_DATE)
            continue
        yield RawRow(METER_ID, local, tuple(cell(text) for text in row[2:]))
