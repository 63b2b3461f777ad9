"""``meterflow simulate`` against the real embedded broker: what lands on the topics, and CLI errors."""

from __future__ import annotations

import json
from base64 import b64decode
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from meterflow.stack.broker import BrokerInfo
from meterflow_cli.app import main
from tests.conftest import unique_pipeline, write_manifest
from tests.simulator.simcheck import consume

ARGS = ["--start", "2024-05-01T00:00:00Z", "--inject", "--no-progress"]


# The broker fixture's Popen is garbage-collected while the (detached) broker runs; Python then warns
# "subprocess N is still running", which the repo's filterwarnings=error would turn into a test error.
pytestmark = pytest.mark.filterwarnings("ignore:subprocess .* is still running:ResourceWarning")


def simulate(manifest: Path, folder: Path, *extra: str) -> tuple[dict[str, Any], list[dict[str, str]]]:
    truth, record = folder / "truth.json", folder / "records.jsonl"
    folder.mkdir(exist_ok=True)
    code = main(["simulate", "-f", str(manifest), *ARGS, "--truth", str(truth), "--record", str(record), *extra])
    assert code == 0
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    return json.loads(truth.read_text()), lines


@pytest.mark.integration
def test_a_seeded_simulation_puts_exactly_its_records_on_the_topic(
    broker: BrokerInfo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = unique_pipeline("water-meters")
    truth, lines = simulate(write_manifest(pipeline, tmp_path), tmp_path / "run", "--count", "5000", "--seed", "3")
    counts = truth["counts"]
    assert counts["normal"] == 5000
    injected = sum(v for k, v in counts.items() if k not in ("normal", "total_records"))
    assert counts["total_records"] == 5000 + injected == len(lines)
    summary = capsys.readouterr().out
    assert summary.startswith(
        f"simulated 500 water meters (seed 3): {len(lines):,} records to {pipeline.name}.readings"
    )

    got = consume(broker.bootstrap, f"{pipeline.name}.readings", len(lines))
    assert len(got) == len(lines)
    sent: dict[bytes, list[bytes]] = defaultdict(list)
    for line in lines:
        value = line["value"]
        sent[line["key"].encode()].append(b64decode(value) if line.get("encoding") == "base64" else value.encode())
        if line["kind"] != "malformed":
            assert json.loads(line["value"])["meter_id"] == line["key"]
    received: dict[bytes, list[bytes]] = defaultdict(list)
    for key, value in got:
        received[key].append(value)
    assert received == sent  # same keys, and per key the same payloads in the same order

    meters = consume(broker.bootstrap, f"{pipeline.name}.meters", truth["meters_published"])
    assert len(meters) == truth["meters_published"] == 500
    infos = [json.loads(value) for _, value in meters]
    assert all(set(info) == {"meter_id", "meter_type", "suburb", "postcode", "usage_type"} for info in infos)
    assert [key.decode() for key, _ in meters] == [info["meter_id"] for info in infos]
    assert not {info["meter_id"] for info in infos} & set(truth["unknown_meter_ids"])


@pytest.mark.integration
def test_the_same_seed_twice_sends_identical_records(broker: BrokerInfo, tmp_path: Path) -> None:
    runs = []
    for name in ("a", "b"):
        pipeline = unique_pipeline("household-power")
        folder = tmp_path / name
        folder.mkdir()
        truth, lines = simulate(write_manifest(pipeline, folder), folder / "run", "--duration", "2h", "--seed", "9")
        got = consume(broker.bootstrap, f"{pipeline.name}.readings", len(lines))
        runs.append((lines, truth["counts"], sorted(got)))
    assert runs[0] == runs[1]
    assert runs[0][1]["normal"] == 10 * 7 * 120 - runs[0][1]["trigger"]


def test_cli_errors_are_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = write_manifest(unique_pipeline("water-meters"), tmp_path)
    cases = {
        ("simulate", "--duration", "1 day"): "meterflow: --duration '1 day' is not a duration; write e.g. 15m, 6h, "
        "1d, 30d",
        ("simulate", "--count", "10", "--duration", "1h"): "meterflow: --count and --duration both given; give one "
        "(normal readings, or a span)",
        ("simulate", "--start", "yesterday"): "meterflow: --start 'yesterday' is not an ISO 8601 date-time; write "
        "e.g. 2024-05-01T00:00:00Z",
        ("simulate", "--inject-rate", "late=x"): "meterflow: --inject-rate 'late=x': give a number >= 0 (per 1000 "
        "normal readings)",
        ("replay", "--dataset", "keti", str(tmp_path)): f"meterflow: {manifest} does not declare co2, humidity, "
        "light, motion, temperature, which keti replays; add to spec.measurements e.g. {name: co2, series: room, "
        'unit: ppm, kind: gauge, interval: 1m}; {name: humidity, series: room, unit: "%", kind: gauge, interval: '
        "1m}; {name: light, series: room, unit: lx, kind: gauge, interval: 1m}; {name: motion, series: room, unit: "
        "event, kind: interval, interval: 1m}; {name: temperature, series: room, unit: C, kind: gauge, interval: 1m}",
        ("replay", "--dataset", "daiad", str(tmp_path / "nope.csv")): f"meterflow: {tmp_path / 'nope.csv'}: no such "
        "file; give a DAIAD csv (or csv.gz) file, e.g. swm_trialA_clean.csv.gz",
        ("replay", "--dataset", "daiad", "x", "--from", "2016-13-01"): "meterflow: --from '2016-13-01' is not a "
        "date; write YYYY-MM-DD, e.g. 2016-03-01",
    }
    for (command, *args), message in cases.items():
        assert main([command, "-f", str(manifest), *args]) == 2
        captured = capsys.readouterr()
        assert captured.err == message + "\n"
        assert captured.out == ""
