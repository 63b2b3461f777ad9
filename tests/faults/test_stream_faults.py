"""Faults against a running pipeline (issue 11): one pipeline, one broker, one story; exact counts.

The module fixture drives one water-meters pipeline (one partition, so lateness is exact) through
every fault once and records what it saw; the tests then check it against the simulator's truth:

1. a continuous ``run`` starts; a second ``run`` of the pipeline is refused in one line naming it;
2. 8 readings stamped 1970 and 200 stamped 2100 arrive first, then a paced simulation with every
   injection (each hostile kind of the simulator among them), and the run is killed (SIGKILL to its
   process group: the CLI, its serving sink and its JVM) mid-stream;
3. two 1 MB poison pills (random bytes; ``"`` characters) arrive; a new run resumes from the killed
   run's checkpoint and catches up;
4. more readings, then the broker is killed and brought back: it comes back on its port, the
   serving sink only warns, the job rides it out and more readings are processed without a stall;
5. the broker is killed again, the job fails and restarts; Ctrl-C then stops the run with one line
   (no savepoint can be taken without Kafka) and no Py4J traceback;
6. the broker comes back and an ``--until-idle`` run with nothing new to read restores the last
   checkpoint, drains and ends.

Then every figure is exact: ``in = valid + dlq`` against the truth, every dead letter with its
reason (the poison pills bounded), every unique reading once in the lake, exactly the injected
late readings late (the bad clocks made no one late), every window, exactly the injected alerts.

The last test takes the lake table away under a running job: the restart strategy gives up and
``run`` ends with one line naming the cause.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from meterflow.spec import MeterPipeline, names_for
from meterflow.stack.broker import BrokerInfo, EmbeddedBroker
from meterflow.stack.endpoints import iceberg_location
from meterflow.stack.lock import lock_path
from meterflow.stack.process import alive
from meterflow_iceberg.catalog import open_catalog
from tests.conftest import unique_pipeline, write_manifest
from tests.streaming import checks
from tests.streaming.expected import ONE_PARTITION, Expected, compute
from tests.streaming.harness import (
    METERFLOW,
    Process,
    await_event,
    dead_letters,
    flatten,
    group_gone,
    lake,
    meterflow,
    rows,
)

pytestmark = [pytest.mark.integration, pytest.mark.flink]

FLINK = {"parallelism": 1, "checkpointInterval": "2s"}
SIM_A = ("--meters", "10", "--duration", "2d", "--seed", "31", "--start", "2024-05-01T00:00:00+00:00")
"""About 3,900 records with every injection (12+ malformed: one of each dead-letter reason)."""
RATE_A = "150"
"""Readings per second of simulation A: ~26 s of input, so the kill lands mid-stream."""
KILL_AFTER_ROWS = 600
SIM_B1 = ("--meters", "10", "--duration", "12h", "--seed", "32", "--start", "2024-05-03T00:00:00+00:00")
SIM_B2 = ("--meters", "10", "--duration", "12h", "--seed", "33", "--start", "2024-05-03T12:00:00+00:00")
CLOCK_1970, CLOCK_2100 = 8, 200
POISON_BYTES = 1_000_000
DEAD_LETTER_PAYLOAD = 16 * 1024  # restated: the job's bound (a test does not import what it checks)
TOTALS = "SELECT in_total, valid, dlq, on_time, late, duplicates FROM ingest_totals"
SINK_WARNS = r"the serving sink retries|offsets not committed yet"
"""What the serving sink says while the broker is away (librdkafka's errors, its own commits)."""


@dataclass
class Sent:
    """What the test sent besides the simulations, as record-file lines and truth entries."""

    lines: list[dict[str, Any]] = field(default_factory=list)
    malformed: list[dict[str, Any]] = field(default_factory=list)

    def add(self, key: str, value: bytes, reason: str) -> None:
        try:
            text, encoding = value.decode(), "utf-8"
        except UnicodeDecodeError:
            text, encoding = base64.b64encode(value).decode(), "base64"
        self.lines.append({"key": key, "value": text, "kind": "malformed"} | ({"encoding": encoding}))
        self.malformed.append({"key": key, "payload": text, "payload_encoding": encoding, "reason": reason})


@dataclass
class Story:
    """What the fixture saw, phase by phase, and the expectation over everything sent."""

    pipeline: MeterPipeline
    manifest: Path
    expected: Expected
    truth: dict[str, Any]
    poison: dict[str, bytes]
    second_run: subprocess.CompletedProcess[str]
    first_pid: int
    lake_rows_at_kill: int
    simulator_running_at_kill: bool
    resumed_output: str
    broker_ports: list[int]
    restarts_output: str
    sink_warned: bool
    interrupted: tuple[int, str]
    idle_output: str
    totals: list[tuple[Any, ...]]
    letters: list[dict[str, Any]]
    seen: dict[str, Any] = field(default_factory=dict)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*METERFLOW, *args], capture_output=True, text=True, env=os.environ.copy(), check=False, timeout=600
    )


def _reading(meter: str, at: datetime, value: float = 1.0) -> bytes:
    stamp = at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return json.dumps(
        {"meter_id": meter, "timestamp": stamp, "measurement_type": "Pulse1", "series": "P1", "unit": "L",
         "value": value}, separators=(",", ":"),
    ).encode()  # fmt: skip


def _send(broker: BrokerInfo, topic: str, records: list[tuple[str, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, max_request_size=4 << 20, acks="all")
    try:
        for key, value in records:
            producer.send(topic, key=key.encode(), value=value, partition=0)
        producer.flush()
    finally:
        producer.close()


def _bad_clocks(sent: Sent) -> list[tuple[str, bytes]]:
    """8 readings stamped 1970 (before any valid reading: no watermark yet), then 200 stamped 2100."""
    out = []
    for n in range(CLOCK_1970):
        value = _reading(f"clock-{n}", datetime(1970, 1, 1, tzinfo=UTC) + timedelta(minutes=15 * n))
        out.append((f"clock-{n}", value))
        sent.add(f"clock-{n}", value, "too_old")
    for n in range(CLOCK_2100):
        value = _reading(f"clock-{n % 20}", datetime(2100, 1, 1, tzinfo=UTC) + timedelta(minutes=15 * n))
        out.append((f"clock-{n % 20}", value))
        sent.add(f"clock-{n % 20}", value, "future_timestamp")
    return out


def _poison(sent: Sent) -> dict[str, bytes]:
    """A megabyte of random bytes (not UTF-8) and a megabyte of ``"``."""
    noise = random.Random(11).randbytes(POISON_BYTES)
    with pytest.raises(UnicodeDecodeError):
        noise.decode()
    quotes = b'"' * POISON_BYTES
    sent.add("poison", noise, "bad_encoding")
    sent.add("poison", quotes, "bad_json")
    return {"bad_encoding": noise, "bad_json": quotes}


def _kill_broker(home: Path) -> int:
    """SIGKILL the embedded broker; its port once it is gone."""
    info = json.loads((home / "kafka" / "broker.json").read_text())
    os.kill(info["pid"], signal.SIGKILL)
    while alive(info["pid"]):
        time.sleep(0.05)
    return int(info["port"])


def _in_total(pipeline: MeterPipeline) -> int:
    found = rows(pipeline, "SELECT in_total FROM ingest_totals")
    return int(found[0][0]) if found else 0


def _combine(out: Path, parts: list[tuple[list[dict[str, Any]], dict[str, Any] | None]]) -> dict[str, Any]:
    """One record file and one truth over everything sent, in sending order."""
    lines: list[str] = []
    malformed: list[dict[str, Any]] = []
    for records, truth in parts:
        lines += [json.dumps(r) for r in records]
        if truth is not None:
            malformed += truth["malformed"]
    (out / "all.jsonl").write_text("\n".join(lines) + "\n")
    return {"malformed": malformed, "records": len(lines)}


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def story(broker: BrokerInfo, meterflow_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    out = tmp_path_factory.mktemp("faults")
    pipeline = unique_pipeline("water-meters", source=ONE_PARTITION, flink=FLINK)
    manifest = write_manifest(pipeline, out)
    topic = names_for(pipeline).topics.readings
    sent = Sent()
    processes: list[Process] = []
    try:
        # 1. a continuous run; a second one is refused
        first = Process("run", "-f", str(manifest))
        processes.append(first)
        first.wait_for(r"streaming job \w+ running")
        second = _cli("run", "-f", str(manifest))

        # 2. bad clocks first, then a paced simulation; kill the run mid-stream
        _send(broker, topic, _bad_clocks(sent))
        clocks = list(sent.lines)
        a = Process(
            "simulate", "-f", str(manifest), "--inject", "--no-progress", "--rate", RATE_A,
            "--truth", str(out / "a.json"), "--record", str(out / "a.jsonl"), *SIM_A,
        )  # fmt: skip
        processes.append(a)
        rows_at_kill = await_event(
            "the first readings in the lake", lambda: lake(pipeline).num_rows, lambda n: n >= KILL_AFTER_ROWS, [first]
        )
        simulator_running = a.running()
        first.kill_group(signal.SIGKILL)
        first.wait()
        assert group_gone(first.popen.pid, timeout=60), "the killed run's JVM is still alive"
        assert a.wait() == 0, a.output

        # 3. poison pills; a new run resumes from the killed run's checkpoint and catches up
        before_poison = len(sent.lines)
        poison = _poison(sent)
        _send(broker, topic, [("poison", value) for value in poison.values()])
        truth_a = json.loads((out / "a.json").read_text())
        so_far = len(clocks) + truth_a["counts"]["total_records"] + len(poison)
        resumed = Process("run", "-f", str(manifest))
        processes.append(resumed)
        resumed.wait_for("Flink log:")
        await_event("every record so far counted", lambda: _in_total(pipeline), lambda n: n == so_far, [resumed])

        # 4. more readings, a broker restart, more readings: no stall
        meterflow("simulate", "-f", str(manifest), "--no-progress", "--truth", str(out / "b1.json"),
                  "--record", str(out / "b1.jsonl"), *SIM_B1)  # fmt: skip
        port = _kill_broker(meterflow_home)
        resumed.wait_for(SINK_WARNS)  # it warns, and lives
        back = EmbeddedBroker(meterflow_home).up()
        meterflow("simulate", "-f", str(manifest), "--no-progress", "--truth", str(out / "b2.json"),
                  "--record", str(out / "b2.jsonl"), *SIM_B2)  # fmt: skip
        b1, b2 = (json.loads((out / f"{n}.json").read_text()) for n in ("b1", "b2"))
        so_far += b1["counts"]["total_records"] + b2["counts"]["total_records"]
        await_event("every record counted after the broker restart", lambda: _in_total(pipeline),
                    lambda n: n == so_far, [resumed])  # fmt: skip

        # 5. the broker goes again; the job fails and restarts; Ctrl-C
        _kill_broker(meterflow_home)
        first_restart = "the job failed and restarts (1;"
        await_event("the job's first restart", lambda: resumed.flat, lambda text: first_restart in text, [resumed])
        restarts_output = resumed.flat
        resumed.kill_group(signal.SIGINT)  # Ctrl-C in a terminal signals the whole foreground group
        code = resumed.wait()
        interrupted = (code, resumed.output)

        # 6. the broker comes back; a run to idle with nothing new to read
        again = EmbeddedBroker(meterflow_home).up()
        idle = meterflow("run", "-f", str(manifest), "--until-idle")

        parts = [
            (clocks, None),
            (_records(out / "a.jsonl"), truth_a),
            (sent.lines[before_poison:], None),
            (_records(out / "b1.jsonl"), b1),
            (_records(out / "b2.jsonl"), b2),
        ]
        combined = _combine(out, parts)
        combined["malformed"] += sent.malformed
        expected = compute(pipeline, out / "all.jsonl", combined)
        yield Story(
            pipeline=pipeline,
            manifest=manifest,
            expected=expected,
            truth={"a": truth_a, "b1": b1, "b2": b2, "sent": sent, "records": combined["records"]},
            poison=poison,
            second_run=second,
            first_pid=first.popen.pid,
            lake_rows_at_kill=rows_at_kill,
            simulator_running_at_kill=simulator_running,
            resumed_output=resumed.flat,
            broker_ports=[port, back.port, again.port],
            restarts_output=restarts_output,
            sink_warned=re.search(SINK_WARNS, resumed.output) is not None,
            interrupted=interrupted,
            idle_output=flatten(idle.stdout),
            totals=rows(pipeline, TOTALS),
            letters=dead_letters(pipeline, broker.bootstrap),
        )
    finally:
        for process in processes:
            process.stop()
        EmbeddedBroker(meterflow_home).up()  # whatever happened, the session's broker runs again


def test_a_second_run_is_refused_naming_the_first(story: Story) -> None:
    refused = story.second_run
    assert (refused.returncode, refused.stdout) == (2, "")
    assert re.fullmatch(
        rf"meterflow: pipeline {story.pipeline.name} is busy: `meterflow run -f {re.escape(str(story.manifest))}` "
        rf"\(pid {story.first_pid}, since \S+\) holds it \({re.escape(str(lock_path(story.pipeline.name)))}\); "
        r"stop that one first \(Ctrl-C\) or wait for it\n",
        refused.stderr,
    ), refused.stderr


def test_the_kill_landed_mid_stream_and_the_next_run_resumed(story: Story) -> None:
    assert story.simulator_running_at_kill, "simulation A had finished before the kill: slow it down"
    assert KILL_AFTER_ROWS <= story.lake_rows_at_kill < story.expected.unique
    assert re.search(r"restored from ?\S*/checkpoints/", story.resumed_output), story.resumed_output


def test_the_broker_came_back_on_its_port_and_the_sink_only_warned(story: Story) -> None:
    first, back, again = story.broker_ports
    assert first == back == again
    assert story.sink_warned
    assert "Traceback" not in story.resumed_output.split("the job failed and restarts")[0]


def test_ctrl_c_in_a_restart_loop_is_one_line(story: Story) -> None:
    code, output = story.interrupted
    assert "the job failed and restarts (1; at most 5 failures in 5 min)" in story.restarts_output
    assert code == 130, output
    assert "Traceback" not in output and "Py4J" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("meterflow:")]
    port = story.broker_ports[0]
    assert len(errors) == 1, output
    assert errors[0].startswith(
        f"meterflow: stopped without a savepoint (Kafka at 127.0.0.1:{port} does not answer); the job was cancelled "
        "and the next run resumes from its last checkpoint; see "
    ), output


def test_an_idle_run_to_idle_restores_and_ends(story: Story) -> None:
    assert re.search(r"restored from ?\S*/checkpoints/", story.idle_output), story.idle_output
    assert "stopping (idle)" in story.idle_output
    assert re.search(r"job \w+ finished after", story.idle_output), story.idle_output


def test_every_record_is_counted_exactly(story: Story) -> None:
    expected = story.expected
    [(in_total, valid, dlq, on_time, late, duplicates)] = story.totals
    assert in_total == expected.records == story.truth["records"]
    assert dlq == sum(expected.dlq_by_reason.values())
    assert valid == in_total - dlq == on_time + late + duplicates
    assert (on_time + late, late, duplicates) == (expected.unique, len(expected.late), expected.duplicates)


def test_each_hostile_kind_is_dead_lettered_with_its_reason(story: Story) -> None:
    letters = story.letters
    assert Counter(d["reason"] for d in letters) == Counter(story.expected.dlq_by_reason)
    reasons = {m["reason"] for m in story.truth["a"]["malformed"]}
    assert {"bad_encoding", "bad_meter_id", "future_timestamp", "too_old"} <= reasons
    assert Counter(story.expected.dlq_by_reason)["future_timestamp"] >= CLOCK_2100
    assert Counter(story.expected.dlq_by_reason)["too_old"] >= CLOCK_1970
    whole = [(d["payload"], d["payload_encoding"], d["reason"]) for d in letters if not d["payload_truncated"]]
    sent = story.truth["a"]["malformed"] + [m for m in story.truth["sent"].malformed if m["key"] != "poison"]
    assert Counter(whole) == Counter((m["payload"], m["payload_encoding"], m["reason"]) for m in sent)


def test_a_poison_pill_becomes_a_bounded_dead_letter(story: Story) -> None:
    pills = {d["reason"]: d for d in story.letters if d["payload_truncated"]}
    assert set(pills) == {"bad_encoding", "bad_json"}
    for reason, original in story.poison.items():
        letter = pills[reason]
        assert letter["payload_bytes"] == POISON_BYTES
        assert letter["payload_sha256"] == hashlib.sha256(original).hexdigest()
        text = letter["payload"]
        kept = base64.b64decode(text) if letter["payload_encoding"] == "base64" else text.encode()
        assert kept == original[:DEAD_LETTER_PAYLOAD]
        assert len(json.dumps(letter)) < 64 * 1024
    assert pills["bad_encoding"]["payload_encoding"] == "base64"
    assert pills["bad_json"]["payload_encoding"] == "utf-8"


def test_the_lake_holds_every_unique_reading_once(story: Story) -> None:
    checks.lake_holds_every_unique_reading_once(story.pipeline, story.expected)


def test_bad_clocks_made_no_one_late_and_no_window(story: Story) -> None:
    """Exactly the injected late readings are late; no window lies outside the simulated days."""
    assert len(story.expected.late) == story.truth["a"]["counts"]["late"] > 0
    [(first, last)] = rows(story.pipeline, "SELECT min(window_start), max(window_end) FROM readings_agg FINAL")
    assert datetime(2024, 5, 1) <= first and last <= datetime(2024, 5, 4)
    checks.every_window_matches(story.pipeline, story.expected, story.pipeline.spec.windows.size_ms / 1000)


def test_exactly_the_injected_alerts(story: Story) -> None:
    checks.exactly_the_injected_alerts(story.pipeline, story.expected, story.truth["a"])


def test_when_the_job_truly_fails_run_says_why_in_one_line(story: Story, broker: BrokerInfo) -> None:
    """The lake table taken away under a running job: every restart fails, the strategy gives up."""
    run = Process("run", "-f", str(story.manifest))
    try:
        run.wait_for("Flink log:")
        catalog = open_catalog(iceberg_location(story.pipeline))
        catalog.drop_table(names_for(story.pipeline).readings_table)
        _send(broker, names_for(story.pipeline).topics.readings,
              [("m-after", _reading("m-after", datetime(2024, 5, 4, tzinfo=UTC)))])  # fmt: skip
        code = run.wait()
    finally:
        run.stop()
    errors = [line for line in run.output.splitlines() if line.startswith("meterflow:")]
    assert code == 2, run.output
    assert len(errors) == 1 and "Traceback" not in run.output, run.output
    assert re.match(r"meterflow: the streaming job failed after [1-9]\d* restart\(s\): .*NoSuchTable", errors[0]), (
        errors
    )
