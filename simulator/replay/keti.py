"""KETI smart building (Sutardja Dai Hall): one file per room, a row per minute.

Files ``timestamp,co2,humidity,light,pir,temperature`` named ``<room>.csv[.gz]``; PATH is one
file or the folder of them. Replayed as co2, humidity, light, motion and temperature of the
smart-building manifest; ``motion`` is 1 when the PIR sensor saw any movement in the minute
(``pir > 0``) and 0 otherwise (the manifest's motion is an event flag, 0..1, while ``pir`` is a
one-minute mean of PIR samples). The meter id is ``room_<number>``.

Times are **UTC**, not Berkeley wall time: the source notebook builds them from unix seconds with
``pd.to_datetime(unit='s')`` (the first raw epoch, 1377299107, is 2013-08-23 23:05:07 UTC, the
first file row), and read as UTC the rooms are busy 09:00-18:00 Pacific. The pipeline's
``spec.timeZone`` (America/Los_Angeles for smart-building) then makes the local days.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from meterflow.spec.model import MeasurementSpec, MeterPipeline
from simulator.errors import SimulatorError
from simulator.replay.source import UNPARSEABLE_DATE, Cell, Needed, RawRow, Tally, cell, data_rows, declared

NAME = "keti"
ZONE = "UTC"
"""The zone the files write their times in (see the module docstring)."""
ORDERED = True
"""Each file is ordered by time: the runner merges the rooms lazily."""

HEADER = ("timestamp", "co2", "humidity", "light", "pir", "temperature")
NEEDED = (
    Needed("{name: co2, series: room, unit: ppm, kind: gauge, interval: 1m}"),
    Needed('{name: humidity, series: room, unit: "%", kind: gauge, interval: 1m}'),
    Needed("{name: light, series: room, unit: lx, kind: gauge, interval: 1m}"),
    Needed("{name: motion, series: room, unit: event, kind: interval, interval: 1m}"),
    Needed("{name: temperature, series: room, unit: C, kind: gauge, interval: 1m}"),
)
_ROOM = re.compile(r"(\d+)")


def measurements(pipeline: MeterPipeline, source: str) -> list[MeasurementSpec]:
    return declared(pipeline, NAME, NEEDED, source)


def files(path: Path) -> list[Path]:
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.name.endswith((".csv", ".csv.gz")))
        if not found:
            raise SimulatorError(f"{path}: no <room>.csv or <room>.csv.gz files; give the KETI folder or one room file")
        return found
    if not path.is_file():
        raise SimulatorError(f"{path}: no such file or folder; give the KETI folder or one <room>.csv.gz")
    return [path]


def meter_id(path: Path) -> str:
    """``413.csv.gz`` → ``room_413``."""
    match = _ROOM.search(path.name.split(".")[0])
    if match is None:
        raise SimulatorError(f"{path}: the file name carries no room number; name it <room>.csv(.gz), e.g. 413.csv.gz")
    return f"room_{match.group(1)}"


def rows(path: Path, tally: Tally) -> Iterator[RawRow]:
    """Usable rows of one room file, in file order; the others counted in ``tally``."""
    meter = meter_id(path)
    for row in data_rows(path, ",", HEADER, tally):
        try:
            local = datetime.fromisoformat(row[0].strip())
        except ValueError:
            tally.skip(UNPARSEABLE_DATE)
            continue
        if local.tzinfo is not None:
            tally.skip(UNPARSEABLE_DATE)
            continue
        co2, humidity, light, pir, temperature = (cell(text) for text in row[1:])
        yield RawRow(meter, local, (co2, humidity, light, _motion(pir), temperature))


def _motion(pir: Cell) -> Cell:
    """1 when the PIR sensor saw movement in the minute, else 0; an unreadable cell is sent as it is."""
    return (1.0 if pir > 0 else 0.0) if isinstance(pir, float) else pir
