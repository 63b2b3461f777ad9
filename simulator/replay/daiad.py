"""DAIAD smart water meter trial (Alicante): the cumulative register, roughly hourly, per user key.

Files ``user.key;datetime;meter.reading;diff`` (the extended file names them V1..V4), gzip or
plain. ``meter.reading`` is replayed as the manifest's register measurement (water-meters.yaml:
Pulse1_Total/T1, litres); ``diff`` is not sent (the job derives consumption from the register).
Times are day-first local time, Europe/Madrid; the meter id is the user key.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from meterflow.spec.model import MeasurementKind, MeasurementSpec, MeterPipeline
from simulator.errors import SimulatorError
from simulator.replay.source import (
    NO_METER,
    UNPARSEABLE_DATE,
    WRONG_COLUMNS,
    RawRow,
    Tally,
    cell,
    table,
)

NAME = "daiad"
ZONE = "Europe/Madrid"
ORDERED = False
"""The file is grouped by meter, not ordered by time: the runner sorts it."""

UNIT = "L"
COLUMNS = 4


def measurements(pipeline: MeterPipeline, source: str) -> list[MeasurementSpec]:
    """The manifest's register measurement in litres (Pulse1_Total preferred)."""
    registers = [m for m in pipeline.spec.measurements if m.kind == MeasurementKind.register.value]
    if not registers:
        raise SimulatorError(
            f"{source} declares no register measurement, which daiad replays its meter readings as; add to "
            "spec.measurements e.g. {name: Pulse1_Total, series: T1, unit: L, kind: register, interval: 1h, min: 0}"
        )
    chosen = next((m for m in registers if m.name == "Pulse1_Total"), registers[0])
    if chosen.unit != UNIT:
        raise SimulatorError(
            f"{source}: daiad registers are in {UNIT}, the manifest's register {chosen.name} has unit "
            f"{chosen.unit!r}; set unit: {UNIT}"
        )
    return [chosen]


def files(path: Path) -> list[Path]:
    if not path.is_file():
        raise SimulatorError(f"{path}: no such file; give a DAIAD csv (or csv.gz) file, e.g. swm_trialA_clean.csv.gz")
    return [path]


def parse_local(text: str) -> datetime | None:
    """``dd/mm/yyyy HH:MM:SS`` → naive datetime, or None."""
    text = text.strip()
    try:
        if len(text) == 19 and text[2] == "/" and text[5] == "/":  # the common shape, parsed fast
            return datetime.fromisoformat(f"{text[6:10]}-{text[3:5]}-{text[0:2]}{text[10:]}")
        return datetime.strptime(text, "%d/%m/%Y %H:%M:%S")
    except ValueError:
        return None


def rows(path: Path, tally: Tally) -> Iterator[RawRow]:
    """Usable rows of one DAIAD file in file order; the others counted in ``tally``."""
    lines = table(path, ";")
    first = next(lines, None)
    if first is None:
        return
    if not isinstance(cell(first[2] if len(first) > 2 else ""), float):
        first = None  # a header (user.key;datetime;meter.reading;diff or V1;V2;V3;V4)
    for row in lines if first is None else _chain(first, lines):
        tally.rows += 1
        if len(row) != COLUMNS:
            tally.skip(WRONG_COLUMNS)
            continue
        meter = row[0].strip()
        if not meter:
            tally.skip(NO_METER)
            continue
        local = parse_local(row[1])
        if local is None:
            tally.skip(UNPARSEABLE_DATE)
            continue
        yield RawRow(meter, local, (cell(row[2]),))


def _chain(first: list[str], rest: Iterator[list[str]]) -> Iterator[list[str]]:
    yield first
    yield from rest
