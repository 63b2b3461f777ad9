"""``make chaos``: the long fault campaign against one pipeline on the embedded stack (issue 11).

One water-meters pipeline (one partition, so every figure is exact) in a state folder of its own
(``.meterflow/chaos/home``, wiped first), a continuous ``meterflow run``, and a seeded simulation
of 200,000 valid readings with 10,000 hostile records among them (every malformed kind of the
simulator, the clock and encoding ones included), sent by a paced producer thread. Meanwhile 13
faults, in a seeded random order, each at a random moment 5-30 s after the pipeline recovered
from the one before:

* 10 x SIGKILL of the run's whole process group (CLI, serving sink, Flink JVM), started again at
  once;
* 3 x SIGKILL of the broker, brought back with ``meterflow up``'s code after 3-15 s (the
  producer pauses around it, with nothing in flight, so the truth stays exact).

Progress is the job's committed readings offset (Flink commits it when a checkpoint completes):
a fault's recovery is the time until that offset moves past where it stood; a *stall* is
:data:`STALL_S` without progress while input waits. The producer holds its last records back,
sending them slowly, until the faults are over, so input always waits. At the end the run is
stopped with Ctrl-C and a ``--until-idle`` run drains every window; then the lake, the dead
letters and ClickHouse are compared with the simulator's truth, computed independently
(:mod:`tests.streaming.expected`). Losses are expected readings, dead letters or counts missing;
duplicates are the same found twice.

The report goes to ``.meterflow/chaos/report.json`` and ``report.txt`` (a short table); the exit
code is 1 when anything was lost, duplicated or stalled.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / ".meterflow" / "chaos"
HOME = OUT / "home"

METERS, DAYS = 103, 10
"""103 water meters x 10 days: about 200,000 valid readings (15-minute pulse and total, daily gauges)."""
HOSTILE_PER_1000 = 50.0
"""Malformed records per 1,000 normal readings: about 10,000."""
JOB_KILLS, BROKER_KILLS = 10, 3
GAP_S = (5.0, 30.0)
"""A fault comes this long after the pipeline recovered from the one before."""
PACE_S = 900.0
"""The first :data:`MAIN_SHARE` of the input is spread over this long; the rest trickles until the faults end."""
MAIN_SHARE = 0.8
TRICKLE_EVERY_S = 10.0
CHUNK = 500
STALL_S = 300.0
"""No progress for this long while input waits is a stall."""
BROKER_DOWN_S = (3.0, 15.0)
SEED = 2026


@dataclass
class Fault:
    """One fault and how long the pipeline took to move on after it."""

    what: str
    at_s: float
    offset_at_fault: int
    recovered_after_s: float | None = None
    stalled: bool = False


@dataclass
class Report:
    records: int = 0
    valid: int = 0
    hostile: int = 0
    job_kills: int = 0
    broker_kills: int = 0
    losses: int = 0
    duplicates: int = 0
    stalls: int = 0
    longest_recovery_s: float = 0.0
    seconds: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=METERS)
    parser.add_argument("--days", type=int, default=DAYS)
    parser.add_argument("--pace-seconds", type=float, default=PACE_S)
    parser.add_argument("--job-kills", type=int, default=JOB_KILLS)
    parser.add_argument("--broker-kills", type=int, default=BROKER_KILLS)
    args = parser.parse_args(argv)

    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # connection errors while the broker is away
    shutil.rmtree(HOME, ignore_errors=True)
    HOME.mkdir(parents=True)
    os.environ["METERFLOW_HOME"] = str(HOME)
    campaign = Campaign(args.meters, args.days, args.pace_seconds, args.job_kills, args.broker_kills)
    try:
        report = campaign.run()
    except (SystemExit, Exception) as exc:  # the report says how far it got
        report = campaign.report
        report.detail["error"] = str(exc) or type(exc).__name__
        report.stalls += 1
        campaign.abort()
    finally:
        campaign.broker.down()  # the state stays in HOME for a look (meterflow sql needs no broker)
    (OUT / "report.json").write_text(json.dumps(asdict(report), indent=1, default=str) + "\n")
    table = _table(report)
    (OUT / "report.txt").write_text(table)
    print(table, end="")
    print(f"report: {OUT / 'report.json'}")
    return 1 if report.losses or report.duplicates or report.stalls else 0


class Sender(threading.Thread):
    """Sends the readings in chunks: paced, pausable around a broker kill, the tail held back."""

    def __init__(self, campaign: Campaign, records: list[tuple[bytes, bytes]], pace_s: float) -> None:
        super().__init__(name="chaos-sender", daemon=True)
        self.campaign = campaign
        self.chunks = [records[i : i + CHUNK] for i in range(0, len(records), CHUNK)]
        self.main = int(len(self.chunks) * MAIN_SHARE)
        self.every = pace_s / max(self.main, 1)
        self.sent = 0
        self.released = threading.Event()
        self._go = threading.Event()
        self._go.set()
        self._idle = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            started = time.monotonic()
            for n, chunk in enumerate(self.chunks):
                if n < self.main:
                    due = started + n * self.every
                else:  # the tail: slowly until the faults are over, then at once
                    due = time.monotonic() + (0 if self.released.is_set() else TRICKLE_EVERY_S)
                while time.monotonic() < due and not (n >= self.main and self.released.is_set()):
                    time.sleep(0.05)
                self._idle.set()
                self._go.wait()
                self._idle.clear()
                self.campaign.produce(chunk, "readings")
                self.sent += len(chunk)
        except BaseException as exc:  # the campaign reports it
            self.error = exc
        finally:
            self._idle.set()

    def pause(self) -> None:
        """Stop between chunks (every record sent is acknowledged) until :meth:`resume`."""
        self._go.clear()
        self._idle.wait()

    def resume(self) -> None:
        self._go.set()


class Campaign:
    """The pipeline, its input, the faults, and the final comparison."""

    def __init__(self, meters: int, days: int, pace_s: float, job_kills: int, broker_kills: int) -> None:
        import yaml

        from meterflow.spec import parse_manifest
        from meterflow.stack.broker import EmbeddedBroker

        document = yaml.safe_load((REPO / "examples" / "water-meters.yaml").read_text())
        document["metadata"]["name"] = "chaos"
        document["spec"]["source"]["partitions"] = 1
        document["spec"]["flink"] = document["spec"].get("flink", {}) | {"parallelism": 1, "checkpointInterval": "2s"}
        self.pipeline = parse_manifest(document)
        self.manifest = OUT / "chaos.yaml"
        self.manifest.write_text(yaml.safe_dump(self.pipeline.to_manifest(), sort_keys=False))
        self.broker = EmbeddedBroker(HOME)
        self.meters, self.days, self.pace_s = meters, days, pace_s
        self.rng = random.Random(SEED)
        self.faults = ["job"] * job_kills + ["broker"] * broker_kills
        self.rng.shuffle(self.faults)
        self.report = Report()
        self.run_process: subprocess.Popen[bytes] | None = None
        self.log = (OUT / "runs.log").open("ab")
        self._t0 = time.monotonic()
        self._producer: Any = None
        self._producer_pid = 0

    # --- the campaign ----------------------------------------------------------------------------

    def run(self) -> Report:
        from meterflow.spec.topics import topic_plan
        from meterflow.stack.topics import ensure_topics

        bootstrap = self.broker.up().bootstrap
        ensure_topics(bootstrap, topic_plan(self.pipeline))
        truth, records = self._simulate()
        self._start_run()
        self._t0 = time.monotonic()
        sender = Sender(self, records, self.pace_s)
        sender.start()
        for what in self.faults:
            time.sleep(self.rng.uniform(*GAP_S))
            fault = self._kill_job() if what == "job" else self._kill_broker(sender)
            self._await_recovery(fault, sender)
            if sender.error is not None:
                raise SystemExit(f"the producer failed: {sender.error}")
        sender.released.set()
        sender.join()
        if sender.error is not None:
            raise SystemExit(f"the producer failed: {sender.error}")
        self._wait_caught_up(len(records))
        self._stop_run()
        self._final_run()
        self._compare(truth)
        self.report.seconds = round(time.monotonic() - self._t0, 1)
        return self.report

    def _simulate(self) -> tuple[dict[str, Any], list[tuple[bytes, bytes]]]:
        from simulator.engine import Settings, Simulation
        from simulator.injections import parse_rates
        from simulator.record import recorded_value

        settings = Settings(
            meters=self.meters,
            duration_ms=self.days * 86_400_000,
            start=datetime(2024, 5, 1, tzinfo=UTC),
            seed=SEED,
            inject=True,
            rates=parse_rates([f"malformed={HOSTILE_PER_1000}"]),
        )
        simulation = Simulation(self.pipeline, settings)
        self.produce(simulation.meter_records(), "meters")
        records = list(simulation.records())
        with (OUT / "records.jsonl").open("w") as out:
            for r in records:
                out.write(json.dumps({"key": r.key.decode(), **recorded_value(r.value), "kind": r.kind}) + "\n")
        counts = simulation.truth.counts
        self.report.records = len(records)
        self.report.hostile = counts["malformed"]
        self.report.valid = len(records) - counts["malformed"]
        _say(f"simulated {len(records):,} records ({counts['malformed']:,} hostile); faults: {', '.join(self.faults)}")
        return simulation.truth.to_dict(), [(r.key, r.value) for r in records]

    def _elapsed(self) -> float:
        return time.monotonic() - self._t0

    # --- faults --------------------------------------------------------------------------------

    def _kill_job(self) -> Fault:
        at = self._elapsed()
        if self.run_process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.run_process.pid, signal.SIGKILL)
            self.run_process.wait()
            _group_gone(self.run_process.pid)
        offset = self._committed()  # what the killed job had committed: progress is beyond it
        fault = Fault("job", round(at, 1), offset)
        self.report.job_kills += 1
        self.report.faults.append(fault)
        _say(f"{at:7.1f}s kill -9 the run (committed offset {offset:,})")
        self._start_run()
        return fault

    def _kill_broker(self, sender: Sender) -> Fault:
        from meterflow.stack.process import alive

        sender.pause()
        at = self._elapsed()
        offset = self._committed()
        info = json.loads((HOME / "kafka" / "broker.json").read_text())
        os.kill(info["pid"], signal.SIGKILL)
        while alive(info["pid"]):
            time.sleep(0.05)
        down = self.rng.uniform(*BROKER_DOWN_S)
        _say(f"{at:7.1f}s kill -9 the broker (committed offset {offset:,}); back in {down:.0f}s")
        time.sleep(down)
        back = self.broker.up()
        if back.port != info["port"]:
            raise SystemExit(f"the broker came back on port {back.port}, not {info['port']}")
        sender.resume()
        fault = Fault("broker", round(at, 1), offset)
        self.report.broker_kills += 1
        self.report.faults.append(fault)
        return fault

    def _await_recovery(self, fault: Fault, sender: Sender) -> None:
        """Until the committed offset moves past the fault's; a stall after :data:`STALL_S`
        without progress while input waited (a run that ended by itself is started again)."""
        waiting_since: float | None = None
        while True:
            offset = self._committed()
            if offset > fault.offset_at_fault:
                fault.recovered_after_s = round(self._elapsed() - fault.at_s, 1)
                _say(f"{self._elapsed():7.1f}s moving again ({fault.recovered_after_s}s after the {fault.what} kill)")
                return
            if self.run_process is not None and self.run_process.poll() is not None:
                _say(f"the run ended by itself (exit {self.run_process.returncode}); starting it again")
                self._start_run()
            if not sender.is_alive() and sender.sent <= fault.offset_at_fault:
                _say(f"no input left to show progress after the {fault.what} kill at {fault.at_s}s")
                return
            if sender.sent > max(fault.offset_at_fault, 0):
                waiting_since = waiting_since or time.monotonic()
                if time.monotonic() - waiting_since > STALL_S:
                    fault.stalled = True
                    _say(f"stalled: no progress for {STALL_S:.0f}s after the {fault.what} kill at {fault.at_s}s")
                    return
            time.sleep(0.5)

    def _wait_caught_up(self, total: int) -> None:
        """Until the job has committed every record; a stall when it stops moving for :data:`STALL_S`."""
        last, moved = -1, time.monotonic()
        while (offset := self._committed()) < total:
            if offset > last:
                last, moved = offset, time.monotonic()
            elif time.monotonic() - moved > STALL_S:
                self.report.stalls += 1
                _say(f"stalled at offset {offset:,} of {total:,}")
                return
            if self.run_process is not None and self.run_process.poll() is not None:
                _say(f"the run ended by itself (exit {self.run_process.returncode}); starting it again")
                self._start_run()
            time.sleep(1.0)
        _say(f"{self._elapsed():7.1f}s every record committed")

    # --- the run -----------------------------------------------------------------------------

    def _start_run(self) -> None:
        self.log.write(f"\n===== meterflow run at {datetime.now(UTC).isoformat()}\n".encode())
        self.log.flush()
        self.run_process = subprocess.Popen(
            [sys.executable, "-m", "meterflow_cli.app", "run", "-f", str(self.manifest)],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True, env=os.environ.copy(),
        )  # fmt: skip

    def abort(self) -> None:
        """Stop what is still running (after an error)."""
        if self.run_process is not None and self.run_process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.run_process.pid, signal.SIGKILL)
            self.run_process.wait()

    def _stop_run(self) -> None:
        if self.run_process is None:
            return
        os.killpg(self.run_process.pid, signal.SIGINT)
        code = self.run_process.wait()
        _say(f"the continuous run stopped with Ctrl-C (exit {code})")
        self.run_process = None

    def _final_run(self) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "meterflow_cli.app", "run", "-f", str(self.manifest), "--until-idle"],
            capture_output=True, text=True, env=os.environ.copy(), check=False,
        )  # fmt: skip
        self.log.write(result.stdout.encode() + result.stderr.encode())
        if result.returncode != 0:
            raise SystemExit(f"the final run --until-idle failed: {result.stderr.strip()}")
        _say("the final run --until-idle drained every window")

    # --- Kafka ---------------------------------------------------------------------------------

    def produce(self, items: list[tuple[bytes, bytes]], topic: str) -> None:
        """Send and flush (acks=all); a producer per broker process."""
        from kafka import KafkaProducer

        from meterflow.spec import names_for

        name = getattr(names_for(self.pipeline).topics, topic)
        info = self.broker.running()
        if info is None:
            raise SystemExit("the broker is down while producing")
        if self._producer is None or self._producer_pid != info.pid:
            if self._producer is not None:
                self._producer.close(timeout=5)
            self._producer = KafkaProducer(
                bootstrap_servers=info.bootstrap, acks="all", linger_ms=20, max_request_size=4 << 20
            )
            self._producer_pid = info.pid
        for key, value in items:
            self._producer.send(name, key=key, value=value, partition=0 if topic == "readings" else None)
        self._producer.flush()

    def _committed(self) -> int:
        """The job's committed offset of the readings topic (-1 while it has none or the broker cannot say)."""
        from kafka import KafkaAdminClient, TopicPartition
        from kafka.errors import KafkaError

        from meterflow.spec import names_for

        names = names_for(self.pipeline)
        info = self.broker.running()
        if info is None:
            return -1
        try:
            admin = KafkaAdminClient(bootstrap_servers=info.bootstrap, request_timeout_ms=5000)
        except (KafkaError, OSError):
            return -1
        try:
            found = admin.list_group_offsets({names.consumer_group: [TopicPartition(names.topics.readings, 0)]})
            return max((o.offset for o in found.get(names.consumer_group, {}).values()), default=-1)
        except (KafkaError, OSError):
            return -1
        finally:
            admin.close()

    # --- the comparison ----------------------------------------------------------------------

    def _compare(self, truth: dict[str, Any]) -> None:
        from tests.streaming.expected import compute
        from tests.streaming.harness import dead_letters, lake, rows

        expected = compute(self.pipeline, OUT / "records.jsonl", truth)
        info = self.broker.running()
        assert info is not None
        table = lake(self.pipeline)
        keys = list(
            zip(
                table["meter_id"].to_pylist(),
                table["measurement_type"].to_pylist(),
                table["series"].to_pylist(),
                table["event_time"].to_pylist(),
                strict=True,
            )
        )
        unique_keys = set(keys)
        letters = Counter(d["reason"] for d in dead_letters(self.pipeline, info.bootstrap))
        [(in_total, valid, dlq, on_time, late, duplicates)] = rows(
            self.pipeline, "SELECT in_total, valid, dlq, on_time, late, duplicates FROM ingest_totals"
        )
        windows = tuple(rows(self.pipeline, "SELECT count(), sum(readings) FROM readings_agg FINAL")[0])
        alerts = rows(self.pipeline, "SELECT count() FROM alerts FINAL")[0][0]
        want_letters = Counter(expected.dlq_by_reason)
        want_windows = (len(expected.windows), sum(w.readings for w in expected.windows.values()))
        self.report.losses = (
            max(expected.unique - len(unique_keys), 0)
            + sum((want_letters - letters).values())
            + max(expected.records - in_total, 0)
        )
        self.report.duplicates = (
            len(keys) - len(unique_keys) + sum((letters - want_letters).values()) + max(in_total - expected.records, 0)
        )
        self.report.stalls += sum(f.stalled for f in self.report.faults)
        recoveries = [f.recovered_after_s for f in self.report.faults if f.recovered_after_s is not None]
        self.report.longest_recovery_s = max(recoveries, default=0.0)
        self.report.detail = {
            "lake": {"rows": len(keys), "unique": len(unique_keys), "expected": expected.unique},
            "dead_letters": {"found": dict(letters), "expected": dict(want_letters)},
            "ingest_totals": {
                "found": {"in": in_total, "valid": valid, "dlq": dlq, "on_time": on_time, "late": late},
                "found_duplicates": duplicates,
                "expected": {"in": expected.records, "dlq": sum(want_letters.values()), "late": len(expected.late)},
                "expected_unique": expected.unique,
                "expected_duplicates": expected.duplicates,
            },
            "windows": {"found": list(windows), "expected": list(want_windows)},
            "alerts": {"found": alerts, "expected": len(expected.alerts)},
            "windows_exact": windows == want_windows,
            "alerts_exact": alerts == len(expected.alerts),
            "late_exact": late == len(expected.late) and duplicates == expected.duplicates,
        }


def _group_gone(pgid: int) -> None:
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)


def _say(text: str) -> None:
    print(f"chaos: {text}", flush=True)


def _table(report: Report) -> str:
    rows = [
        ("records", f"{report.records:,} ({report.valid:,} valid, {report.hostile:,} hostile)"),
        ("kills", f"{report.job_kills} x job (kill -9), {report.broker_kills} x broker (kill -9)"),
        ("losses", str(report.losses)),
        ("duplicates", str(report.duplicates)),
        ("stalls", str(report.stalls)),
        ("longest recovery", f"{report.longest_recovery_s:.1f} s"),
        ("windows exact", str(report.detail.get("windows_exact"))),
        ("alerts exact", str(report.detail.get("alerts_exact"))),
        ("late exact", str(report.detail.get("late_exact"))),
        ("campaign", f"{report.seconds:.0f} s"),
    ]
    if "error" in report.detail:
        rows.append(("error", str(report.detail["error"])))
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    lines += ["", f"{'fault':<8} {'at (s)':>8} {'recovered after (s)':>20}"]
    for f in report.faults:
        recovered = "stalled" if f.stalled else f"{f.recovered_after_s}"
        lines.append(f"{f.what:<8} {f.at_s:>8.1f} {recovered:>20}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
