"""The committed Unity Water distribution and the registry drawn from it."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from simulator.registry import DISTRIBUTION_FILE, apportion, distribution_from_csv, load_distribution, water_registry


def test_committed_distribution_matches_the_real_csv(shared_data: Path) -> None:
    assert load_distribution() == distribution_from_csv(shared_data / "unitywater" / "managedobject_details.csv")


def test_committed_distribution_has_the_documented_totals() -> None:
    combos = load_distribution()
    assert len(combos) == 56
    assert sum(c.meters for c in combos) == 2817
    types = Counter[str]()
    suburbs = Counter[tuple[str, str]]()
    usage = Counter[str]()
    for c in combos:
        types[c.meter_type] += c.meters
        suburbs[(c.suburb, c.postcode)] += c.meters
        usage[c.usage_type] += c.meters
    assert types == {"c8y_lwm2m": 1969, "captis_pulse": 848}
    assert usage == {"Residential": 2637, "Non-Residential": 166, "#N/A": 14}
    assert len(suburbs) == 39
    assert suburbs[("#N/A", "#N/A")] == 7
    assert suburbs[("BUDERIM", "4556")] == 1541
    assert DISTRIBUTION_FILE.stat().st_size < 4096


def test_a_registry_of_the_real_size_reproduces_the_real_counts() -> None:
    meters = water_registry(2817, random.Random(7))
    counts = Counter((m.meter_type, m.suburb, m.postcode, m.usage_type) for m in meters)
    assert counts == {(c.meter_type, c.suburb, c.postcode, c.usage_type): c.meters for c in load_distribution()}
    ids = [m.meter_id for m in meters]
    assert len(set(ids)) == 2817
    assert all(len(i) == 8 and i.isdigit() and not i.startswith("0") for i in ids)


def test_apportion_splits_exactly() -> None:
    combos = load_distribution()
    for n in (1, 7, 500, 2817, 10_000):
        shares = apportion(combos, n)
        assert sum(shares) == n
    assert apportion(combos, 500)[:3] == [186, 84, 73]  # 185.48, 83.78, 72.42: largest remainders round up


def test_the_registry_is_deterministic_per_seed() -> None:
    assert water_registry(50, random.Random(1)) == water_registry(50, random.Random(1))
    assert water_registry(50, random.Random(1)) != water_registry(50, random.Random(2))
