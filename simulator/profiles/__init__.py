"""What each kind of simulated meter reports: water (Unity Water), building rooms, household power,
industrial sensors.

:func:`profile_for` picks the profile of a manifest's ``spec.meterKind``; :mod:`simulator.engine`
calls it once per run.
"""

from __future__ import annotations

import random

from meterflow.spec.model import MeterKind, MeterPipeline
from simulator.profiles.base import Profile, Shaper
from simulator.profiles.building import BuildingProfile
from simulator.profiles.household import HouseholdProfile
from simulator.profiles.industrial import IndustrialProfile
from simulator.profiles.water import WaterProfile

PROFILES: dict[str, type[Profile]] = {
    p.kind: p for p in (WaterProfile, BuildingProfile, HouseholdProfile, IndustrialProfile)
}
"""The profile of each ``spec.meterKind`` value."""

DEFAULT_METERS = {"water": 500, "building": 8, "household": 10, "industrial": 5}
"""``--meters`` when not given: the water registry, the eight rooms of the building, ten homes,
seed 004's five sensors."""

__all__ = ["DEFAULT_METERS", "PROFILES", "Profile", "Shaper", "profile_for"]


def profile_for(pipeline: MeterPipeline, meters: int | None, start_ms: int, seed: int) -> Profile:
    """The profile of ``pipeline``'s meter kind with ``meters`` meters (default per kind)."""
    kind = MeterKind(pipeline.spec.meter_kind).value
    count = DEFAULT_METERS[kind] if meters is None else meters
    registry_rng = random.Random(f"{seed}/meters")
    values_rng = random.Random(f"{seed}/values")
    return PROFILES[kind](pipeline, count, start_ms, registry_rng, values_rng)
