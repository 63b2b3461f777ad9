"""The simulation without Kafka: determinism, validity, rules, injections and the ground truth."""

from __future__ import annotations

import base64
import itertools
import json
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from meterflow.reading import DlqReason, parse_timestamp
from meterflow.spec import MeterPipeline, parse_manifest
from simulator.engine import Settings, Simulation
from simulator.errors import SimulatorError
from simulator.injections import parse_rates
from simulator.record import Record
from tests.conftest import example_manifest
from tests.simulator.simcheck import classify, fired

START = datetime(2024, 5, 1, tzinfo=UTC)
HOUR = 3_600_000


def pipeline(example: str, **spec: Any) -> MeterPipeline:
    document = example_manifest(example)
    document["spec"].update(spec)
    return parse_manifest(document)


def run(example: str, **settings: Any) -> tuple[Simulation, list[Record]]:
    settings.setdefault("seed", 11)
    settings.setdefault("start", START)
    sim = Simulation(pipeline(example), Settings(**settings))
    return sim, list(sim.records())


def sent_bytes(malformed: dict[str, Any]) -> bytes:
    """The bytes of a malformed record of the truth (base64 when they are not UTF-8)."""
    if malformed["payload_encoding"] == "base64":
        return base64.b64decode(malformed["payload"])
    return str(malformed["payload"]).encode()


def reading(record: Record) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(record.value)
    return value


@pytest.fixture(scope="module")
def water_day() -> tuple[Simulation, list[Record]]:
    """500 water meters, one day, injections on: the default run."""
    return run("water-meters", duration_ms=24 * HOUR, inject=True)


CASES = {
    "water-meters": {"duration_ms": 24 * HOUR, "meters": 100},
    "smart-building": {"duration_ms": HOUR // 6},
    "household-power": {"duration_ms": 24 * HOUR, "meters": 3},
    "industrial-sensors": {"duration_ms": HOUR},
}


@pytest.fixture(
    scope="module",
    params=sorted(CASES),
)
def injected(request: pytest.FixtureRequest) -> tuple[Simulation, list[Record]]:
    return run(request.param, inject=True, **CASES[request.param])


def test_the_same_seed_gives_the_same_records_and_truth() -> None:
    first, a = run("water-meters", duration_ms=6 * HOUR, meters=50, inject=True, seed=5)
    second, b = run("water-meters", duration_ms=6 * HOUR, meters=50, inject=True, seed=5)
    assert [(r.key, r.value, r.kind) for r in a] == [(r.key, r.value, r.kind) for r in b]
    assert first.truth.to_dict() == second.truth.to_dict()
    _, c = run("water-meters", duration_ms=6 * HOUR, meters=50, inject=True, seed=6)
    assert [r.value for r in a] != [r.value for r in c]


def test_injections_do_not_change_the_normal_readings_around_them() -> None:
    _, quiet = run("household-power", duration_ms=2 * HOUR, meters=2)
    _, loud = run("household-power", duration_ms=2 * HOUR, meters=2, inject=True)
    replaced = {
        (r.key, json.loads(r.value)["timestamp"], json.loads(r.value)["measurement_type"])
        for r in loud
        if r.kind == "trigger"
    }
    kept = [r.value for r in quiet if (r.key, reading(r)["timestamp"], reading(r)["measurement_type"]) not in replaced]
    assert kept == [r.value for r in loud if r.kind == "normal"]


def test_every_record_is_classified_as_the_truth_says(injected: tuple[Simulation, list[Record]]) -> None:
    sim, records = injected
    reasons = iter(m["reason"] for m in sim.truth.malformed)
    triggers = iter(sim.truth.triggers)
    anomalies = iter(sim.truth.anomalies)
    for r in records:
        verdict = classify(r.value, sim.pipeline)
        if r.kind == "malformed":
            assert verdict == next(reasons)
            continue
        assert verdict is None, r
        body = reading(r)
        rules = fired(sim.pipeline, body["measurement_type"], body["value"])
        if r.kind == "trigger":
            expected = next(triggers)
            assert (body["meter_id"], body["timestamp"], body["value"]) == (
                expected["meter_id"],
                expected["timestamp"],
                expected["value"],
            )
            assert rules == expected["rules"]
            assert expected["rule"] in rules
        elif r.kind == "anomaly":
            expected = next(anomalies)
            assert (body["meter_id"], body["timestamp"], body["value"]) == (
                expected["meter_id"],
                expected["timestamp"],
                expected["value"],
            )
            assert rules == expected["rules"]
        else:
            assert rules == [], r
    assert next(reasons, None) is None
    assert next(triggers, None) is None
    assert next(anomalies, None) is None


def test_each_rule_is_triggered_and_every_reason_dead_lettered(injected: tuple[Simulation, list[Record]]) -> None:
    sim, _ = injected
    per_rule = Counter(t["rule"] for t in sim.truth.triggers)
    assert set(per_rule) == {r.name for r in sim.pipeline.spec.threshold_rules()}
    assert sim.truth.untriggerable_rules == []
    assert {m["reason"] for m in sim.truth.malformed} == {r.value for r in DlqReason}


def test_counts_and_lists_of_the_truth_match_the_records(injected: tuple[Simulation, list[Record]]) -> None:
    sim, records = injected
    truth = sim.truth.to_dict()
    kinds = Counter(r.kind for r in records)
    assert truth["counts"] == {k: kinds.get(k, 0) for k in truth["counts"] if k != "total_records"} | {
        "total_records": len(records)
    }
    by_kind: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        by_kind[r.kind].append(r)
    assert [sent_bytes(m) for m in truth["malformed"]] == [r.value for r in by_kind["malformed"]]
    assert [m["key"].encode() for m in truth["malformed"]] == [r.key for r in by_kind["malformed"]]
    assert [d["payload"].encode() for d in truth["duplicates"]] == [r.value for r in by_kind["duplicate"]]
    assert [d["payload"].encode() for d in truth["late"]] == [r.value for r in by_kind["late"]]
    assert [(u["meter_id"], u["timestamp"], u["value"]) for u in truth["unknown_meters"]] == [
        (reading(r)["meter_id"], reading(r)["timestamp"], reading(r)["value"]) for r in by_kind["unknown_meter"]
    ]
    assert [(x["meter_id"], x["timestamp"], x["after"]) for x in truth["resets"]] == [
        (reading(r)["meter_id"], reading(r)["timestamp"], reading(r)["value"]) for r in by_kind["reset"]
    ]
    assert [(a["meter_id"], a["measurement"], a["timestamp"], a["value"]) for a in truth["anomalies"]] == [
        (reading(r)["meter_id"], reading(r)["measurement_type"], reading(r)["timestamp"], reading(r)["value"])
        for r in by_kind["anomaly"]
    ]
    published = {m.meter_id for m in sim.profile.meters}
    assert len(published) == truth["meters_published"]
    assert {u["meter_id"] for u in truth["unknown_meters"]} <= set(truth["unknown_meter_ids"])
    assert not published & set(truth["unknown_meter_ids"])


def test_duplicates_repeat_an_earlier_normal_record_byte_for_byte(injected: tuple[Simulation, list[Record]]) -> None:
    _, records = injected
    seen: dict[bytes, int] = {}
    for i, r in enumerate(records):
        if r.kind == "duplicate":
            assert r.value in seen and records[seen[r.value]].key == r.key
            assert records[seen[r.value]].kind == "normal"
            assert 0 < i - seen[r.value] <= 400
        else:
            assert r.value not in seen or r.kind == "malformed"  # every other payload is new
            seen.setdefault(r.value, i)


def test_late_readings_come_last_far_behind_and_unique(injected: tuple[Simulation, list[Record]]) -> None:
    sim, records = injected
    kinds = [r.kind for r in records]
    n = kinds.count("late")
    assert n >= 1 and kinds[-n:] == ["late"] * n
    stream = [parse_timestamp(reading(r)["timestamp"]) for r in records if r.kind in ("normal", "trigger", "reset")]
    newest, oldest = max(stream), min(stream)
    windows = sim.pipeline.spec.windows
    lag = max((newest - oldest) / 2, timedelta(milliseconds=2 * (windows.grace_ms + windows.size_ms)))
    keys = {
        (reading(r)["meter_id"], reading(r)["measurement_type"], parse_timestamp(reading(r)["timestamp"]))
        for r in records
        if r.kind in ("normal", "trigger", "reset")
    }
    late = [reading(r) for r in records if r.kind == "late"]
    for body in late:
        moment = parse_timestamp(body["timestamp"])
        assert newest - moment >= lag
        assert (body["meter_id"], body["measurement_type"], moment) not in keys
        assert sim.pipeline.spec.measurement(body["measurement_type"]).kind != "register"
    assert len({(b["meter_id"], b["measurement_type"], b["timestamp"]) for b in late}) == len(late)


def test_a_default_water_day_has_dozens_of_each_injection(water_day: tuple[Simulation, list[Record]]) -> None:
    sim, _ = water_day
    counts = sim.truth.counts
    assert counts["normal"] == 96_808
    assert Counter(t["rule"] for t in sim.truth.triggers) == {
        "HIGH_FLOW": 48,
        "LOW_BATTERY": 48,
        "HIGH_TEMPERATURE": 48,
    }
    assert {k: counts[k] for k in ("malformed", "duplicate", "late", "reset", "unknown_meter")} == dict.fromkeys(
        ("malformed", "duplicate", "late", "reset", "unknown_meter"), 48
    )
    assert sim.truth.start == "2024-05-01T00:00:00.000Z" and sim.truth.end == "2024-05-02T00:00:00.000Z"


def test_the_register_adds_up_the_flow_and_resets_to_the_flow(water_day: tuple[Simulation, list[Record]]) -> None:
    sim, records = water_day
    flow: dict[tuple[str, datetime], float] = {}
    totals: dict[str, list[tuple[datetime, float, str]]] = defaultdict(list)
    for r in records:
        if r.kind not in ("normal", "trigger", "reset"):
            continue
        body = reading(r)
        moment = parse_timestamp(body["timestamp"])
        if body["measurement_type"] == "Pulse1":
            flow[(body["meter_id"], moment)] = body["value"]
        elif body["measurement_type"] == "Pulse1_Total":
            totals[body["meter_id"]].append((moment, body["value"], r.kind))
    resets = {(x["meter_id"], parse_timestamp(x["timestamp"])): x for x in sim.truth.resets}
    checked = 0
    for meter, series in totals.items():
        series.sort()
        for (_, before, _), (moment, total, kind) in itertools.pairwise(series):
            if kind == "reset":
                assert total == flow[(meter, moment)]
                assert resets[(meter, moment)]["before"] == before
            else:
                assert total == before + flow[(meter, moment)]
            checked += 1
    assert checked == 500 * 95  # every Total after the first of each meter
    assert len(resets) == 48


def test_battery_is_mostly_volts_with_a_few_on_the_second_scale(water_day: tuple[Simulation, list[Record]]) -> None:
    _, records = water_day
    values = [reading(r)["value"] for r in records if r.kind == "normal" and b'"Battery"' in r.value]
    volts = [v for v in values if 3.0 <= v <= 3.6]
    second = [v for v in values if 64 <= v <= 77]
    assert len(volts) + len(second) == len(values) == 452
    assert 0 < len(second) < len(values) // 10


def test_timestamps_use_z_and_two_offsets_for_whole_second_instants(
    water_day: tuple[Simulation, list[Record]],
) -> None:
    _, records = water_day
    stamps = [reading(r)["timestamp"] for r in records if r.kind == "normal"]
    offsets = Counter("Z" if s.endswith("Z") else s[-6:] for s in stamps)
    assert set(offsets) == {"Z", "+10:00", "+11:00"}
    assert offsets["Z"] > 0.85 * len(stamps)
    assert all(parse_timestamp(s).microsecond == 0 for s in stamps)
    assert all(START <= parse_timestamp(s) < START + timedelta(days=1) for s in stamps)


def test_only_sensors_with_anomaly_ranges_get_anomalies(injected: tuple[Simulation, list[Record]]) -> None:
    sim, records = injected
    anomalous = [r for r in records if r.kind == "anomaly"]
    if sim.profile.kind == "industrial":
        assert len(anomalous) == len(sim.truth.anomalies) > 0
    else:
        assert anomalous == [] and sim.truth.to_dict()["anomalies"] == [] and sim.truth.counts["anomaly"] == 0


def test_count_mode_sends_exactly_the_normal_readings_asked_for() -> None:
    sim, records = run("water-meters", count=1_000, inject=True)
    assert sim.truth.counts["normal"] == 1_000
    assert sum(1 for r in records if r.kind == "normal") == 1_000
    assert {m["reason"] for m in sim.truth.malformed} == {r.value for r in DlqReason}


def test_the_building_reports_every_room_every_half_second() -> None:
    sim, records = run("smart-building", duration_ms=60_000)
    assert [(m.meter_id, m.meter_type, m.suburb, m.postcode, m.usage_type) for m in sim.profile.meters] == [
        ("room_1", "server_room", "Server Room", "1", "Commercial"),
        ("room_2", "conference_room", "Conference Room", "2", "Commercial"),
        ("room_3", "storage", "Storage Closet", "1", "Commercial"),
        ("room_4", "open_office", "Open Office", "2", "Commercial"),
        ("room_5", "kitchen", "Kitchen", "2", "Commercial"),
        ("room_6", "lab", "Lab/Workshop", "3", "Commercial"),
        ("room_7", "break_room", "Break Room", "3", "Commercial"),
        ("room_8", "executive_office", "Executive Office", "4", "Commercial"),
    ]
    assert len(records) == 8 * 8 * 120
    per = Counter((reading(r)["meter_id"], reading(r)["measurement_type"]) for r in records)
    assert set(per.values()) == {120}
    storage = [reading(r)["value"] for r in records if r.key == b"room_3" and b'"light"' in r.value]
    assert set(storage) == {0.0}


def test_households_report_seven_values_a_minute_that_add_up() -> None:
    _, records = run("household-power", duration_ms=24 * HOUR, meters=2)
    assert len(records) == 2 * 7 * 1440
    minute: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for r in records:
        body = reading(r)
        minute[(body["meter_id"], parse_timestamp(body["timestamp"]).isoformat())][body["measurement_type"]] = body[
            "value"
        ]
    for values in minute.values():
        metered_kw = (values["sub_metering_1"] + values["sub_metering_2"] + values["sub_metering_3"]) * 60 / 1000
        assert values["global_active_power"] >= metered_kw - 0.03 * 3 - 0.001
        assert 220 <= values["voltage"] <= 253 and values["global_active_power"] <= 6


def test_a_measurement_the_profile_cannot_model_is_a_one_line_error() -> None:
    extra = example_manifest("water-meters")["spec"]["measurements"] + [
        {"name": "Pressure", "series": "P", "unit": "kPa", "kind": "gauge"}
    ]
    with pytest.raises(SimulatorError, match=r"^measurement Pressure/P: the water simulator has no model"):
        Simulation(pipeline("water-meters", measurements=extra), Settings(count=10))
    wrong_unit = [
        m | {"unit": "mV"} if m["name"] == "Battery" else m
        for m in example_manifest("water-meters")["spec"]["measurements"]
    ]
    with pytest.raises(SimulatorError, match=r"produces it in V, the manifest says 'mV'; set unit: V$"):
        Simulation(pipeline("water-meters", measurements=wrong_unit), Settings(count=10))


def test_bad_settings_are_one_line_errors() -> None:
    with pytest.raises(SimulatorError, match="--count and --duration both given"):
        Simulation(pipeline("water-meters"), Settings(count=10, duration_ms=HOUR))
    with pytest.raises(SimulatorError, match=r"--meters 0: give at least 1 meter"):
        Simulation(pipeline("water-meters"), Settings(meters=0, count=10))
    with pytest.raises(SimulatorError, match=r"'flood' is no injection"):
        parse_rates(["flood=1"])
    with pytest.raises(SimulatorError, match=r"give a number >= 0"):
        parse_rates(["late=-1"])
    assert parse_rates(["2", "late=0"]) == {
        "trigger": 2.0,
        "malformed": 2.0,
        "duplicate": 2.0,
        "late": 0.0,
        "reset": 2.0,
        "unknown_meter": 2.0,
        "leak": 2.0,
        "silent": 2.0,
        "night_leak": 2.0,
        "stuck": 2.0,
        "anomaly": 2.0,
    }
