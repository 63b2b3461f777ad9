"""What every real data set shares: reading its files, its rows, and the tally of what happened to them.

A data set module (:mod:`.daiad`, :mod:`.keti`, :mod:`.uci`) turns its files into
:class:`RawRow` values (meter, naive local time, one value per emitted measurement) and counts
the rows it cannot use (no time, no meter, the wrong number of columns) in a :class:`Tally` under
a reason. A cell it cannot read is no reason to drop its row's good values: it is sent as what it
is (:func:`cell`), and the job dead-letters that one reading with its reason, so every value of
the file is counted. :mod:`simulator.replay.runner` does the rest (offsets, date filter, order,
limit, encoding).
"""

from __future__ import annotations

import csv
import gzip
import io
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import IO

import yaml

from meterflow.spec.durations import to_millis
from meterflow.spec.model import MeasurementSpec, MeterPipeline
from simulator.errors import SimulatorError

UNPARSEABLE_DATE = "unparseable date"
NONEXISTENT_TIME = "nonexistent local time (DST gap)"
MISSING_VALUE = "missing value"
NOT_A_NUMBER = "not a number"
WRONG_COLUMNS = "wrong number of columns"
NO_METER = "no meter id"


Cell = float | str | None
"""A value of a row: a finite number; None for an empty or ``?`` cell (sent as ``"value": null``,
dead-lettered by the job as ``missing_value``); or the text of a cell that is no finite number
(sent as a JSON string, dead-lettered as ``wrong_type`` with the text in the payload)."""


@dataclass(frozen=True, slots=True)
class RawRow:
    """One usable data row: meter, local wall-clock time, values in the data set's measurement order."""

    meter_id: str
    local: datetime
    values: tuple[Cell, ...]


@dataclass(frozen=True)
class Needed:
    """A measurement a data set emits, as the manifest must declare it: ``example`` is a flow-style
    YAML measurement whose name, unit, ``kind`` and (for power) ``interval`` are checked."""

    example: str

    @cached_property
    def declaration(self) -> MeasurementSpec:
        return MeasurementSpec.model_validate(yaml.safe_load(self.example))

    @property
    def name(self) -> str:
        return self.declaration.name

    @property
    def unit(self) -> str:
        return self.declaration.unit


@dataclass
class Tally:
    """What happened to the rows of one replay (mutable: counted while reading)."""

    rows: int = 0
    filtered: int = 0
    limited: int = 0
    replayed: int = 0
    readings: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    unreadable: Counter[str] = field(default_factory=Counter)
    """Values sent for the job to dead-letter, per reason (``missing value``, ``not a number``)."""

    def skip(self, reason: str) -> None:
        self.skipped[reason] += 1


def open_text(path: Path) -> IO[str]:
    """A text stream of ``path``, gunzipped when it is gzip (by its magic bytes, not its name)."""
    try:
        with path.open("rb") as probe:
            magic = probe.read(2)
    except OSError as exc:
        raise SimulatorError(f"{path}: cannot read it ({exc.strerror}); check the PATH given to replay") from None
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def table(path: Path, delimiter: str) -> Iterator[list[str]]:
    """The rows of a delimited text file (CRLF or LF), blank lines dropped."""
    with open_text(path) as handle:
        for row in csv.reader(handle, delimiter=delimiter):
            if len(row) > 1 or (row and row[0].strip()):
                yield row


def data_rows(path: Path, delimiter: str, header: tuple[str, ...], tally: Tally) -> Iterator[list[str]]:
    """The rows after ``header`` (checked) that have its number of columns; the others counted."""
    lines = table(path, delimiter)
    first = next(lines, None)
    if first is None:
        return
    if tuple(h.strip() for h in first) != header:
        raise SimulatorError(f"{path}: expected the header {delimiter.join(header)}, found {delimiter.join(first)}")
    for row in lines:
        tally.rows += 1
        if len(row) != len(header):
            tally.skip(WRONG_COLUMNS)
            continue
        yield row


def cell(text: str) -> Cell:
    """The value of one cell (see :data:`Cell`)."""
    text = text.strip()
    if not text or text == "?":
        return None
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else text


def unreadable_reason(value: Cell) -> str | None:
    """The tally reason of a cell sent for the job to dead-letter; None for a number."""
    if value is None:
        return MISSING_VALUE
    return NOT_A_NUMBER if isinstance(value, str) else None


def declared(pipeline: MeterPipeline, dataset: str, needed: tuple[Needed, ...], source: str) -> list[MeasurementSpec]:
    """The manifest's measurements for ``needed`` (by name); a one-line error naming what to add."""
    by_name: dict[str, MeasurementSpec] = {}
    for m in pipeline.spec.measurements:
        by_name.setdefault(m.name, m)
    missing = [n for n in needed if n.name not in by_name]
    if missing:
        names = ", ".join(n.name for n in missing)
        raise SimulatorError(
            f"{source} does not declare {names}, which {dataset} replays; add to spec.measurements e.g. "
            + "; ".join(n.example for n in missing)
        )
    for n in needed:
        got, want = by_name[n.name], n.declaration
        if got.unit != n.unit:
            raise SimulatorError(
                f"{source}: {dataset} values of {n.name} are in {n.unit}, the manifest declares unit "
                f"{got.unit!r}; set unit: {n.unit}"
            )
        if got.kind != want.kind:
            raise SimulatorError(
                f"{source}: {dataset}'s {n.name} is a {want.kind} measurement, the manifest declares kind "
                f"{got.kind!r}; set kind: {want.kind}"
            )
        if want.kind == "power" and to_millis(got.interval) != to_millis(want.interval):
            raise SimulatorError(
                f"{source}: {dataset}'s {n.name} is a mean over {want.interval}, the manifest declares interval "
                f"{got.interval!r}, which would misstate its energy; set interval: {want.interval}"
            )
    return [by_name[n.name] for n in needed]
