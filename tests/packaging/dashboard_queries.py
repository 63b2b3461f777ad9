"""Run every query of the Grafana dashboard (helm/meterflow/dashboards/meterflow.json) against the
real tables: ``python -m tests.packaging.dashboard_queries <chdb-folder>`` prints one JSON object.

The tables and views are made exactly as a pipeline gets them (``apply_migrations`` and the
serving views of ``meterflow_clickhouse.views``) in an embedded chDB, a few known rows are written,
Grafana's macros are expanded as grafana-clickhouse-datasource expands them, and each panel's
SQL is executed. A separate process because chDB lets one process open one data folder.
Used by tests/packaging/test_dashboard.py.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "helm" / "meterflow" / "dashboards" / "meterflow.json"
DATABASE = "dash_test"
TIME_ZONE = "Australia/Brisbane"
MEASUREMENTS = [
    ("Pulse1", "P1", "interval", "L"),
    ("Pulse1_Total", "T1", "register", "L"),
    ("Battery", "V", "gauge", None),
]
"""What the views know of the seeded measurements (meterflow_clickhouse.views.Served)."""
FROM = datetime(2026, 11, 1, tzinfo=UTC)
TO = datetime(2026, 11, 8, tzinfo=UTC)
INTERVAL_S = 3600


def expand(sql: str) -> str:
    """Grafana's variables and the plugin's macros, as grafana-clickhouse-datasource expands them."""
    start, end = int(FROM.timestamp()), int(TO.timestamp())
    sql = sql.replace("${database}", DATABASE)
    sql = re.sub(r"\$__timeFilter\(([^)]+)\)", rf"\1 >= toDateTime({start}) AND \1 <= toDateTime({end})", sql)
    sql = re.sub(r"\$__dateFilter\(([^)]+)\)", rf"\1 >= toDate('{FROM.date()}') AND \1 <= toDate('{TO.date()}')", sql)
    sql = re.sub(
        r"\$__timeInterval\(([^)]+)\)", rf"toStartOfInterval(toDateTime(\1), INTERVAL {INTERVAL_S} second)", sql
    )
    sql = sql.replace("$__interval_s", str(INTERVAL_S))
    if "$" in sql:
        raise ValueError(f"an unexpanded Grafana variable or macro is left in: {sql}")
    return sql


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def seed(client: Any) -> None:
    """Known rows: two speed days and one batch day of consumption, alerts with a replay and a
    retraction, alerts of the lifecycle (open, escalated, resolved, one resolved by a later
    version), ingest counters with dead letters and late readings."""
    meta = ["water", "Buderim", "4556", "residential"]
    agg_columns = ["meter_id", "measurement_type", "series", "unit", "window_start", "window_end", "readings",
                   "sum", "avg", "min", "max", "stddev", "consumption", "meter_type", "suburb", "postcode",
                   "usage_type", "version"]  # fmt: skip
    agg = []
    for start, consumption, readings in (("2026-11-02T00:00", 10.0, 1), ("2026-11-03T00:00", 20.0, 2),
                                         ("2026-11-04T00:00", 30.0, 3)):  # fmt: skip
        end = start[:-2] + "05"
        agg.append(["m1", "Pulse1", "P1", "L", t(start), t(end), readings, consumption, consumption / readings,
                    0.0, consumption, 0.0, consumption, *meta, 1])  # fmt: skip
    client.insert(f"{DATABASE}.readings_agg", agg, column_names=agg_columns)

    daily_columns = ["day", "meter_id", "measurement_type", "series", "unit", "kind", "readings", "sum", "avg",
                     "min", "max", "consumption", "first_time", "last_time", "first_value", "last_value", "resets",
                     "negative_steps", "negative_total", "late_readings", "meter_type", "suburb", "postcode",
                     "usage_type"]  # fmt: skip
    day_row = [date(2026, 11, 4), "m1", "Pulse1", "P1", "L", "interval", 4, 35.0, 8.75, 0.0, 15.0, 35.0,
               t("2026-11-03T14:00"), t("2026-11-04T13:45"), 5.0, 10.0, 0, 0, 0.0, 1, *meta]  # fmt: skip
    client.insert(f"{DATABASE}.daily_stats", [day_row], column_names=daily_columns)
    client.insert(
        f"{DATABASE}.batch_days",
        [[date(2026, 11, 4), "run-1", 0, t("2026-11-05T00:00"), t("2026-11-05T00:00")]],
        column_names=["day", "run_id", "snapshot_id", "snapshot_time", "computed_at"],
    )

    alert_columns = ["rule", "severity", "meter_id", "measurement_type", "series", "unit", "value", "condition",
                     "threshold", "event_time", "meter_type", "suburb", "postcode", "usage_type", "version",
                     "is_deleted"]  # fmt: skip
    alerts = [
        ("HIGH_FLOW", "WARNING", "m1", "Pulse1", "2026-11-02T01:00", 1, 0),
        ("HIGH_FLOW", "WARNING", "m1", "Pulse1", "2026-11-02T01:00", 2, 0),  # a replay: the same key again
        ("LOW_BATTERY", "CRITICAL", "m2", "Battery", "2026-11-02T01:30", 1, 0),
        ("HIGH_FLOW", "WARNING", "m3", "Pulse1", "2026-11-02T02:00", 1, 0),
        ("HIGH_FLOW", "WARNING", "m3", "Pulse1", "2026-11-02T02:00", 2, 1),  # retracted
        ("HIGH_FLOW", "WARNING", "m1", "Pulse1", "2026-10-01T00:00", 1, 0),  # outside the time range
    ]
    client.insert(
        f"{DATABASE}.alerts",
        [
            [rule, severity, meter, measurement, "P1", "L", 600.0, ">", 500.0, t(time), *meta, version, deleted]
            for rule, severity, meter, measurement, time, version, deleted in alerts
        ],
        column_names=alert_columns,
    )
    # the lifecycle: alerts per episode with their state, severity and resolution
    lifecycle_columns = ["rule", "severity", "meter_id", "measurement_type", "series", "unit", "value", "condition",
                         "threshold", "event_time", "kind", "state", "resolved_at", "version"]  # fmt: skip
    lifecycle = [
        ("CONTINUOUS_FLOW", "CRITICAL", "m4", "continuousFlow", "2026-11-03T00:00", "RESOLVED", "2026-11-03T07:00", 1),
        ("CONTINUOUS_FLOW", "WARNING", "m5", "continuousFlow", "2026-11-03T00:00", "OPEN", None, 1),
        ("CONTINUOUS_FLOW", "CRITICAL", "m6", "continuousFlow", "2026-11-03T00:00", "OPEN", None, 1),
        ("NO_DATA", "WARNING", "m7", "noData", "2026-11-03T00:00", "OPEN", None, 1),
        ("NO_DATA", "WARNING", "m7", "noData", "2026-11-03T00:00", "RESOLVED", "2026-11-03T00:30", 2),  # resolved
        ("NO_DATA", "WARNING", "m8", "noData", "2026-11-03T00:00", "RESOLVED", "2026-11-03T01:30", 1),
        ("NO_DATA", "WARNING", "m9", "noData", "2026-11-03T00:00", "RESOLVED", "2026-11-03T03:00", 1),
        ("NO_DATA", "WARNING", "m9", "noData", "2026-09-03T00:00", "RESOLVED", "2026-09-04T00:00", 1),  # too early
    ]
    client.insert(
        f"{DATABASE}.alerts",
        [
            [rule, severity, meter, "Pulse1", "P1", "L", 1.0, "", 0.0, t(opened), kind, state,
             None if resolved is None else t(resolved), version]
            for rule, severity, meter, kind, opened, state, resolved, version in lifecycle
        ],
        column_names=lifecycle_columns,
    )  # fmt: skip
    # meter health: m1 perfect on both days, m2 at 45.5 on the 3rd (a LOW_QUALITY problem meter)
    health_columns = ["day", "meter_id", "score", "completeness", "readings", "expected_readings",
                      "longest_silence_h", "duplicates", "late_readings", "dead_letters", "clock_ahead",
                      "max_clock_ahead_s", "stuck_series", "reason", "meter_type", "suburb", "postcode",
                      "usage_type"]  # fmt: skip
    client.insert(
        f"{DATABASE}.meter_health",
        [
            [date(2026, 11, 2), "m1", 100.0, 1.0, 96, 96.0, 0.25, 0, 0, 0, 0, None, 0, "", *meta],
            [date(2026, 11, 3), "m1", 100.0, 1.0, 96, 96.0, 0.25, 0, 0, 0, 0, None, 0, "", *meta],
            [date(2026, 11, 3), "m2", 45.5, 0.25, 24, 96.0, 18.0, 2, 0, 1, 0, None, 0,
             "24 of 96 expected readings; silent for 18.0 h", *meta],
            [date(2026, 10, 3), "m2", 0.0, 0.0, 0, 96.0, 24.0, 0, 0, 0, 0, None, 0, "out of range", *meta],
        ],
        column_names=health_columns,
    )  # fmt: skip
    client.insert(
        f"{DATABASE}.problem_meters",
        [[date(2026, 11, 3), "m2", "LOW_QUALITY", "WARNING", "", "", 45.5, 60.0, "data quality 45.5 of 100", *meta]],
        column_names=["day", "meter_id", "rule", "severity", "measurement_type", "series", "value", "threshold",
                      "reason", "meter_type", "suburb", "postcode", "usage_type"],
    )  # fmt: skip
    # anomaly verdicts: at 01:15 the batch's normal verdict (version 3) replaces the speed layer's
    anomaly_columns = ["day", "meter_id", "window_start", "window_end", "layer", "model_version", "score",
                       "anomalous", "detail", "version"]  # fmt: skip
    verdicts = [
        ("2026-11-02T01:00", "speed", 0.1, 0, 2), ("2026-11-02T01:15", "speed", -0.05, 1, 2),
        ("2026-11-02T01:15", "batch", 0.01, 0, 3), ("2026-11-02T02:00", "speed", -0.2, 1, 2),
        ("2026-10-02T02:00", "speed", -0.3, 1, 2),  # out of range
    ]  # fmt: skip
    client.insert(
        f"{DATABASE}.anomalies",
        [
            [t(at).date(), "m1", t(at), t(at) + timedelta(minutes=15), layer, 1, score, flagged, "", version]
            for at, layer, score, flagged, version in verdicts
        ],
        column_names=anomaly_columns,
    )
    counters = [
        ("2026-11-02T00:00", "valid", 100, 1), ("2026-11-02T00:00", "on_time", 95, 1),
        ("2026-11-02T00:00", "late", 3, 1), ("2026-11-02T00:00", "dlq:bad_json", 2, 1),
        ("2026-11-02T00:00", "dlq:bad_json", 2, 2),  # replayed
        ("2026-11-02T00:00", "dlq:out_of_range", 1, 1), ("2026-11-02T00:01", "dlq:bad_json", 4, 1),
    ]  # fmt: skip
    client.insert(
        f"{DATABASE}.ingest_counters",
        [[t(minute), counter, value, version] for minute, counter, value, version in counters],
        column_names=["minute", "counter", "value", "version"],
    )


def main(folder: str) -> None:
    from meterflow_clickhouse.client import session
    from meterflow_clickhouse.migrate import apply_migrations
    from meterflow_clickhouse.views import Served, apply_views

    dsn = f"chdb://{folder}"
    apply_migrations(dsn, DATABASE)
    dashboard = json.loads(DASHBOARD.read_text())
    out: dict[str, Any] = {"panels": {}, "variables": {}}
    with session(dsn) as client:
        apply_views(client, DATABASE, TIME_ZONE, [Served(*m) for m in MEASUREMENTS])
        seed(client)
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                rows = client.query(expand(variable["query"]["rawSql"])).result_rows
                out["variables"][variable["name"]] = [list(r) for r in rows]
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                result = client.query(expand(target["rawSql"]))
                out["panels"][panel["title"]] = {
                    "columns": list(result.column_names),
                    "rows": [[_plain(v) for v in row] for row in result.result_rows],
                }
    print(json.dumps(out))


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return round(value, 6)
    return value


if __name__ == "__main__":
    main(sys.argv[1])
