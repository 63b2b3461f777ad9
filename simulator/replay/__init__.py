"""Replay of real meter data sets into ``<name>.readings``: DAIAD, KETI and UCI household power.

:class:`Dataset` names them as ``meterflow replay --dataset`` does; :func:`module_for` gives the
module that reads each, typed as a :class:`Reader` (see :mod:`simulator.replay.runner` for the rest).
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from meterflow.spec.model import MeasurementSpec, MeterPipeline
from simulator.replay import daiad, keti, uci
from simulator.replay.source import RawRow, Tally


class Dataset(StrEnum):
    """The real data sets ``meterflow replay`` reads."""

    daiad = "daiad"
    keti = "keti"
    uci_power = "uci-power"


class Reader(Protocol):
    """What a data set module provides."""

    NAME: str
    ZONE: str
    ORDERED: bool

    def measurements(self, pipeline: MeterPipeline, source: str) -> list[MeasurementSpec]:
        """The manifest's measurements for the row values, in order (a one-line error if missing)."""
        ...

    def files(self, path: Path) -> list[Path]:
        """The files PATH stands for."""
        ...

    def rows(self, path: Path, tally: Tally) -> Iterator[RawRow]:
        """The usable rows of one file, in file order; the others counted in ``tally``."""
        ...


def module_for(dataset: Dataset) -> Reader:
    """The module reading ``dataset``."""
    readers: dict[Dataset, Reader] = {Dataset.daiad: daiad, Dataset.keti: keti, Dataset.uci_power: uci}
    return readers[Dataset(dataset)]
