"""The eight rooms of a smart building (``../shared/seeds/002``): environment and energy per room.

Every room reports temperature, humidity, co2, light, occupancy, motion, energy and air quality
each interval (500 ms in examples/smart-building.yaml). Occupancy follows office hours in the
manifest's time zone with a room-specific pattern (a meeting room fills in bursts, the storage
closet stays empty, the server room is always "occupied"); the other values follow occupancy
with smooth, mean-reverting noise. Energy is kWh used during the interval (power x interval).

Metadata mapping (the reading contract's enrichment fields are water-shaped): ``meter_id`` is
``room_<n>``, ``meter_type`` the room type, ``suburb`` the room name, ``postcode`` the floor and
``usage_type`` ``Commercial``. With ``--meters`` above 8, room 9 repeats room 1's profile, and so on.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from meterflow.reading import MeterInfo
from meterflow.spec.durations import to_millis
from simulator.profiles.base import HOUR_MS, Model, Profile, Sample, Shaper


@dataclass(frozen=True)
class Room:
    """How one room behaves (targets are means the values revert to)."""

    name: str
    room_type: str
    floor: str
    temp_day: float
    temp_night: float
    humidity: float
    co2_base: float
    co2_per_person: float
    lux_occupied: float
    lux_empty: float
    occupancy: tuple[int, int]
    occupied_share: float
    hold_minutes: float
    power_kw: float
    power_per_person_kw: float
    air_quality: float
    volatility: float = 1.0
    always_occupied: bool = False
    cooking: bool = False
    daylight: bool = False


ROOMS = (
    Room(
        "Server Room",
        "server_room",
        "1",
        19.0,
        19.0,
        35.0,
        430,
        0,
        180,
        180,
        (1, 1),
        1.0,
        600,
        11.0,
        0.0,
        35,
        volatility=0.5,
        always_occupied=True,
    ),
    Room(
        "Conference Room",
        "conference_room",
        "2",
        23.0,
        20.5,
        48.0,
        420,
        45,
        520,
        15,
        (4, 12),
        0.45,
        45,
        1.5,
        0.12,
        55,
        volatility=1.5,
    ),
    Room(
        "Storage Closet",
        "storage",
        "1",
        20.0,
        20.0,
        45.0,
        410,
        0,
        0,
        0,
        (0, 0),
        0.0,
        600,
        0.05,
        0.0,
        25,
        volatility=0.2,
    ),
    Room("Open Office", "open_office", "2", 22.5, 20.0, 45.0, 450, 55, 480, 20, (5, 8), 0.95, 60, 3.0, 0.15, 60),
    Room(
        "Kitchen",
        "kitchen",
        "2",
        23.0,
        20.5,
        52.0,
        430,
        50,
        400,
        10,
        (1, 6),
        0.4,
        20,
        1.0,
        0.05,
        75,
        volatility=1.3,
        cooking=True,
    ),
    Room(
        "Lab/Workshop", "lab", "3", 24.0, 21.0, 45.0, 600, 80, 700, 30, (1, 4), 0.7, 40, 4.0, 0.5, 130, volatility=3.0
    ),
    Room(
        "Break Room",
        "break_room",
        "3",
        22.0,
        21.5,
        45.0,
        420,
        40,
        300,
        20,
        (0, 2),
        0.5,
        30,
        0.8,
        0.05,
        45,
        volatility=0.6,
        daylight=True,
    ),
    Room(
        "Executive Office",
        "executive_office",
        "4",
        21.0,
        21.0,
        45.0,
        430,
        60,
        420,
        0,
        (1, 1),
        0.85,
        90,
        0.8,
        0.0,
        25,
        volatility=0.15,
    ),
)

TAU_S = {"temperature": 900.0, "humidity": 600.0, "co2": 600.0, "air_quality": 900.0}
"""How fast a value reverts to its target (seconds)."""

SPREAD = {"temperature": 0.15, "humidity": 0.8, "co2": 12.0, "air_quality": 4.0}
"""Standard deviation of each value around its target (times the room's volatility)."""


class _State:
    """Where one room's slowly moving values are."""

    def __init__(self, room: Room) -> None:
        self.occupancy = 0
        self.change_at = -1
        self.values = {
            "temperature": room.temp_night,
            "humidity": room.humidity,
            "co2": room.co2_base,
            "air_quality": room.air_quality,
        }
        self.light = room.lux_empty


def _office_hours(hour: float, workday: bool) -> bool:
    return workday and 8.0 <= hour < 18.0


class BuildingProfile(Profile):
    """Smart-building rooms (see the module docstring)."""

    kind = "building"
    models = (
        Model("temperature", None, "C", 2, "room temperature"),
        Model("humidity", None, "%", 1, "relative humidity"),
        Model("co2", None, "ppm", 0, "CO2 concentration"),
        Model("light", None, "lx", 0, "illuminance"),
        Model("occupancy", None, "people", 0, "people in the room"),
        Model("motion", None, "event", 0, "1 when motion was detected in the interval"),
        Model("energy", None, "kWh", 6, "energy used in the interval"),
        Model("air_quality", None, "AQI", 0, "air quality index"),
    )

    def make_meters(self, n: int, rng: random.Random) -> list[MeterInfo]:
        self._rooms = [ROOMS[i % len(ROOMS)] for i in range(n)]
        self._states = [_State(room) for room in self._rooms]
        meters = []
        for i, room in enumerate(self._rooms):
            round_ = i // len(ROOMS)
            name = room.name if round_ == 0 else f"{room.name} {round_ + 1}"
            meters.append(MeterInfo(f"room_{i + 1}", room.room_type, name, room.floor, "Commercial"))
        return meters

    def unknown_ids(self, n: int) -> list[str]:
        return [f"room_{len(self.meters) + k + 1}" for k in range(n)]

    def _occupancy(self, meter: int, millis: int) -> int:
        room, state, rng = self._rooms[meter], self._states[meter], self.rng
        if millis >= state.change_at:
            busy = _office_hours(self.clock.hour(millis), self.clock.workday(millis))
            if room.always_occupied or (busy and rng.random() < room.occupied_share):
                state.occupancy = rng.randint(*room.occupancy)
            else:
                state.occupancy = 0
            state.change_at = millis + int(rng.expovariate(1.0 / (room.hold_minutes * 60_000)))
        return state.occupancy

    def _targets(self, meter: int, millis: int, people: int) -> dict[str, float]:
        room = self._rooms[meter]
        hour = self.clock.hour(millis)
        busy = _office_hours(hour, self.clock.workday(millis))
        lunch = room.cooking and people > 0 and 11.5 <= hour < 13.5
        temp = (room.temp_day if busy else room.temp_night) + 0.15 * people + (4.0 if lunch else 0.0)
        return {
            "temperature": temp,
            "humidity": room.humidity + (22.0 if lunch else 0.0) + 0.5 * people,
            "co2": room.co2_base + room.co2_per_person * people,
            "air_quality": room.air_quality + 3.0 * people + (25.0 if lunch else 0.0),
        }

    def _step(self, meter: int, millis: int, interval_ms: int) -> dict[str, float]:
        """Advance the room's state by one interval and return every value (unguarded)."""
        room, state, rng = self._rooms[meter], self._states[meter], self.rng
        people = self._occupancy(meter, millis)
        targets = self._targets(meter, millis, people)
        for name, target in targets.items():
            a = min(1.0, interval_ms / 1000 / TAU_S[name])
            sd = SPREAD[name] * room.volatility * math.sqrt(2 * a)
            state.values[name] += a * (target - state.values[name]) + rng.gauss(0.0, sd)
        hour = self.clock.hour(millis)
        lux = room.lux_occupied if people > 0 else room.lux_empty
        if room.daylight and 7 <= hour < 19:
            lux += 250 * math.sin(math.pi * (hour - 7) / 12)
        state.light = lux * (1 + rng.gauss(0.0, 0.02)) if lux > 0 else 0.0
        moving = people > 0 and rng.random() < min(0.9, 0.25 + 0.1 * people)
        power = room.power_kw * (1 + rng.gauss(0.0, 0.05 * room.volatility)) + room.power_per_person_kw * people
        if room.cooking and people > 0 and rng.random() < 0.3:
            power += 2.5
        values = dict(state.values)
        values["air_quality"] = min(values["air_quality"], 190.0)
        values["co2"] = min(values["co2"], 1400.0)
        values["temperature"] = min(values["temperature"], 31.0)
        values |= {
            "light": state.light,
            "occupancy": float(people),
            "motion": 1.0 if moving else 0.0,
            "energy": max(power, 0.0) * interval_ms / HOUR_MS,
        }
        return values

    def sample(self, meter: int, measurements: tuple[int, ...], millis: int, shaper: Shaper) -> list[Sample]:
        interval = to_millis(self.measurements[measurements[0]].interval)
        values = self._step(meter, millis, interval)
        out: list[Sample] = []
        for m in measurements:
            value, kind = shaper.shape(meter, m, self.guards[m].safe(values[self.measurements[m].name]))
            out.append((m, value, kind, None))
        return out

    def one_off(self, meter: int, measurement: int, millis: int) -> float:
        spec = self.measurements[measurement]
        state, room = self._states[meter], self._rooms[meter]
        natural = {
            "light": state.light,
            "occupancy": 0.0,
            "motion": 0.0,
            "energy": room.power_kw * to_millis(spec.interval) / HOUR_MS,
        } | state.values
        return self.guards[measurement].safe(natural[spec.name])
