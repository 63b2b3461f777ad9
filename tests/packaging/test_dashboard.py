"""The Grafana dashboard (helm/meterflow/dashboards/meterflow.json): its shape for the
grafana-clickhouse-datasource plugin, and every panel's SQL run against the real tables
(migrations + serving views in an embedded chDB, known rows, Grafana's macros expanded) with
the exact results checked.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.packaging.dashboard_queries import DASHBOARD, REPO, expand

pytestmark = pytest.mark.integration

DATASOURCE = {"type": "grafana-clickhouse-datasource", "uid": "${datasource}"}


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def test_dashboard_is_provisionable_for_the_clickhouse_plugin() -> None:
    board = dashboard()
    assert board["uid"] == "meterflow-pipeline"
    assert "id" not in board  # Grafana assigns the id when it provisions the file
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "grafana-clickhouse-datasource"
    assert variables["database"]["datasource"] == DATASOURCE
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["description"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE
            assert target["editorType"] == "sql"
            # 0 = time series, 1 = table in the plugin's Format enum
            assert target["format"] == (0 if panel["type"] == "timeseries" else 1), panel["title"]
    titles = [p["title"] for p in board["panels"]]
    assert titles == [
        "Ingest totals",
        "Consumption per day",
        "Consumption per day: batch or speed",
        "Alerts by rule",
        "Dead letters and late readings per minute",
        "Dead letters by reason",
        "Speed vs batch drift per day",
        "Largest drifts",
        "Active alerts by rule",
        "Time to resolve by rule",
        "Meter health per day",
        "Lowest meter health",
        "Anomalous windows per hour",
    ]


def test_macros_expand_like_the_plugin() -> None:
    assert expand("SELECT 1 FROM ${database}.alerts WHERE $__timeFilter(event_time)") == (
        "SELECT 1 FROM dash_test.alerts "
        "WHERE event_time >= toDateTime(1793491200) AND event_time <= toDateTime(1794096000)"
    )
    assert expand("$__dateFilter(day)") == "day >= toDate('2026-11-01') AND day <= toDate('2026-11-08')"
    assert expand("$__timeInterval(t)") == "toStartOfInterval(toDateTime(t), INTERVAL 3600 second)"
    with pytest.raises(ValueError, match="unexpanded"):
        expand("SELECT $__unknownMacro(x)")


def test_every_panel_query_runs_against_the_real_tables(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.packaging.dashboard_queries", str(tmp_path / "clickhouse")],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    panels = out["panels"]
    assert out["variables"] == {"database": [["dash_test"]]}
    assert set(panels) == {p["title"] for p in dashboard()["panels"]}

    assert panels["Ingest totals"] == {
        "columns": ["in", "valid", "dead_letters", "on_time", "late", "duplicates"],
        "rows": [[107, 100, 7, 95, 3, 2]],
    }
    # speed figures for 2 and 3 November, the batch's for the recomputed 4th (not the speed layer's 30)
    assert panels["Consumption per day"] == {
        "columns": ["time", "measurement_type", "consumption"],
        "rows": [["2026-11-02 00:00", "Pulse1", 10.0], ["2026-11-03 00:00", "Pulse1", 20.0],
                 ["2026-11-04 00:00", "Pulse1", 35.0]],
    }  # fmt: skip
    assert panels["Consumption per day: batch or speed"]["rows"] == [
        ["2026-11-02 00:00", "speed", 1], ["2026-11-03 00:00", "speed", 1], ["2026-11-04 00:00", "batch", 1],
    ]  # fmt: skip
    # FINAL: the replayed alert counts once, the retracted one not at all, October is out of range
    assert panels["Alerts by rule"] == {
        "columns": ["time", "rule", "alerts"],
        "rows": [["2026-11-02 01:00", "HIGH_FLOW", 1], ["2026-11-02 01:00", "LOW_BATTERY", 1],
                 ["2026-11-03 00:00", "CONTINUOUS_FLOW", 3], ["2026-11-03 00:00", "NO_DATA", 3]],
    }  # fmt: skip
    # open now: m5 (WARNING) and m6 (escalated to CRITICAL); m7's alert was resolved by a later version
    assert panels["Active alerts by rule"] == {
        "columns": ["rule", "critical", "warning", "info"],
        "rows": [["CONTINUOUS_FLOW", 1, 1, 0]],
    }
    # resolved in the range: m4 after 7 h; m7, m8, m9 after 30, 90, 180 min (September's is out of range)
    assert panels["Time to resolve by rule"] == {
        "columns": ["rule", "resolved", "median_minutes", "p90_minutes", "longest_minutes"],
        "rows": [["CONTINUOUS_FLOW", 1, 420.0, 420.0, 420.0], ["NO_DATA", 3, 90.0, 180.0, 180.0]],
    }
    assert panels["Dead letters and late readings per minute"] == {
        "columns": ["time", "dead_letters", "late_readings"],
        "rows": [["2026-11-02 00:00", 3, 3], ["2026-11-02 00:01", 4, 0]],
    }
    assert panels["Dead letters by reason"] == {
        "columns": ["reason", "records"],
        "rows": [["bad_json", 6], ["out_of_range", 1]],
    }
    assert panels["Speed vs batch drift per day"] == {
        "columns": ["time", "abs_consumption_drift", "readings_drift", "late_readings"],
        "rows": [["2026-11-04 00:00", 5.0, -1, 1]],
    }
    assert panels["Largest drifts"]["rows"] == [["2026-11-04", "m1", "Pulse1", "P1", 30.0, 35.0, -5.0, -1, 1]]
    # the median of m1's 100 and m2's 45.5 on the 3rd; October is out of range
    assert panels["Meter health per day"] == {
        "columns": ["time", "median_score", "low_quality_meters"],
        "rows": [["2026-11-02 00:00", 100.0, 0], ["2026-11-03 00:00", 72.8, 1]],
    }
    assert panels["Lowest meter health"]["rows"] == [
        ["2026-11-03", "m2", 45.5, 0.25, 24, 18.0, 2, 0, 1, 0, 0, "24 of 96 expected readings; silent for 18.0 h",
         "Buderim"],
    ]  # fmt: skip
    # FINAL: the batch's normal verdict at 01:15 replaces the speed layer's anomalous one; October is out
    assert panels["Anomalous windows per hour"] == {
        "columns": ["time", "anomalous_windows", "scored_windows"],
        "rows": [["2026-11-02 01:00", 0, 2], ["2026-11-02 02:00", 1, 1]],
    }
