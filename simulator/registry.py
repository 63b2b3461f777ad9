"""The Unity Water meter registry: committed counts, and generated meters distributed like them.

:func:`water_registry` (called by :mod:`simulator.profiles.water`) draws ``n`` meters whose meter
type, suburb, postcode and usage type follow the joint distribution of the 2,817 real meters of
``managedobject_details.csv``. The distribution is committed as counts only in
``simulator/data/unitywater_meters.csv`` so no run needs ``../shared``; regenerate it with
``python -m simulator.registry ../shared/data/unitywater/managedobject_details.csv``
(tests/simulator checks the committed file against the CSV when it is present).
"""

from __future__ import annotations

import csv
import random
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from meterflow.reading import MeterInfo
from simulator.errors import SimulatorError

DISTRIBUTION_FILE = Path(__file__).with_name("data") / "unitywater_meters.csv"
"""The committed counts (next to this module, so no import-system detour can miss it)."""

_FIELDS = ("meter_type", "suburb", "postcode", "usage_type", "meters")
_SOURCE_FIELDS = ("managedObjects_id", "Meter Type", "Suburb", "Postcode", "Usage Type")

METER_ID_LOW = 10_000_000
METER_ID_HIGH = 99_999_999
"""Meter ids are 8-digit numbers written as strings, like most real Unity Water ids."""


@dataclass(frozen=True)
class MeterCombo:
    """How many real meters share one meter type, suburb, postcode and usage type."""

    meter_type: str
    suburb: str
    postcode: str
    usage_type: str
    meters: int


def load_distribution() -> tuple[MeterCombo, ...]:
    """The committed joint distribution (largest combination first)."""
    with DISTRIBUTION_FILE.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return tuple(
        MeterCombo(r["meter_type"], r["suburb"], r["postcode"], r["usage_type"], int(r["meters"])) for r in rows
    )


def distribution_from_csv(path: Path) -> tuple[MeterCombo, ...]:
    """Count the meters of a ``managedobject_details.csv`` by (type, suburb, postcode, usage)."""
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or tuple(header) != _SOURCE_FIELDS:
            raise SimulatorError(f"{path}: expected the header {','.join(_SOURCE_FIELDS)}, found {header}")
        counts = Counter((row[1], row[2], row[3], row[4]) for row in reader if row)
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return tuple(MeterCombo(*combo, meters=n) for combo, n in ordered)


def write_distribution(combos: tuple[MeterCombo, ...], path: Path) -> None:
    """Write the counts file that :func:`load_distribution` reads."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(_FIELDS)
        for c in combos:
            writer.writerow((c.meter_type, c.suburb, c.postcode, c.usage_type, c.meters))


def apportion(combos: tuple[MeterCombo, ...], n: int) -> list[int]:
    """Split ``n`` meters over the combinations in proportion to their counts (largest remainder).

    ``n`` equal to the real total gives back the real counts exactly.
    """
    total = sum(c.meters for c in combos)
    quotas = [c.meters * n / total for c in combos]
    shares = [int(q) for q in quotas]
    by_remainder = sorted(range(len(combos)), key=lambda i: (-(quotas[i] - shares[i]), i))
    for i in by_remainder[: n - sum(shares)]:
        shares[i] += 1
    return shares


def meter_ids(rng: random.Random, n: int, exclude: frozenset[str] = frozenset()) -> list[str]:
    """``n`` distinct 8-digit meter ids not in ``exclude``."""
    ids: list[str] = []
    seen = set(exclude)
    while len(ids) < n:
        candidate = str(rng.randint(METER_ID_LOW, METER_ID_HIGH))
        if candidate not in seen:
            seen.add(candidate)
            ids.append(candidate)
    return ids


def water_registry(n: int, rng: random.Random) -> list[MeterInfo]:
    """``n`` water meters with metadata distributed like the real registry, in random order."""
    combos = load_distribution()
    kinds = [combo for combo, share in zip(combos, apportion(combos, n), strict=True) for _ in range(share)]
    rng.shuffle(kinds)
    ids = meter_ids(rng, n)
    return [MeterInfo(i, c.meter_type, c.suburb, c.postcode, c.usage_type) for i, c in zip(ids, kinds, strict=True)]


def main(argv: list[str]) -> int:
    """Regenerate the committed counts from a ``managedobject_details.csv``."""
    if len(argv) != 1:
        print("usage: python -m simulator.registry PATH/TO/managedobject_details.csv", file=sys.stderr)
        return 2
    combos = distribution_from_csv(Path(argv[0]))
    write_distribution(combos, DISTRIBUTION_FILE)
    print(f"wrote {len(combos)} combinations of {sum(c.meters for c in combos)} meters to {DISTRIBUTION_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
