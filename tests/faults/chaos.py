"""``make chaos``: the long fault campaign against one pipeline on the embedded stack (issue 11).

One water-meters pipeline (one partition, so every figure is exact) in a state folder of its own
(``.meterflow/chaos/home``, wiped first), a continuous ``meterflow run``, and a seeded simulation
of 200,000 valid readings with 10,000 hostile records among them (every malformed kind of the
simulator, the clock and encoding ones included) sent in small paced chunks. Meanwhile:

* the run is killed with SIGKILL (its whole process group: CLI, serving sink, Flink JVM) at
  10 random moments and started again at once;
* the broker is killed with SIGKILL 3 times between chunks (nothing is in flight from the
  producer, so the truth stays exact) and brought back with ``meterflow up``'s code after a few
  seconds.

Progress is the job's committed readings offset (Flink commits it when a checkpoint completes):
a recovery is the time from a kill until that offset moves past where it stood at the kill; one
that takes longer than :data:`STALL_S` while input waits is a stall. At the end the run is
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
"""103 water meters x 10 days: 199,820 normal readings (15-minute pulse and total, daily gauges)."""
HOSTILE_PER_1000 = 50.0
"""Malformed records per 1,000 normal readings: about 10,000."""
JOB_KILLS, BROKER_KILLS = 10, 3
SEND_S = 600.0
"""How long the input is spread over (the kills land within it)."""
CHUNK = 500
STALL_S = 300.0
"""A recovery slower than this, with input waiting, counts as a stall."""
BROKER_DOWN_S = (3.0, 15.0)
SEED = 2026


@dataclass
class Kill:
    """One fault and how long the pipeline took to move on after it."""

    what: str
    at_s: float
    offset_at_kill: int
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
    kills: list[Kill] = field(default_factory=list)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=METERS)
    parser.add_argument("--days", type=int, default=DAYS)
    parser.add_argument("--send-seconds", type=float, default=SEND_S)
    parser.add_argument("--job-kills", type=int, default=JOB_KILLS)
    parser.add_argument("--broker-kills", type=int, default=BROKER_KILLS)
    args = parser.parse_args(argv)

    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # connection errors while the broker is away
    shutil.rmtree(HOME, ignore_errors=True)
    HOME.mkdir(parents=True)
    os.environ["METERFLOW_HOME"] = str(HOME)
    campaign = Campaign(args.meters, args.days, args.send_seconds, args.job_kills, args.broker_kills)
    try:
        report = campaign.run()
    except (SystemExit, Exception) as exc:  # the report says how far it got
        report = campaign.report
        report.detail["error"] = str(exc) or type(exc).__name__
        report.stalls += 1
        campaign.abort()
    (OUT / "report.json").write_text(json.dumps(asdict(report), indent=1, default=str) + "\n")
    table = _table(report)
    (OUT / "report.txt").write_text(table)
    print(table, end="")
    print(f"report: {OUT / 'report.json'}")
    return 1 if report.losses or report.duplicates or report.stalls else 0


class Campaign:
    """The pipeline, its input, the faults, and the final comparison."""

    def __init__(self, meters: int, days: int, send_s: float, job_kills: int, broker_kills: int) -> None:
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
        self.meters, self.days, self.send_s = meters, days, send_s
        rng = random.Random(SEED)
        self.job_kills = sorted(rng.uniform(0.05, 0.95) * send_s for _ in range(job_kills))
        self.broker_kills = sorted(rng.uniform(0.1, 0.9) * send_s for _ in range(broker_kills))
        self.rng = rng
        self._t0 = time.monotonic()
        self.report = Report()
        self.run_process: subprocess.Popen[bytes] | None = None
        self.log = (OUT / "runs.log").open("ab")

    # --- the campaign ----------------------------------------------------------------------------

    def run(self) -> Report:
        from meterflow.spec.topics import topic_plan
        from meterflow.stack.topics import ensure_topics

        started = time.monotonic()
        bootstrap = self.broker.up().bootstrap
        ensure_topics(bootstrap, topic_plan(self.pipeline))
        simulation, records = self._simulate()
        self._start_run()
        self._t0 = time.monotonic()
        self._send(records)
        self._wait_idle(len(records))
        self._stop_run()
        self._final_run()
        self._compare(simulation.truth.to_dict())
        self.report.seconds = round(time.monotonic() - started, 1)
        return self.report

    def _simulate(self) -> tuple[Any, list[Any]]:
        from simulator.engine import Settings, Simulation
        from simulator.injections import parse_rates

        settings = Settings(
            meters=self.meters,
            duration_ms=self.days * 86_400_000,
            start=datetime(2024, 5, 1, tzinfo=UTC),
            seed=SEED,
            inject=True,
            rates=parse_rates([f"malformed={HOSTILE_PER_1000}"]),
        )
        simulation = Simulation(self.pipeline, settings)
        meters = simulation.meter_records()
        records = list(simulation.records())
        self._produce([(key, value) for key, value in meters], topic="meters")
        from simulator.record import recorded_value

        with (OUT / "records.jsonl").open("w") as out:
            for r in records:
                out.write(json.dumps({"key": r.key.decode(), **recorded_value(r.value), "kind": r.kind}) + "\n")
        counts = simulation.truth.counts
        self.report.records = len(records)
        self.report.hostile = counts["malformed"]
        self.report.valid = len(records) - counts["malformed"]
        _say(f"simulated {len(records):,} records ({counts['malformed']:,} hostile); sending over {self.send_s:.0f}s")
        return simulation, records

    def _send(self, records: list[Any]) -> None:
        chunks = [records[i : i + CHUNK] for i in range(0, len(records), CHUNK)]
        every = self.send_s / max(len(chunks), 1)
        job_kills, broker_kills = list(self.job_kills), list(self.broker_kills)
        for n, chunk in enumerate(chunks):
            self._produce([(r.key, r.value) for r in chunk], topic="readings")
            while time.monotonic() < self._t0 + (n + 1) * every:
                if job_kills and self._elapsed() >= job_kills[0]:
                    job_kills.pop(0)
                    self._kill_job()
                time.sleep(0.05)
            if broker_kills and self._elapsed() >= broker_kills[0]:
                broker_kills.pop(0)
                self._kill_broker()
            self._measure_recoveries()
        for _ in job_kills:  # any not reached (a slow producer): now
            self._kill_job()
        for _ in broker_kills:
            self._kill_broker()

    def _elapsed(self) -> float:
        return time.monotonic() - self._t0

    # --- faults ------------------------------------------------------------------------------

    def _kill_job(self) -> None:
        at = self._elapsed()
        if self.run_process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.run_process.pid, signal.SIGKILL)
            self.run_process.wait()
            _group_gone(self.run_process.pid)
        offset = self._committed()  # what the killed job had committed: progress is beyond it
        self.report.job_kills += 1
        self.report.kills.append(Kill("job", round(at, 1), offset))
        _say(f"{at:6.1f}s kill -9 the run (committed offset {offset:,})")
        self._start_run()

    def _kill_broker(self) -> None:
        from meterflow.stack.process import alive

        at = self._elapsed()
        offset = self._committed()
        info = json.loads((HOME / "kafka" / "broker.json").read_text())
        os.kill(info["pid"], signal.SIGKILL)
        while alive(info["pid"]):
            time.sleep(0.05)
        down = self.rng.uniform(*BROKER_DOWN_S)
        _say(f"{at:6.1f}s kill -9 the broker (committed offset {offset:,}); back in {down:.0f}s")
        time.sleep(down)
        back = self.broker.up()
        if back.port != info["port"]:
            raise SystemExit(f"the broker came back on port {back.port}, not {info['port']}")
        self.report.broker_kills += 1
        self.report.kills.append(Kill("broker", round(at, 1), offset))
        if self.run_process is not None and self.run_process.poll() is not None:
            _say(f"the run ended by itself (exit {self.run_process.returncode}); starting it again")
            self._start_run()

    def _measure_recoveries(self) -> None:
        """Note the recovery of every kill whose offset has moved on since; stalls."""
        open_kills = [k for k in self.report.kills if k.recovered_after_s is None and not k.stalled]
        if not open_kills:
            return
        offset = self._committed()
        now = self._elapsed()
        for kill in open_kills:
            if offset > kill.offset_at_kill:
                kill.recovered_after_s = round(now - kill.at_s, 1)
            elif now - kill.at_s > STALL_S:
                kill.stalled = True
        if self.run_process is not None and self.run_process.poll() is not None:
            _say(f"the run ended by itself (exit {self.run_process.returncode}); starting it again")
            self._start_run()

    # --- the run -----------------------------------------------------------------------------

    def _start_run(self) -> None:
        self.log.write(f"\n===== meterflow run at {datetime.now(UTC).isoformat()}\n".encode())
        self.log.flush()
        self.run_process = subprocess.Popen(
            [sys.executable, "-m", "meterflow.cli.app", "run", "-f", str(self.manifest)],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True, env=os.environ.copy(),
        )  # fmt: skip

    def _wait_idle(self, total: int) -> None:
        """Until the job has committed every record (recoveries measured meanwhile); a stall if it
        stops moving for :data:`STALL_S`."""
        last, moved = -1, time.monotonic()
        while True:
            offset = self._committed()
            self._measure_recoveries()
            if offset >= total:
                return
            if offset > last:
                last, moved = offset, time.monotonic()
            elif time.monotonic() - moved > STALL_S:
                self.report.stalls += 1
                _say(f"stalled at offset {offset:,} of {total:,}")
                return
            time.sleep(1.0)

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
            [sys.executable, "-m", "meterflow.cli.app", "run", "-f", str(self.manifest), "--until-idle"],
            capture_output=True, text=True, env=os.environ.copy(), check=False,
        )  # fmt: skip
        self.log.write(result.stdout.encode() + result.stderr.encode())
        if result.returncode != 0:
            raise SystemExit(f"the final run --until-idle failed: {result.stderr.strip()}")

    # --- Kafka ---------------------------------------------------------------------------------

    def _produce(self, items: list[tuple[bytes, bytes]], topic: str) -> None:
        from kafka import KafkaProducer

        from meterflow.spec import names_for

        name = getattr(names_for(self.pipeline).topics, topic)
        bootstrap = self.broker.running()
        assert bootstrap is not None, "the broker is down while producing"
        producer = getattr(self, "_producer", None)
        if producer is None or getattr(self, "_producer_for", None) != bootstrap.pid:
            if producer is not None:
                producer.close(timeout=5)
            producer = KafkaProducer(
                bootstrap_servers=bootstrap.bootstrap, acks="all", linger_ms=20, max_request_size=4 << 20
            )
            self._producer, self._producer_for = producer, bootstrap.pid
        for key, value in items:
            producer.send(name, key=key, value=value, partition=0 if topic == "readings" else None)
        producer.flush()

    def _committed(self) -> int:
        """The job's committed offset of the readings topic (0 while the broker cannot say)."""
        from kafka import KafkaAdminClient, TopicPartition
        from kafka.errors import KafkaError

        from meterflow.spec import names_for

        names = names_for(self.pipeline)
        info = self.broker.running()
        if info is None:
            return 0
        try:
            admin = KafkaAdminClient(bootstrap_servers=info.bootstrap, request_timeout_ms=5000)
        except (KafkaError, OSError):
            return 0
        try:
            found = admin.list_group_offsets({names.consumer_group: [TopicPartition(names.topics.readings, 0)]})
            offsets = found.get(names.consumer_group, {})
            return max((o.offset for o in offsets.values()), default=0)
        except (KafkaError, OSError):
            return 0
        finally:
            admin.close()

    # --- the comparison ----------------------------------------------------------------------

    def _compare(self, truth: dict[str, Any]) -> None:
        from tests.streaming.expected import compute
        from tests.streaming.harness import dead_letters, lake, rows

        expected = compute(self.pipeline, OUT / "records.jsonl", truth)
        bootstrap = self.broker.running()
        assert bootstrap is not None
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
        letters = Counter(d["reason"] for d in dead_letters(self.pipeline, bootstrap.bootstrap))
        [(in_total, valid, dlq, on_time, late, duplicates)] = rows(
            self.pipeline, "SELECT in_total, valid, dlq, on_time, late, duplicates FROM ingest_totals"
        )
        windows = rows(self.pipeline, "SELECT count(), sum(readings) FROM readings_agg FINAL")[0]
        alerts = rows(self.pipeline, "SELECT count() FROM alerts FINAL")[0][0]
        want_letters = Counter(expected.dlq_by_reason)
        lake_lost = max(expected.unique - len(unique_keys), 0)
        lake_twice = len(keys) - len(unique_keys)
        letters_lost = sum((want_letters - letters).values())
        letters_twice = sum((letters - want_letters).values())
        count_short = max(expected.records - in_total, 0)
        count_over = max(in_total - expected.records, 0)
        want_windows = (len(expected.windows), sum(w.readings for w in expected.windows.values()))
        self.report.losses = lake_lost + letters_lost + count_short
        self.report.duplicates = lake_twice + letters_twice + count_over
        self.report.stalls += sum(k.stalled for k in self.report.kills)
        recoveries = [k.recovered_after_s for k in self.report.kills if k.recovered_after_s is not None]
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
            "windows_exact": tuple(windows) == want_windows,
            "alerts_exact": alerts == len(expected.alerts),
            "late_exact": late == len(expected.late),
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
    longest = f"{report.longest_recovery_s:.1f}"
    rows = [
        ("records", f"{report.records:,} ({report.valid:,} valid, {report.hostile:,} hostile)"),
        ("kills", f"{report.job_kills} x job (kill -9), {report.broker_kills} x broker (kill -9)"),
        ("losses", str(report.losses)),
        ("duplicates", str(report.duplicates)),
        ("stalls", str(report.stalls)),
        ("longest recovery", f"{longest} s"),
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
    for k in report.kills:
        recovered = "stalled" if k.stalled else f"{k.recovered_after_s}"
        lines.append(f"{k.what:<8} {k.at_s:>8.1f} {recovered:>20}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
