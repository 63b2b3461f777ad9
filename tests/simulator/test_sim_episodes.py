"""The stateful-rule episodes (a leak, a silent meter, a night-flow leak, a stuck register) without
Kafka: each does in the records exactly what its truth entry says, normal meters never look like
one (the run and stuck guards), and a run too short for one says why in ``skipped_episodes``.

The checks read the records back independently: flow per local hour, readings per meter, the
register's values — never the simulator's planning code.
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from meterflow.spec import MeterPipeline, parse_manifest
from simulator.engine import Settings, Simulation
from simulator.injections import parse_rates
from simulator.record import Record
from tests.conftest import every_kind_rules, example_manifest

START = datetime(2024, 5, 1, tzinfo=UTC)
DAY = 86_400_000
BRISBANE = ZoneInfo("Australia/Brisbane")

Reading = tuple[datetime, float, str]  # event time (UTC), value, record kind
Series = dict[tuple[str, str], list[Reading]]  # (meter, measurement) -> readings in event-time order


def every_kind() -> MeterPipeline:
    document = example_manifest("water-meters")
    document["spec"]["rules"] = every_kind_rules()
    return parse_manifest(document)


def run(pipeline: MeterPipeline, **settings: Any) -> tuple[Simulation, list[Record]]:
    settings.setdefault("seed", 3)
    settings.setdefault("start", START)
    sim = Simulation(pipeline, Settings(inject=True, **settings))
    return sim, list(sim.records())


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def series(records: list[Record]) -> Series:
    """Every valid reading on the readings topic (malformed ones aside), by meter and measurement."""
    out: Series = defaultdict(list)
    for r in records:
        if r.kind == "malformed":
            continue
        body = json.loads(r.value)
        out[(body["meter_id"], body["measurement_type"])].append((at(body["timestamp"]), body["value"], r.kind))
    for rows in out.values():
        rows.sort(key=lambda row: row[0])
    return out


@pytest.fixture(scope="module")
def five_days() -> tuple[Simulation, Series]:
    """Six water meters over five days with every injection: one episode of each kind."""
    sim, records = run(every_kind(), meters=6, duration_ms=5 * DAY)
    return sim, series(records)


def episode(sim: Simulation, kind: str) -> dict[str, Any]:
    [entry] = [e for e in sim.truth.episodes if e["kind"] == kind]
    return entry


def test_one_episode_of_each_kind_on_meters_of_their_own(five_days: tuple[Simulation, Series]) -> None:
    sim, _ = five_days
    truth = sim.truth.to_dict()
    assert [e["kind"] for e in truth["episodes"]] == ["silent", "leak", "night_leak", "stuck"]
    assert [e["rule"] for e in truth["episodes"]] == ["NO_DATA", "CONTINUOUS_FLOW", "NIGHT_FLOW", "STUCK_REGISTER"]
    assert len({e["meter_id"] for e in truth["episodes"]}) == 4
    assert truth["skipped_episodes"] == []
    assert truth["counts"]["episode"] > 0


def test_a_leak_flows_in_every_hour_and_not_in_the_hour_either_side(five_days: tuple[Simulation, Series]) -> None:
    sim, readings = five_days
    leak = episode(sim, "leak")
    start, end = at(leak["start"]), at(leak["end"])
    assert (end - start, leak["intervals"]) == (timedelta(hours=30), 30)
    assert (start - at(leak["quiet_start"]), at(leak["quiet_end"]) - end) == (timedelta(hours=1),) * 2
    assert start.astimezone(BRISBANE).minute == 0  # a local clock hour
    flow = readings[(leak["meter_id"], "Pulse1")]
    inside = [(t, v, k) for t, v, k in flow if start <= t < end]
    assert len(inside) == 30 * 4
    assert all(v >= leak["litres_per_reading"] == 2.0 and k == "episode" for _, v, k in inside)
    around = [v for t, v, _ in flow if at(leak["quiet_start"]) <= t < start or end <= t < at(leak["quiet_end"])]
    assert around == [0.0] * 8


def test_a_silent_meter_sends_nothing_for_twice_the_rule(five_days: tuple[Simulation, Series]) -> None:
    sim, readings = five_days
    silent = episode(sim, "silent")
    start, end = at(silent["start"]), at(silent["end"])
    assert silent["measurement"] is None  # a meter-wide noData rule
    times = sorted(t for (meter, _), rows in readings.items() if meter == silent["meter_id"] for t, _, _ in rows)
    assert start in times and end in times
    assert not [t for t in times if start < t < end]
    assert timedelta(hours=52) <= end - start < timedelta(hours=52, minutes=30)


def test_a_night_leak_flows_at_every_step_of_its_nights(five_days: tuple[Simulation, Series]) -> None:
    sim, readings = five_days
    night = episode(sim, "night_leak")
    assert night["measurement"] == "Pulse1_Total" and night["nights"] == 3
    total = readings[(night["meter_id"], "Pulse1_Total")]
    steps = [(t, v - before) for (_, before, _), (t, v, _) in itertools.pairwise(total)]

    def night_steps(day: int) -> list[float]:
        first = at(night["start"]) + timedelta(days=day)
        return [s for t, s in steps if first <= t < first + timedelta(hours=3)]

    for day in range(3):
        local = (at(night["start"]) + timedelta(days=day)).astimezone(BRISBANE)
        assert (local.hour, local.minute) == (2, 0)
        assert len(night_steps(day)) == 12 and min(night_steps(day)) > 0  # threshold 0
    assert at(night["end"]) == at(night["start"]) + timedelta(days=2, hours=3)
    for before, after in (night["quiet_before"], night["quiet_after"]):
        assert next(s for t, s in steps if at(before) <= t < at(after)) == 0.0
    # the hour before each leaking night has no flow: nights never add up to continuous flow
    assert [(at(a).astimezone(BRISBANE).hour, at(b) - at(a)) for a, b in night["dry"]] == [(1, timedelta(hours=1))] * 3
    for a, b in night["dry"]:
        assert {s for t, s in steps if at(a) <= t < at(b)} == {0.0}


def test_a_stuck_register_repeats_its_value_while_the_meter_reports(five_days: tuple[Simulation, Series]) -> None:
    sim, readings = five_days
    stuck = episode(sim, "stuck")
    start, end = at(stuck["start"]), at(stuck["end"])
    assert end - start == timedelta(hours=12)
    total = readings[(stuck["meter_id"], "Pulse1_Total")]
    held = [v for t, v, _ in total if start <= t < end]
    assert len(held) == 48 and len(set(held)) == 1
    before = [v for t, v, _ in total if t < start][-1]
    after = next(v for t, v, _ in total if t == end)
    assert before != held[0] != after
    # the meter kept reporting its flow meanwhile
    assert len([t for t, _, _ in readings[(stuck["meter_id"], "Pulse1")] if start <= t < end]) == 48


def local_hours(flow: list[Reading]) -> dict[datetime, float]:
    hours: dict[datetime, float] = defaultdict(float)
    for t, v, _ in flow:
        hours[t.astimezone(BRISBANE).replace(minute=0, second=0, microsecond=0)] += v
    return hours


def test_normal_meters_never_flow_for_a_day_nor_look_stuck(five_days: tuple[Simulation, Series]) -> None:
    sim, readings = five_days
    leak_meter = episode(sim, "leak")["meter_id"]
    stuck_meter = episode(sim, "stuck")["meter_id"]
    meters = {m.meter_id for m in sim.profile.meters}
    for meter in meters - {leak_meter}:
        run = longest = 0
        for _, litres in sorted(local_hours(readings[(meter, "Pulse1")]).items()):
            run = run + 1 if litres > 0 else 0
            longest = max(longest, run)
        assert longest < 24, meter
    for meter in meters - {stuck_meter}:
        total = readings[(meter, "Pulse1_Total")]
        since = total[0]
        for row in total[1:]:
            if row[1] != since[1]:
                since = row
            assert row[0] - since[0] < timedelta(hours=6), meter


def test_the_guard_keeps_flow_off_a_day_run_without_injections() -> None:
    """Without the guard, 300 meters over 6 days flowed through 24 hours 232 times (measured)."""
    sim = Simulation(every_kind(), Settings(meters=40, duration_ms=4 * DAY, start=START, seed=9))
    readings = series(list(sim.records()))
    for meter in {m.meter_id for m in sim.profile.meters}:
        hours = sorted(local_hours(readings[(meter, "Pulse1")]).items())
        runs = "".join("1" if litres > 0 else "0" for _, litres in hours)
        assert "1" * 23 not in runs, meter


def test_episodes_are_deterministic_and_can_be_turned_off() -> None:
    first, a = run(every_kind(), meters=6, duration_ms=5 * DAY)
    second, b = run(every_kind(), meters=6, duration_ms=5 * DAY)
    assert first.truth.episodes == second.truth.episodes and [r.value for r in a] == [r.value for r in b]
    off, _ = run(every_kind(), meters=6, duration_ms=5 * DAY, rates=parse_rates(["leak=0,stuck=0"]))
    assert [e["kind"] for e in off.truth.episodes] == ["silent", "night_leak"]


def test_a_run_too_short_for_an_episode_says_why() -> None:
    sim, records = run(parse_manifest(example_manifest("water-meters")), meters=20, duration_ms=DAY)
    assert sim.truth.episodes == []
    assert {s["kind"]: s["reason"] for s in sim.truth.skipped_episodes} == {
        "silent": "a silence of 2 x 26h with a reading before and after needs a longer run",
        "leak": "a leak of 30 x 1h with a quiet interval either side needs a longer run",
        "night_leak": "a night leak over 3 nights with a quiet night either side needs a longer run",
    }
    assert not [r for r in records if r.kind == "episode"]
    document = example_manifest("smart-building")
    document["spec"]["rules"][-1]["for"] = "30s"
    building, records = run(parse_manifest(document), duration_ms=3 * 60_000)
    [silent] = building.truth.episodes  # any profile's meter can fall silent
    assert (silent["kind"], silent["rule"], at(silent["end"]) - at(silent["start"])) == (
        "silent",
        "ROOM_SILENT",
        timedelta(seconds=60.5),  # twice the rule's 30 s, on the rooms' half-second grid
    )
