"""``python -m bench.run [--smoke]``: every measurement of issue 7 in one run, on one broker.

Phases (each recorded even when it fails): load (producer rate), ceiling (ConsumerPerformance),
streaming (meterflow to idle), batch, serving, anomaly scoring, Spark peer (seed logic), equal-work Spark peer, naive
loop, alert latency. Prints a
table and writes ``bench/results/<UTC time>.json`` (a full run also ``latest.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from bench.anomalies import anomalies_phase
from bench.batch import batch_phase
from bench.ceiling import ceiling_phase
from bench.common import Phase, machine, run_phase, versions
from bench.latency import latency_phase
from bench.load import load_phase
from bench.naive import naive_phase
from bench.report import print_report
from bench.serving import DASHBOARD_GOAL, serving_phase
from bench.spark_equal import spark_equal_phase
from bench.spark_peer import spark_phase
from bench.stack import BenchStack
from bench.streaming import streaming_phase

RESULTS = Path(__file__).resolve().parent / "results"
FIRST_DAY = date(2024, 5, 1)


@dataclass(frozen=True)
class Scale:
    """The parameters of a run."""

    meters: int
    days: int
    seed: int
    latency_rate: float
    latency_warmup_s: float
    latency_measure_s: float
    trigger_every_s: float
    naive_limit: int
    naive_max_s: float
    spark_max_offsets: int
    spark_equal_budget_s: float
    serving_repeats: int
    job_timeout_s: float


FULL = Scale(
    meters=2817,
    days=10,
    seed=7,
    latency_rate=10_000,
    # Both JVMs still compile hot code a minute after the job starts (JFR: the C2 compiler threads
    # used 10-20 % of the machine 60-100 s in), and readings sent meanwhile queue.
    latency_warmup_s=60,
    latency_measure_s=60,
    trigger_every_s=0.25,
    naive_limit=2_000_000,
    naive_max_s=180,
    spark_max_offsets=500_000,
    spark_equal_budget_s=600,
    serving_repeats=50,
    job_timeout_s=3600,
)
SMOKE = Scale(
    meters=50,
    days=1,
    seed=7,
    latency_rate=2_000,
    latency_warmup_s=20,
    latency_measure_s=20,
    trigger_every_s=0.5,
    naive_limit=1_000_000,
    naive_max_s=60,
    spark_max_offsets=100_000,
    spark_equal_budget_s=0,
    serving_repeats=20,
    job_timeout_s=900,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="50 meters x 1 day: a few minutes")
    parser.add_argument("--home", type=Path, help="state folder (default: a new temp folder, deleted after)")
    parser.add_argument("--keep", action="store_true", help="keep the state folder")
    parser.add_argument("--only", help="comma-separated phases to run (load always runs)")
    parser.add_argument("--profile", action="store_true", help="profile the streaming phase (JFR + py-spy)")
    parser.add_argument("--meters", type=int, help="override the scale's meter count (an experiment, not a full run)")
    parser.add_argument("--days", type=int, help="override the scale's days (an experiment, not a full run)")
    parser.add_argument(
        "--threshold-rules-only",
        action="store_true",
        help="drop the manifest's stateful rules (what they cost; an experiment, not a full run)",
    )
    args = parser.parse_args(argv)
    scale = SMOKE if args.smoke else FULL
    custom: dict[str, Any] = {k: v for k, v in (("meters", args.meters), ("days", args.days)) if v is not None}
    if args.threshold_rules_only:
        custom["rules"] = "threshold only"
    if custom:
        scale = replace(scale, **{k: v for k, v in custom.items() if k != "rules"})
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    home = args.home or Path(tempfile.gettempdir()) / f"meterflow-bench-{stamp}"
    only = set(args.only.split(",")) if args.only else None
    result: dict[str, Any] = {
        "started": stamp,
        "mode": "smoke" if args.smoke else "custom" if custom else "full",
        "parameters": asdict(scale) | {"home": str(home), "first_day": str(FIRST_DAY)} | custom,
        "machine": machine(),
        "versions": versions(),
        "git": _git(),
        "phases": {},
    }
    phases: dict[str, Phase] = {}
    stack = BenchStack(home)
    started = time.monotonic()
    try:
        stack.up()
        _run(stack, scale, phases, only, args.profile, args.threshold_rules_only)
    finally:
        stack.down()
        result["versions"]["pyspark"] = phases.get("spark", Phase("spark")).figures.get("spark", "not run")
        equal = phases.get("spark_equal", Phase("spark_equal")).figures
        result["versions"]["pyspark_equal_peer"] = equal.get("spark", "not run")
        result["phases"] = {name: asdict(p) for name, p in phases.items()}
        result["summary"] = summary(phases)
        result["seconds"] = round(time.monotonic() - started, 1)
        result["machine"]["load_at_end"] = os.getloadavg()
        path = write(result, latest=not args.smoke and only is None and not custom)
        print_report(result)
        print(f"[bench] wrote {path}")
        failed = any(p.status != "ok" for p in phases.values())
        if args.keep or (failed and args.home is None):
            print(f"[bench] state kept in {home}")
        else:
            stack.remove()
    return 0


def _run(
    stack: BenchStack,
    scale: Scale,
    phases: dict[str, Phase],
    only: set[str] | None,
    profile: bool,
    threshold_rules_only: bool = False,
) -> None:
    overrides = {"rules": stack.threshold_rules()} if threshold_rules_only else None
    main_pipeline = stack.pipeline("water-meters", overrides)
    topic = main_pipeline.names.topics.readings
    loaded: dict[str, int] = {"records": 0}
    kinds: dict[str, int] = {}

    def load(p: Phase) -> None:
        data = load_phase(p, stack.bootstrap, main_pipeline, scale.meters, scale.days, scale.seed)
        loaded["records"] = data.records
        kinds.update(data.counts)

    def wanted(name: str) -> bool:
        return only is None or name in only

    phases["load"] = run_phase("load", load)
    n = loaded["records"]
    steps = [
        ("ceiling", lambda p: ceiling_phase(p, stack.bootstrap, topic, n)),
        ("streaming", lambda p: streaming_phase(p, stack, main_pipeline, scale.job_timeout_s, profile)),
        ("batch", lambda p: batch_phase(p, stack, main_pipeline, FIRST_DAY, scale.days)),
        ("serving", lambda p: serving_phase(p, main_pipeline, FIRST_DAY, scale.days, scale.serving_repeats)),
        ("anomalies", lambda p: anomalies_phase(p, main_pipeline, FIRST_DAY, scale.days)),
        ("spark", lambda p: spark_phase(p, stack, topic, n, scale.spark_max_offsets, scale.job_timeout_s)),
        (
            "spark_equal",
            lambda p: spark_equal_phase(
                p,
                stack,
                main_pipeline,
                n,
                kinds,
                scale.spark_max_offsets,
                scale.job_timeout_s,
                scale.spark_equal_budget_s,
            ),
        ),
        (
            "naive",
            lambda p: naive_phase(
                p,
                stack.home / "naive",
                stack.bootstrap,
                topic,
                min(n, scale.naive_limit),
                scale.naive_max_s,
                stack.broker_pid,
            ),
        ),
        (
            "latency",
            lambda p: latency_phase(
                p,
                stack,
                stack.pipeline("water-meters-latency"),
                scale.meters,
                latency_rate(scale, phases.get("streaming"), p),
                scale.latency_warmup_s,
                scale.latency_measure_s,
                scale.trigger_every_s,
            ),
        ),
    ]
    for name, body in steps:
        if wanted(name):
            phases[name] = run_phase(name, body)


def latency_rate(scale: Scale, streaming: Phase | None, phase: Phase) -> float:
    """The issue's rate, unless this run measured the job sustaining less: then half of what it sustained
    (a rate above the job's capacity measures a growing backlog, not latency)."""
    sustained = streaming.figures.get("sustained_readings_per_s") if streaming else None
    if sustained and sustained < scale.latency_rate * 1.25:
        rate = max(1000.0, float(round(sustained * 0.5, -3)))
        phase.notes.append(
            f"rate lowered from {scale.latency_rate:,.0f}/s to {rate:,.0f}/s: half of the "
            f"{sustained:,}/s the job sustained in the streaming phase"
        )
        return rate
    return scale.latency_rate


def summary(phases: dict[str, Phase]) -> dict[str, Any]:
    """The headline figures and the ratios the issue asks for."""

    def fig(phase: str, key: str) -> Any:
        p = phases.get(phase)
        return p.figures.get(key) if p is not None and p.status == "ok" else None

    ceiling = fig("ceiling", "records_per_s")
    sustained = fig("streaming", "sustained_readings_per_s")
    end_to_end = fig("streaming", "end_to_end_readings_per_s")
    spark = fig("spark", "readings_per_s")
    spark_e2e = fig("spark", "end_to_end_readings_per_s")
    equal = fig("spark_equal", "readings_per_s")
    equal_e2e = fig("spark_equal", "end_to_end_readings_per_s")

    def ratio(a: Any, b: Any) -> float | None:
        return round(float(a) / float(b), 3) if a and b else None

    def per_cpu_s(phase: str, readings_key: str = "readings") -> float | None:
        p = phases.get(phase)
        if p is None or p.status != "ok" or not p.processes:
            return None
        cpu = sum(x["cpu_s"] for x in p.processes)
        return float(round(float(p.figures.get(readings_key, 0)) / cpu)) if cpu else None

    serving = phases.get("serving")
    return {
        "producer_readings_per_s": fig("load", "produce_records_per_s"),
        "ceiling_records_per_s": ceiling,
        "meterflow_sustained_readings_per_s": sustained,
        "meterflow_end_to_end_readings_per_s": end_to_end,
        "meterflow_sustained_vs_ceiling": ratio(sustained, ceiling),
        "meterflow_end_to_end_vs_ceiling": ratio(end_to_end, ceiling),
        "spark_readings_per_s": spark,
        "spark_end_to_end_readings_per_s": spark_e2e,
        "meterflow_vs_spark_sustained": ratio(sustained, spark),
        "meterflow_vs_spark_end_to_end": ratio(end_to_end, spark_e2e),
        "spark_equal_readings_per_s": equal,
        "spark_equal_end_to_end_readings_per_s": equal_e2e,
        "meterflow_vs_spark_equal_sustained": ratio(sustained, equal),
        "meterflow_vs_spark_equal_end_to_end": ratio(end_to_end, equal_e2e),
        "meterflow_vs_spark_equal_per_cpu_second": ratio(per_cpu_s("streaming"), per_cpu_s("spark_equal")),
        "spark_equal_checks_pass": (fig("spark_equal", "verify") or {}).get("all_checks_pass"),
        "naive_readings_per_s": fig("naive", "readings_per_s"),
        "readings_per_cpu_second": {
            "meterflow": per_cpu_s("streaming"),
            "spark": per_cpu_s("spark"),
            "spark_equal": per_cpu_s("spark_equal"),
            "naive": per_cpu_s("naive"),
        },
        "alert_latency_ms": {k: fig("latency", k) for k in ("p50_ms", "p95_ms", "p99_ms")},
        "batch_seconds": fig("batch", "wall_s"),
        "batch_readings": fig("batch", "readings"),
        "serving_p99_ms": {
            k: v["p99_ms"] for k, v in (serving.figures.items() if serving else []) if k in DASHBOARD_GOAL
        },
    }


def write(result: dict[str, Any], latest: bool) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = "" if result["mode"] == "full" else f"-{result['mode']}"
    path = RESULTS / f"{result['started']}{suffix}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    if latest:
        shutil.copyfile(path, RESULTS / "latest.json")
    return path


def _git() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, check=False)
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except OSError:
        return "?"


if __name__ == "__main__":
    raise SystemExit(main())
