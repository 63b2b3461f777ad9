"""Seed 004's industrial sensors without Kafka: the sensors, their normal ranges, and the injected
anomaly episodes exactly as the ground truth lists them (values, runs, rate), deterministic per seed.

The checks read the records back independently (values outside seed 004's normal ranges, runs of
2-second slots); the truth's scoring helpers are checked against a detector made of thresholds.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from meterflow.reading import parse_timestamp
from meterflow.spec import MeterPipeline, parse_manifest
from simulator.engine import Settings, Simulation
from simulator.errors import SimulatorError
from simulator.injections import parse_rates
from simulator.record import Record
from simulator.truth import ReadingKey, Score, anomalous_readings, reading_key, score
from tests.conftest import example_manifest

START = datetime(2024, 5, 1, tzinfo=UTC)
HOUR = 3_600_000
NORMAL = {"temperature": (18.0, 28.0), "humidity": (40.0, 70.0)}
ANOMALY = {"temperature": (80.0, 120.0), "humidity": (0.0, 20.0)}  # restated from seed 004, not imported


def pipeline(**spec: Any) -> MeterPipeline:
    document = example_manifest("industrial-sensors")
    document["spec"].update(spec)
    return parse_manifest(document)


def run(**settings: Any) -> tuple[Simulation, list[Record]]:
    settings.setdefault("seed", 4)
    settings.setdefault("start", START)
    sim = Simulation(pipeline(), Settings(**settings))
    return sim, list(sim.records())


def body(record: Record) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(record.value)
    return value


def key(reading: dict[str, Any]) -> ReadingKey:
    return reading_key(reading["meter_id"], reading["measurement_type"], reading["series"], reading["timestamp"])


@pytest.fixture(scope="module")
def hour() -> tuple[Simulation, list[Record]]:
    """Five sensors for an hour with every injection (the defaults)."""
    return run(duration_ms=HOUR, inject=True)


def test_five_sensors_on_their_lines_report_both_values_every_two_seconds() -> None:
    sim, records = run(duration_ms=10 * 60_000)
    assert [(m.meter_id, m.meter_type, m.suburb, m.postcode, m.usage_type) for m in sim.profile.meters] == [
        ("sensor_001", "industrial_sensor", "Furnace Line", "1", "Industrial"),
        ("sensor_002", "industrial_sensor", "Press Line", "1", "Industrial"),
        ("sensor_003", "industrial_sensor", "Paint Shop", "2", "Industrial"),
        ("sensor_004", "industrial_sensor", "Assembly Line", "2", "Industrial"),
        ("sensor_005", "industrial_sensor", "Packaging", "3", "Industrial"),
    ]
    assert len(records) == 5 * 2 * 300 and {r.kind for r in records} == {"normal"}
    times: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for r in records:
        reading = body(r)
        assert (reading["series"], reading["unit"]) == (
            "sensor",
            {"temperature": "C", "humidity": "%"}[reading["measurement_type"]],
        )
        times[(reading["meter_id"], reading["measurement_type"])].append(parse_timestamp(reading["timestamp"]))
    assert len(times) == 10
    expected = [START + timedelta(seconds=2 * k) for k in range(300)]
    assert all(sorted(t) == expected for t in times.values())
    six, _ = run(duration_ms=60_000, meters=6)
    assert (six.profile.meters[5].meter_id, six.profile.meters[5].suburb) == ("sensor_006", "Furnace Line 2")
    assert six.truth.unknown_meter_ids == []  # no injections, no unknown meters
    assert sim.profile.unknown_ids(3) == ["sensor_006", "sensor_007", "sensor_008"]


def test_normal_readings_wander_around_each_sensors_own_mean_inside_the_normal_ranges() -> None:
    _, records = run(duration_ms=6 * HOUR)
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in records:
        reading = body(r)
        values[(reading["meter_id"], reading["measurement_type"])].append(reading["value"])
    for (_, name), series in values.items():
        low, high = NORMAL[name]
        assert low <= min(series) and max(series) <= high
        assert all(round(v, 2) == v for v in series)
        steps = [abs(b - a) for a, b in itertools.pairwise(series)]
        assert max(steps) < {"temperature": 0.5, "humidity": 1.5}[name]  # smooth: no jumps between 2 s slots
    means = {k: round(sum(v) / len(v), 1) for k, v in sorted(values.items())}
    assert means == {
        ("sensor_001", "humidity"): 49.5,
        ("sensor_001", "temperature"): 23.2,
        ("sensor_002", "humidity"): 55.6,
        ("sensor_002", "temperature"): 24.7,
        ("sensor_003", "humidity"): 48.7,
        ("sensor_003", "temperature"): 23.4,
        ("sensor_004", "humidity"): 56.5,
        ("sensor_004", "temperature"): 24.1,
        ("sensor_005", "humidity"): 53.1,
        ("sensor_005", "temperature"): 23.4,
    }


def test_exactly_the_readings_in_the_truth_are_anomalous(hour: tuple[Simulation, list[Record]]) -> None:
    """Outside the normal ranges lie exactly the truth's anomalies (80-120 °C, 0-20 %) and its
    threshold triggers (just beyond the rules); everything else of every kind is normal."""
    sim, records = hour
    truth = sim.truth.to_dict()
    outside: dict[ReadingKey, float] = {}
    for r in records:
        if r.kind == "malformed":
            continue
        reading = body(r)
        low, high = NORMAL[reading["measurement_type"]]
        if not low <= reading["value"] <= high:
            outside[key(reading)] = reading["value"]
            assert r.kind in ("anomaly", "trigger"), r
    anomalies = {
        reading_key(a["meter_id"], a["measurement"], a["series"], a["timestamp"]): a["value"]
        for a in truth["anomalies"]
    }
    triggers = {reading_key(t["meter_id"], t["measurement"], t["series"], t["timestamp"]) for t in truth["triggers"]}
    assert set(outside) == set(anomalies) | triggers
    assert not set(anomalies) & triggers
    assert anomalous_readings(truth) == set(outside)
    assert anomalous_readings(truth, triggers=False) == set(anomalies)
    for k, value in anomalies.items():
        low, high = ANOMALY[k[1]]
        assert low <= value <= high and outside[k] == value
    assert truth["anomalies"][0] == {
        "meter_id": "sensor_003",
        "measurement": "temperature",
        "series": "sensor",
        "timestamp": "2024-05-01T00:00:36.000Z",
        "value": 109.95,
        "episode": 0,
        "rules": ["HIGH_TEMPERATURE"],
    }
    assert {a["measurement"]: sorted(set(a["rules"])) for a in truth["anomalies"]} == {
        "temperature": ["HIGH_TEMPERATURE"],
        "humidity": ["LOW_HUMIDITY"],
    }


def test_an_episode_is_two_to_five_consecutive_slots_of_one_sensor(hour: tuple[Simulation, list[Record]]) -> None:
    sim, _ = hour
    episodes: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for a in sim.truth.anomalies:
        episodes[a["episode"]].append(a)
    assert sorted(episodes) == list(range(len(episodes)))
    firsts = []
    shapes: Counter[tuple[str, ...]] = Counter()
    for rows in episodes.values():
        assert len({a["meter_id"] for a in rows}) == 1
        per_measurement: dict[str, list[datetime]] = defaultdict(list)
        for a in rows:
            per_measurement[a["measurement"]].append(parse_timestamp(a["timestamp"]))
        stamps = list(per_measurement.values())
        assert all(s == stamps[0] for s in stamps)  # all its measurements over the same slots
        assert 2 <= len(stamps[0]) <= 5
        assert all(b - a == timedelta(seconds=2) for a, b in itertools.pairwise(stamps[0]))
        firsts.append(stamps[0][0])
        shapes[tuple(sorted(per_measurement))] += 1
    assert firsts == sorted(firsts)  # numbered in order of their first reading
    assert shapes == {("humidity", "temperature"): 24, ("temperature",): 20, ("humidity",): 12}
    # two episodes of a sensor leave at least one slot between them
    for meter in {a["meter_id"] for a in sim.truth.anomalies}:
        episode_of = {
            parse_timestamp(a["timestamp"]): a["episode"] for a in sim.truth.anomalies if a["meter_id"] == meter
        }
        ordered = sorted(episode_of)
        for earlier, later in itertools.pairwise(ordered):
            if episode_of[earlier] != episode_of[later]:
                assert later - earlier >= timedelta(seconds=4)


def test_about_one_and_a_half_percent_of_readings_are_anomalous(hour: tuple[Simulation, list[Record]]) -> None:
    sim, _ = hour
    counts = sim.truth.counts
    readings = counts["normal"] + counts["trigger"] + counts["anomaly"]
    assert readings == 5 * 2 * 1800
    assert (counts["anomaly"], len(sim.truth.anomalies), len({a["episode"] for a in sim.truth.anomalies})) == (
        271,
        271,
        56,
    )
    assert 0.01 <= counts["anomaly"] / readings <= 0.02
    assert Counter(t["rule"] for t in sim.truth.triggers) == {"HIGH_TEMPERATURE": 9, "LOW_HUMIDITY": 9}
    fewer, _ = run(duration_ms=HOUR, inject=True, rates=parse_rates(["anomaly=5"]))
    assert fewer.truth.counts["anomaly"] == 92
    none, records = run(duration_ms=HOUR, inject=True, rates=parse_rates(["anomaly=0"]))
    assert none.truth.counts["anomaly"] == 0 and none.truth.anomalies == []
    assert not [r for r in records if r.kind == "anomaly"]


def test_the_same_seed_gives_the_same_anomalies_and_they_leave_the_normal_values_alone(
    hour: tuple[Simulation, list[Record]],
) -> None:
    sim, records = hour
    again, same = run(duration_ms=HOUR, inject=True)
    assert [(r.key, r.value, r.kind) for r in same] == [(r.key, r.value, r.kind) for r in records]
    assert again.truth.to_dict() == sim.truth.to_dict()
    other, _ = run(duration_ms=HOUR, inject=True, seed=5)
    assert other.truth.anomalies != sim.truth.anomalies
    _, quiet = run(duration_ms=HOUR)
    replaced = {key(body(r)) for r in records if r.kind in ("anomaly", "trigger")}
    kept = [r.value for r in quiet if key(body(r)) not in replaced]
    assert kept == [r.value for r in records if r.kind == "normal"]


def test_a_count_run_gets_its_anomalies_too() -> None:
    sim, records = run(count=3_000, inject=True)
    assert sim.truth.counts["normal"] == 3_000
    assert sim.truth.counts["anomaly"] == len(sim.truth.anomalies) == sum(r.kind == "anomaly" for r in records) == 46


def test_the_truth_scores_a_detector() -> None:
    truth: dict[str, Any] = {
        "triggers": [
            {
                "meter_id": "s1",
                "measurement": "temperature",
                "series": "sensor",
                "timestamp": "2024-05-01T00:00:02.000Z",
            }
        ],
        "anomalies": [
            {
                "meter_id": "s1",
                "measurement": "humidity",
                "series": "sensor",
                "timestamp": "2024-05-01T10:00:04.000+10:00",
            },
            {"meter_id": "s2", "measurement": "humidity", "series": "sensor", "timestamp": "2024-05-01T00:00:06.000Z"},
        ],
    }
    at = int(START.timestamp() * 1000)
    assert anomalous_readings(truth) == {
        ("s1", "temperature", "sensor", at + 2_000),
        ("s1", "humidity", "sensor", at + 4_000),
        ("s2", "humidity", "sensor", at + 6_000),
    }
    flagged = [("s1", "humidity", "sensor", at + 4_000), ("s2", "temperature", "sensor", at + 6_000)]
    result = score(truth, flagged)
    assert result == Score(true_positives=1, false_positives=1, false_negatives=2)
    assert (result.precision, result.recall, round(result.f1, 4)) == (0.5, 1 / 3, 0.4)
    assert score(truth, flagged, triggers=False) == Score(1, 1, 1)
    assert (Score(0, 0, 0).precision, Score(0, 0, 0).recall, Score(0, 0, 0).f1) == (1.0, 1.0, 1.0)
    assert (Score(0, 0, 3).f1, Score(0, 2, 0).f1) == (0.0, 0.0)


def test_a_threshold_detector_finds_every_anomaly_of_a_run(hour: tuple[Simulation, list[Record]]) -> None:
    """The alert rules of the example are such a detector: on the valid readings it scores 1.0."""
    sim, records = hour
    flagged = set()
    for r in records:
        if r.kind in ("malformed", "duplicate"):
            continue
        reading = body(r)
        if (reading["measurement_type"], reading["value"] > 60) == ("temperature", True) or (
            reading["measurement_type"] == "humidity" and reading["value"] < 25
        ):
            flagged.add(key(reading))
    result = score(sim.truth.to_dict(), flagged)
    assert (result.precision, result.recall, result.f1) == (1.0, 1.0, 1.0)
    assert result.true_positives == 271 + 18


def test_anomalies_outside_the_manifests_range_are_a_one_line_error() -> None:
    measurements = example_manifest("industrial-sensors")["spec"]["measurements"]
    narrow = [m | {"max": 100} if m["name"] == "temperature" else m for m in measurements]
    with pytest.raises(
        SimulatorError,
        match=r"^measurement temperature/sensor: injected anomalies go up to 120 C, above its max 100; "
        r"set max: 120 or higher, or give --inject-rate anomaly=0$",
    ):
        Simulation(pipeline(measurements=narrow), Settings(duration_ms=HOUR, inject=True))
    quiet = Simulation(
        pipeline(measurements=narrow), Settings(duration_ms=HOUR, inject=True, rates=parse_rates(["anomaly=0"]))
    )
    assert quiet.truth.anomalies == []
