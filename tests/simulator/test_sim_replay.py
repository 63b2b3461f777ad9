"""``meterflow replay``: local times and DST, skip reasons, order, and the real data sets into Kafka."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest
from kafka import KafkaConsumer, TopicPartition

from meterflow.spec import parse_manifest
from meterflow.stack.broker import BrokerInfo
from meterflow_cli.app import main
from simulator.errors import SimulatorError
from simulator.replay import Dataset
from simulator.replay.daiad import parse_local
from simulator.replay.localtime import LocalTimes
from simulator.replay.runner import Replay, Window
from tests.conftest import example_manifest, unique_pipeline, write_manifest
from tests.simulator.simcheck import consume

# The broker fixture's Popen is garbage-collected while the (detached) broker runs; Python then warns
# "subprocess N is still running", which the repo's filterwarnings=error would turn into a test error.
pytestmark = pytest.mark.filterwarnings("ignore:subprocess .* is still running:ResourceWarning")


def stamps(zone: str, rows: list[tuple[str, str]]) -> list[str | None]:
    times = LocalTimes(zone)
    out = []
    for meter, text in rows:
        moment = times.resolve(meter, datetime.fromisoformat(text))
        out.append(None if moment is None else moment.isoformat())
    return out


def test_daiad_autumn_hour_is_summer_first_then_winter_per_meter() -> None:
    rows = [
        ("a", "2016-10-30 01:59:00"),
        ("a", "2016-10-30 02:10:00"),
        ("b", "2016-10-30 02:40:00"),
        ("a", "2016-10-30 02:10:00"),  # the same wall time again: the second 02:10, winter time
        ("a", "2016-10-30 02:50:00"),  # after a winter reading, still winter
        ("b", "2016-10-30 02:20:00"),  # b goes backwards: winter
        (
            "b",
            "2016-10-30 02:20:00",
        ),  # and equal to its last instant's wall time: winter too (later instant? no: equal)
        ("a", "2016-10-30 03:05:00"),
    ]
    assert stamps("Europe/Madrid", rows) == [
        "2016-10-30T01:59:00+02:00",
        "2016-10-30T02:10:00+02:00",
        "2016-10-30T02:40:00+02:00",
        "2016-10-30T02:10:00+01:00",
        "2016-10-30T02:50:00+01:00",
        "2016-10-30T02:20:00+01:00",
        "2016-10-30T02:20:00+01:00",
        "2016-10-30T03:05:00+01:00",
    ]


def test_daiad_spring_gap_does_not_exist_and_offsets_change_around_it() -> None:
    rows = [("a", "2016-03-27 01:59:59"), ("a", "2016-03-27 02:30:00"), ("a", "2016-03-27 03:00:00")]
    assert stamps("Europe/Madrid", rows) == ["2016-03-27T01:59:59+01:00", None, "2016-03-27T03:00:00+02:00"]


def test_keti_and_uci_local_times_get_their_zones_offsets() -> None:
    assert stamps("America/Los_Angeles", [("r", "2013-08-24 12:00:00"), ("r", "2013-12-24 12:00:00")]) == [
        "2013-08-24T12:00:00-07:00",
        "2013-12-24T12:00:00-08:00",
    ]
    assert stamps("Europe/Paris", [("h", "2006-12-16 17:24:00")]) == ["2006-12-16T17:24:00+01:00"]


def test_daiad_dates_are_day_first() -> None:
    assert parse_local("01/03/2016 01:19:43") == datetime(2016, 3, 1, 1, 19, 43)
    assert parse_local("1/3/2016 01:19:43") == datetime(2016, 3, 1, 1, 19, 43)
    assert parse_local("31/02/2016 03:00:00") is None
    assert parse_local("2016-03-01 01:19:43") is None


def write(path: Path, text: str, gz: bool = False) -> Path:
    data = text.replace("\n", "\r\n").encode() if not gz else text.encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def replayed(example: str, dataset: Dataset, path: Path, window: Window | None = None) -> tuple[Replay, list[str]]:
    job = Replay(parse_manifest(example_manifest(example)), dataset, path, window or Window(), example)
    return job, [r.value.decode() for r in job.records()]


def test_daiad_rows_it_cannot_use_are_counted_by_reason(tmp_path: Path) -> None:
    path = write(
        tmp_path / "daiad.csv.gz",
        "V1;V2;V3;V4\n"
        "m1;01/03/2016 01:00:00;100;0\n"
        "m1;01/03/2016 02:00:00;;0\n"
        "m1;31/02/2016 03:00:00;105;5\n"
        "m1;01/03/2016 04:00:00;abc;0\n"
        "m1;01/03/2016 05:00:00;110\n"
        ";01/03/2016 06:00:00;110;0\n"
        "m2;27/03/2016 02:30:00;7;0\n"
        "m2;01/03/2016 00:30:00;5;0\n"
        "m1;01/03/2016 07:00:00;nan;0\n"
        "\n",
        gz=True,
    )
    job, payloads = replayed("water-meters", Dataset.daiad, path)
    head = '{"meter_id":"m1","timestamp":"2016-03-01T0'
    tail = ':00.000+01:00","measurement_type":"Pulse1_Total","series":"T1","unit":"L","value":'
    assert payloads == [
        '{"meter_id":"m2","timestamp":"2016-03-01T00:30' + tail + "5.0}",
        head + "1:00" + tail + "100.0}",
        head + "2:00" + tail + "null}",  # an empty cell: the job dead-letters it (missing_value)
        head + "4:00" + tail + '"abc"}',  # text: the job dead-letters it (wrong_type), the text kept
        head + "7:00" + tail + '"nan"}',
    ]
    t = job.tally
    assert (t.rows, t.filtered, t.limited, t.replayed, t.readings) == (9, 0, 0, 5, 5)
    assert t.skipped == {
        "unparseable date": 1,
        "wrong number of columns": 1,
        "no meter id": 1,
        "nonexistent local time (DST gap)": 1,
    }
    assert t.unreadable == {"missing value": 1, "not a number": 2}


def test_keti_rooms_are_merged_in_time_order_and_pir_becomes_motion(tmp_path: Path) -> None:
    folder = tmp_path / "keti"
    folder.mkdir()
    header = "timestamp,co2,humidity,light,pir,temperature\n"
    write(folder / "413.csv", header + "2013-08-24 10:00:00,500,45,100,0.0,23\n2013-08-24 10:02:00,501,45,100,3.5,23\n")
    write(
        folder / "415.csv.gz",
        header + "2013-08-24 10:01:00,400,40,90,26.5,22\n2013-08-24 10:03:00,x,40,90,0,22\n"
        "2013/08/24 10:04,400,40,90,0,22\n2013-08-24 10:05:00,400,40,90,?,22\n",
        gz=True,
    )
    job, payloads = replayed("smart-building", Dataset.keti, folder)
    meters_and_times = [(json.loads(p)["meter_id"], json.loads(p)["timestamp"]) for p in payloads]
    assert meters_and_times[::5] == [
        ("room_413", "2013-08-24T10:00:00.000Z"),  # the files write UTC
        ("room_415", "2013-08-24T10:01:00.000Z"),
        ("room_413", "2013-08-24T10:02:00.000Z"),
        ("room_415", "2013-08-24T10:03:00.000Z"),
        ("room_415", "2013-08-24T10:05:00.000Z"),
    ]
    motion = [json.loads(p)["value"] for p in payloads if '"motion"' in p]
    assert motion == [0.0, 1.0, 1.0, 0.0, None]  # 10:05's pir is "?": sent as null, for the job to dead-letter
    co2 = [json.loads(p)["value"] for p in payloads if '"co2"' in p]
    assert co2 == [500.0, 400.0, 501.0, "x", 400.0]  # the row of the bad co2 keeps its four good values
    assert [json.loads(p)["measurement_type"] for p in payloads[:5]] == [
        "co2",
        "humidity",
        "light",
        "motion",
        "temperature",
    ]
    assert (job.tally.rows, job.tally.replayed, job.tally.readings) == (6, 5, 25)
    assert job.tally.skipped == {"unparseable date": 1}
    assert job.tally.unreadable == {"not a number": 1, "missing value": 1}


def test_uci_dates_filter_and_limit(tmp_path: Path) -> None:
    header = (
        "Date;Time;Global_active_power;Global_reactive_power;Voltage;Global_intensity;Sub_metering_1;"
        "Sub_metering_2;Sub_metering_3\n"
    )
    rows = "".join(
        f"{d}/12/2006;23:5{m}:00;1.0;0.1;240.0;4.2;0.000;1.000;17.000 \n" for d in (16, 17, 18) for m in range(3)
    )
    path = write(tmp_path / "uci.txt", header + rows + "17/12/2006;23:59:00;?;?;?;?;?;?;?\n")
    job, payloads = replayed("household-power", Dataset.uci_power, path, Window(date(2006, 12, 17), None, 2))
    assert len(payloads) == 2 * 7
    assert json.loads(payloads[0]) == {
        "meter_id": "household-1",
        "timestamp": "2006-12-17T23:50:00.000+01:00",
        "measurement_type": "global_active_power",
        "series": "house",
        "unit": "kW",
        "value": 1.0,
    }
    assert json.loads(payloads[13])["value"] == 17.0
    t = job.tally
    assert (t.rows, t.filtered, t.limited, t.replayed) == (6, 3, 1, 2)  # read lazily: stops one row past the limit
    assert t.skipped == {}
    job, payloads = replayed("household-power", Dataset.uci_power, path, Window(date(2006, 12, 17), date(2006, 12, 17)))
    t = job.tally
    assert (t.rows, t.filtered, t.limited, t.replayed, t.readings) == (10, 6, 0, 4, 28) == (10, 6, 0, 4, len(payloads))
    assert t.skipped == {}
    assert t.unreadable == {"missing value": 7}  # the "?" row: seven nulls, each dead-lettered by the job
    assert {json.loads(p)["value"] for p in payloads[-7:]} == {None}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"kind": "gauge"},
            "household-power: uci-power's global_active_power is a power measurement, the manifest declares kind "
            "'gauge'; set kind: power",
        ),
        (
            {"interval": "15m"},
            "household-power: uci-power's global_active_power is a mean over 1m, the manifest declares interval "
            "'15m', which would misstate its energy; set interval: 1m",
        ),
    ],
    ids=["kind", "interval"],
)
def test_a_manifest_that_would_misstate_the_energy_is_refused(change: dict[str, str], message: str) -> None:
    document = example_manifest("household-power")
    document["spec"]["measurements"][0].update(change)
    with pytest.raises(SimulatorError) as refused:
        Replay(parse_manifest(document), Dataset.uci_power, Path("unused"), Window(), "household-power")
    assert str(refused.value) == message


def end_offsets(bootstrap: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(parts).values())
    finally:
        consumer.close()


def cli_replay(
    example: str, dataset: str, path: Path, tmp_path: Path, *extra: str
) -> tuple[str, list[dict[str, str]], str]:
    pipeline = unique_pipeline(example)
    record = tmp_path / f"{pipeline.name}.jsonl"
    args = ["replay", "-f", str(write_manifest(pipeline, tmp_path)), "--dataset", dataset, str(path)]
    assert main([*args, "--no-progress", "--record", str(record), *extra]) == 0
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    return pipeline.name, lines, f"{pipeline.name}.readings"


@pytest.mark.integration
def test_daiad_one_day_and_its_dst_day(
    broker: BrokerInfo, shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = shared_data / "daiad" / "swm_trialA_clean.csv.gz"
    _, lines, topic = cli_replay("daiad-water", "daiad", path, tmp_path, "--from", "2016-03-01", "--to", "2016-03-01")
    assert len(lines) == 1846
    assert len(consume(broker.bootstrap, topic, 1846)) == 1846
    out = capsys.readouterr().out
    assert (
        f"replayed daiad swm_trialA_clean.csv.gz into {topic}: 673,927 rows read, 672,081 filtered, 0 beyond --limit, "
        "1,846 replayed as 1,846 readings (1 per row), 0 rows skipped;" in out
    )
    _, lines, topic = cli_replay("daiad-water", "daiad", path, tmp_path, "--from", "2016-10-30", "--to", "2016-10-30")
    offsets = Counter(json.loads(line["value"])["timestamp"][-6:] for line in lines)
    assert offsets == {"+02:00": 260, "+01:00": 1681}  # 160 before 02:00 + 100 first 02:xx; 78 repeats + 1603 after
    assert end_offsets(broker.bootstrap, topic) == 1941
    times = [json.loads(line["value"])["timestamp"] for line in lines]
    instants = [datetime.fromisoformat(t) for t in times]
    assert instants == sorted(instants)
    assert len({(line["key"], t) for line, t in zip(lines, instants, strict=True)}) == 1941  # no (meter, instant) twice
    # The file is in instant order per meter (19 meters write 02:52:05, 02:52:07, 02:52:05: not
    # wall-clock order), and the rule keeps it: each meter's readings come out in file order.
    raw = pd.read_csv(path, sep=";")
    raw.columns = ["meter", "local", "value", "diff"]
    raw = raw[raw["local"].str.startswith("30/10/2016")]
    in_file = {meter: group["value"].astype(float).tolist() for meter, group in raw.groupby("meter", sort=False)}
    replayed_values: dict[str, list[float]] = {}
    for line in lines:
        replayed_values.setdefault(line["key"], []).append(json.loads(line["value"])["value"])
    assert replayed_values == in_file


@pytest.mark.integration
def test_keti_and_uci_into_their_manifests(broker: BrokerInfo, shared_data: Path, tmp_path: Path) -> None:
    keti = shared_data / "keti-building"
    _, lines, topic = cli_replay("smart-building", "keti", keti, tmp_path, "--limit", "1000")
    assert len(lines) == 1000 * 5
    assert len(consume(broker.bootstrap, topic, 5000)) == 5000
    assert json.loads(lines[0]["value"])["timestamp"] == "2013-08-23T23:04:00.000Z"  # the files write UTC
    _, lines, topic = cli_replay(
        "smart-building", "keti", keti / "413.csv.gz", tmp_path, "--from", "2013-08-24", "--to", "2013-08-24"
    )
    # --from/--to are the pipeline's days: 24 August in Los Angeles, 07:00 UTC to 07:00 UTC
    raw = pd.read_csv(keti / "413.csv.gz", parse_dates=["timestamp"])
    pacific = raw["timestamp"].dt.tz_localize("UTC").dt.tz_convert("America/Los_Angeles")
    day = raw[pacific.dt.date == date(2013, 8, 24)]
    assert len(lines) == len(day) * 5 and {line["key"] for line in lines} == {"room_413"}
    first = json.loads(lines[0]["value"])["timestamp"]
    assert first == day["timestamp"].min().strftime("%Y-%m-%dT%H:%M:%S.000Z") == "2013-08-24T07:00:00.000Z"
    assert end_offsets(broker.bootstrap, topic) == len(day) * 5 == 7200
    uci = shared_data / "uci-household-power" / "household_power_consumption.txt.gz"
    _, lines, topic = cli_replay(
        "household-power", "uci-power", uci, tmp_path, "--from", "2006-12-17", "--to", "2006-12-17"
    )
    assert len(lines) == 1440 * 7
    assert len(consume(broker.bootstrap, topic, 10080)) == 10080
    assert lines[0]["value"] == (
        '{"meter_id":"household-1","timestamp":"2006-12-17T00:00:00.000+01:00","measurement_type":'
        '"global_active_power","series":"house","unit":"kW","value":1.044}'
    )


@pytest.mark.integration
def test_the_whole_daiad_clean_file(
    broker: BrokerInfo, shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = unique_pipeline("water-meters")
    path = shared_data / "daiad" / "swm_trialA_clean.csv.gz"
    args = ["replay", "-f", str(write_manifest(pipeline, tmp_path)), "--dataset", "daiad", str(path), "--no-progress"]
    assert main(args) == 0
    assert end_offsets(broker.bootstrap, f"{pipeline.name}.readings") == 673_927
    assert (
        "673,927 rows read, 0 filtered, 0 beyond --limit, 673,927 replayed as 673,927 readings (1 per row), "
        "0 rows skipped;" in capsys.readouterr().out
    )
