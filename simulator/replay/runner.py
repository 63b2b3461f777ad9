"""Turn a real data set into reading records: offsets, date filter, event-time order, limit, JSON.

:class:`Replay` is what ``meterflow replay`` runs: it checks the manifest declares what the data
set emits, reads the files (rows it cannot use are counted per reason in :attr:`Replay.tally`),
attaches the offset of the zone the files are written in (:class:`~simulator.replay.localtime.LocalTimes`),
drops rows outside ``--from``/``--to`` (dates in the pipeline's ``spec.timeZone``, inclusive: the
days the pipeline serves; counted as filtered), puts the rows in
event-time order (DAIAD is sorted in memory; room files are merged lazily) and stops after
``--limit`` rows (files read lazily are not read further). Each row becomes one record per
measurement, keyed by meter id.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from meterflow.reading import format_timestamp
from meterflow.spec.model import MeterPipeline
from simulator.encode import EPOCH, Encoder
from simulator.errors import SimulatorError
from simulator.record import Record
from simulator.replay import Dataset, module_for
from simulator.replay.localtime import LocalTimes
from simulator.replay.source import NONEXISTENT_TIME, Cell, RawRow, Tally, unreadable_reason

REPLAY_KIND = "replay"
_MILLI = timedelta(milliseconds=1)
"""The ``kind`` of replayed records in a ``--record`` file."""


@dataclass(frozen=True)
class Window:
    """``--from``/``--to`` (dates in the pipeline's time zone, inclusive) and ``--limit`` (rows)."""

    first: date | None = None
    last: date | None = None
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class _Row:
    millis: int
    moment: datetime
    meter_id: str
    values: tuple[Cell, ...]


class Replay:
    """One replay of ``dataset`` at ``path`` into ``pipeline`` (see the module docstring)."""

    def __init__(self, pipeline: MeterPipeline, dataset: Dataset, path: Path, window: Window, source: str) -> None:
        if window.limit is not None and window.limit < 1:
            raise SimulatorError(f"--limit {window.limit}: give at least 1 row")
        if window.first and window.last and window.first > window.last:
            raise SimulatorError(f"--from {window.first} is after --to {window.last}; swap them")
        self.module = module_for(dataset)
        self.dataset = dataset
        self.measurements = self.module.measurements(pipeline, source)
        self.files: list[Path] = self.module.files(path)
        self.window = window
        self.zone = ZoneInfo(pipeline.spec.time_zone)
        """The pipeline's zone: ``--from``/``--to`` are its dates."""
        self.tally = Tally()
        self.encoder = Encoder()

    @property
    def readings_per_row(self) -> int:
        return len(self.measurements)

    def _resolved(self, path: Path) -> Iterator[_Row]:
        """Rows of one file with offsets, in file order, date-filtered."""
        times = LocalTimes(self.module.ZONE)
        first, last, tally = self.window.first, self.window.last, self.tally
        same_zone = times.zone == self.zone  # the file's wall-clock date is the pipeline's date
        raw: RawRow
        for raw in self.module.rows(path, tally):
            moment = times.resolve(raw.meter_id, raw.local)
            if moment is None:
                tally.skip(NONEXISTENT_TIME)
                continue
            day = raw.local.date() if same_zone else moment.astimezone(self.zone).date()
            if (first is not None and day < first) or (last is not None and day > last):
                tally.filtered += 1
                continue
            yield _Row((moment - EPOCH) // _MILLI, moment, raw.meter_id, raw.values)

    def _ordered(self) -> Iterator[_Row]:
        streams = [self._resolved(p) for p in self.files]
        if not self.module.ORDERED:
            rows = [row for stream in streams for row in stream]
            rows.sort(key=lambda r: r.millis)
            return iter(rows)
        return heapq.merge(*streams, key=lambda r: r.millis)

    def records(self) -> Iterator[Record]:
        """The readings, in event-time order; :attr:`tally` is complete once exhausted."""
        tally, limit, encoder, specs = self.tally, self.window.limit, self.encoder, self.measurements
        for row in self._ordered():
            if limit is not None and tally.replayed >= limit:
                break  # rows read ahead (all of them, for a data set sorted in memory) count as beyond the limit
            tally.replayed += 1
            stamp = format_timestamp(row.moment)
            key = row.meter_id.encode()
            for spec, value in zip(specs, row.values, strict=True):
                tally.readings += 1
                if not isinstance(value, float) and (reason := unreadable_reason(value)) is not None:
                    tally.unreadable[reason] += 1  # sent all the same: the job dead-letters it with its reason
                yield Record(key, encoder.payload(row.meter_id, stamp, spec, value), REPLAY_KIND, row.millis)
        tally.limited = tally.rows - tally.filtered - sum(tally.skipped.values()) - tally.replayed
