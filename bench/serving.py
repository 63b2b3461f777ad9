"""Serving: latency of the dashboard queries on the embedded ClickHouse (chDB) with the data loaded."""

from __future__ import annotations

import time
from datetime import date, timedelta

from bench.common import Phase, percentile
from bench.stack import BenchPipeline
from meterflow.stack.endpoints import clickhouse_dsn
from meterflow_clickhouse.client import session

DASHBOARD_GOAL = ("daily_consumption_per_suburb", "one_meter_alerts", "top10_meters")
"""The queries issue 13's p99 goal is about (``summary.serving_p99_ms``)."""


def queries(first: date, meter: str) -> dict[str, str]:
    """The three dashboard queries (the goal): a month of daily consumption per suburb, one meter's alerts, top 10."""
    month_from, month_to = first.replace(day=1), (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    month = f"day >= '{month_from}' AND day < '{month_to}'"
    return {
        "daily_consumption_per_suburb": (
            "SELECT day, suburb, sum(consumption) AS litres, uniqExact(meter_id) AS meters "
            f"FROM consumption_daily WHERE measurement_type = 'Pulse1' AND {month} "
            "GROUP BY day, suburb ORDER BY day, suburb"
        ),
        "one_meter_alerts": (
            "SELECT rule, severity, event_time, value, threshold FROM alerts FINAL "
            f"WHERE meter_id = '{meter}' ORDER BY event_time DESC LIMIT 100"
        ),
        "top10_meters": (
            "SELECT meter_id, any(suburb) AS suburb, sum(consumption) AS litres FROM consumption_daily "
            f"WHERE measurement_type = 'Pulse1' AND {month} GROUP BY meter_id ORDER BY litres DESC LIMIT 10"
        ),
    }


def speed_day_query(day: date) -> str:
    """One day's consumption per suburb from the speed layer alone (``speed_daily``): what a day the
    batch has not recomputed yet (today) costs a dashboard. Reported beside the goal, not in it."""
    return (
        "SELECT day, suburb, sum(consumption) AS litres, uniqExact(meter_id) AS meters FROM speed_daily "
        f"WHERE measurement_type = 'Pulse1' AND day = '{day}' GROUP BY day, suburb ORDER BY suburb"
    )


def serving_phase(phase: Phase, pipeline: BenchPipeline, first: date, days: int, repeats: int) -> None:
    """Each query ``repeats`` times in one session (after one warm-up); p50/p99 in ms, rows returned."""
    dsn = clickhouse_dsn(pipeline.spec)
    t0 = time.monotonic()
    with session(dsn, database=pipeline.names.clickhouse_database) as client:
        phase.figures["session_open_ms"] = round((time.monotonic() - t0) * 1000, 1)
        meter_rows = client.query(
            "SELECT meter_id FROM alerts FINAL GROUP BY meter_id ORDER BY count() DESC LIMIT 1"
        ).result_rows
        meter = meter_rows[0][0] if meter_rows else ""
        phase.figures["alerts_meter"] = meter
        phase.figures["daily_stats_rows"] = client.query("SELECT count() FROM daily_stats").result_rows[0][0]
        measured = queries(first, meter) | {"speed_layer_one_day": speed_day_query(first + timedelta(days=days - 1))}
        for name, sql in measured.items():
            rows = len(client.query(sql).result_rows)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                client.query(sql)
                times.append((time.perf_counter() - start) * 1000)
            phase.figures[name] = {
                "rows": rows,
                "p50_ms": round(percentile(times, 50) or 0, 2),
                "p99_ms": round(percentile(times, 99) or 0, 2),
                "max_ms": round(max(times), 2),
                "runs": repeats,
            }
    phase.notes.append(
        "chDB in the harness process, one session (open cost reported separately); each query "
        "includes fetching its rows into Python through clickhouse-connect"
    )
