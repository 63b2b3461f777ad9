"""The rich table of a run: one row per phase, then the goals of issue 7 against what was measured."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _n(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value < 10:
        return f"{value:.2f}{unit}"
    return f"{value:,.0f}{unit}" if isinstance(value, int | float) else str(value)


def headline(name: str, figures: dict[str, Any]) -> str:
    """The phase's main figure(s) in one cell."""
    f = figures
    match name:
        case "load":
            return (
                f"{_n(f.get('produce_records'))} records, {_n(f.get('produce_records_per_s'))}/s ({f.get('producer')})"
            )
        case "ceiling":
            return f"{_n(f.get('records_per_s'))} rec/s (fetch only {_n(f.get('fetch_records_per_s'))})"
        case "streaming":
            return (
                f"{_n(f.get('readings'))} readings: {_n(f.get('sustained_readings_per_s'))}/s sustained, "
                f"{_n(f.get('end_to_end_readings_per_s'))}/s end to end ({_n(f.get('wall_s'))} s)"
            )
        case "batch":
            return f"{f.get('days')} days, {_n(f.get('readings'))} readings in {_n(f.get('wall_s'))} s"
        case "serving":
            parts = [
                f"{k.split('_')[0]} p50 {v['p50_ms']} / p99 {v['p99_ms']} ms"
                for k, v in f.items()
                if isinstance(v, dict)
            ]
            return "; ".join(parts)
        case "spark":
            return (
                f"{_n(f.get('readings_per_s'))}/s streaming, {_n(f.get('end_to_end_readings_per_s'))}/s "
                f"with session start"
            )
        case "spark_equal":
            checks = (f.get("verify") or {}).get("all_checks_pass")
            return (
                f"{_n(f.get('readings_per_s'))}/s streaming, {_n(f.get('end_to_end_readings_per_s'))}/s "
                f"with session start; dlq {_n(sum((f.get('dlq_by_reason') or {}).values()))}, Iceberg "
                f"{_n(f.get('iceberg_rows'))}, windows {_n(f.get('window_rows'))}, alerts {_n(f.get('alert_rows'))}; "
                f"checks {'pass' if checks else 'FAIL' if checks is False else '-'}"
            )
        case "naive":
            return f"{_n(f.get('readings'))} readings at {_n(f.get('readings_per_s'))}/s"
        case "latency":
            return (
                f"p50 {_n(f.get('p50_ms'))} / p95 {_n(f.get('p95_ms'))} / p99 {_n(f.get('p99_ms'))} ms "
                f"at {_n(f.get('rate_achieved'))}/s, {f.get('alerts_seen')}/{f.get('triggers_measured')} seen"
            )
    return ""


def print_report(result: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console(width=160)
    m = result["machine"]
    table = Table(
        title=f"meterflow bench ({result['mode']}) — {m['cores']} cores, {m['memory_gb']} GB, {result['started']}"
    )
    for column in ("phase", "status", "result", "s", "load 1m before→after", "busiest process (CPU s, peak MB)"):
        table.add_column(column)
    for name, p in result["phases"].items():
        status = "[green]ok[/]" if p["status"] == "ok" else f"[red]{p['status']}[/]"
        body = headline(name, p["figures"]) if p["status"] == "ok" else (p["error"] or "")[:90]
        top = p["processes"][0] if p["processes"] else None
        busiest = f"{top['process'][:34]} ({top['cpu_s']}, {top['peak_rss_mb']:.0f})" if top else "-"
        load = f"{p['load_before'][0]:.2f}→{p['load_after'][0]:.2f}"
        table.add_row(name, status, body, f"{p['seconds']:.0f}", load, busiest)
    console.print(table)

    s = result["summary"]
    goals = Table(title="issue 7 goals")
    for column in ("goal", "target", "measured"):
        goals.add_column(column)
    lat = s.get("alert_latency_ms") or {}
    serving = s.get("serving_p99_ms") or {}
    goals.add_row(
        "end-to-end readings/s (2 cores)",
        "≥ 250,000",
        f"{_n(s.get('meterflow_sustained_readings_per_s'))} sustained, "
        f"{_n(s.get('meterflow_end_to_end_readings_per_s'))} end to end",
    )
    goals.add_row(
        "share of the consumer ceiling",
        "≥ 50 %",
        _pct(s.get("meterflow_sustained_vs_ceiling"))
        + " sustained, "
        + _pct(s.get("meterflow_end_to_end_vs_ceiling"))
        + " end to end",
    )
    goals.add_row(
        "meterflow / Spark peer",
        "≥ 3x",
        f"{_n(s.get('meterflow_vs_spark_sustained'))}x sustained, "
        f"{_n(s.get('meterflow_vs_spark_end_to_end'))}x end to end",
    )
    goals.add_row(
        "meterflow / equal-work Spark peer",
        "-",
        f"{_n(s.get('meterflow_vs_spark_equal_sustained'))}x sustained, "
        f"{_n(s.get('meterflow_vs_spark_equal_end_to_end'))}x end to end, "
        f"{_n(s.get('meterflow_vs_spark_equal_per_cpu_second'))}x per CPU second",
    )
    goals.add_row("alert latency p99", "≤ 1,000 ms", _n(lat.get("p99_ms"), " ms"))
    goals.add_row(
        "batch recompute",
        "≤ 30 s (a month)",
        f"{_n(s.get('batch_seconds'), ' s')} for {_n(s.get('batch_readings'))} readings",
    )
    goals.add_row("dashboard query p99", "≤ 100 ms", ", ".join(f"{k}: {v} ms" for k, v in serving.items()) or "-")
    console.print(goals)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f} %"
