"""``meterflow report``: one self-contained HTML file with the pipeline's charts.

Eight charts from ClickHouse, drawn with plotly; plotly.js is embedded inline once, so the file
opens offline and can be mailed as it is:

1. consumption per day (``consumption_daily``: batch figures for recomputed days, speed-layer
   figures for the others — the bar's pattern says which);
2. consumption per suburb over the same days;
3. speed-layer alerts per day and rule (``alerts``, days in ``spec.timeZone``);
4. the problem meters of the batch (a table, the most severe and recent first);
5. the drift between speed and batch consumption per day (``speed_vs_batch``);
6. the alerts open now (``alerts_active``: a table, the most severe and oldest first);
7. how long alerts took to resolve, per rule (``alerts``: minutes from opening to resolution,
   event time — or the wall clock of a resolution by hand; docs/alerts.md);
8. meter health: meters per day by data-quality score band, and the median score
   (``meter_health``; docs/health.md).

Every chart is a ``<div class="meterflow-chart">``; an empty one says so in its title instead of
disappearing. Called by ``meterflow report`` and the demo.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from meterflow.spec.model import MeterPipeline
from meterflow.spec.names import names_for
from meterflow.stack.endpoints import clickhouse_dsn
from meterflow_clickhouse.client import session
from meterflow_clickhouse.schema import ensure_schema

PROBLEM_ROWS = 300
"""How many problem rows the table shows (most severe, most recent first)."""

OPEN_ALERT_ROWS = 300
"""How many open alerts the table shows (most severe, oldest first)."""

CHARTS = (
    "consumption-per-day",
    "consumption-per-suburb",
    "alerts-by-rule",
    "problem-meters",
    "speed-vs-batch",
    "open-alerts",
    "time-to-resolve",
    "meter-health",
)

HEALTH_BANDS = (("90-100", 90.0), ("60-90", 60.0), ("30-60", 30.0), ("0-30", 0.0))
"""Score bands of the meter-health chart (label, lowest score), best first."""


def _queries(db: str, zone: str) -> dict[str, str]:
    return {
        "daily": f"""SELECT day, measurement_type, series, any(consumption_unit) AS unit, source,
                            sum(consumption) AS total
                     FROM {db}.consumption_daily WHERE consumption IS NOT NULL
                     GROUP BY day, measurement_type, series, source ORDER BY day""",
        "suburb": f"""SELECT suburb, measurement_type, series, any(consumption_unit) AS unit, sum(consumption) AS total
                      FROM {db}.consumption_daily WHERE consumption IS NOT NULL
                      GROUP BY suburb, measurement_type, series ORDER BY total DESC""",
        "alerts": f"""SELECT toDate(event_time, '{zone}') AS day, rule, count() AS alerts
                      FROM {db}.alerts FINAL WHERE is_deleted = 0
                      GROUP BY day, rule ORDER BY day, rule""",
        "problems": f"""SELECT day, meter_id, rule, severity, measurement_type, series, value, reason, suburb,
                               usage_type
                        FROM {db}.problem_meters
                        ORDER BY multiIf(severity = 'CRITICAL', 0, severity = 'WARNING', 1, 2), day DESC,
                                 meter_id, rule
                        LIMIT {PROBLEM_ROWS}""",
        "drift": f"""SELECT day, sum(abs(drift)) AS abs_drift, sum(drift) AS total_drift,
                            countIf(drift != 0) AS meter_days_drifting, sum(late_readings) AS late
                     FROM {db}.speed_vs_batch WHERE drift IS NOT NULL
                     GROUP BY day ORDER BY day""",
        "open_alerts": f"""SELECT rule, severity, meter_id, series, event_time, last_seen, breaches, last_value,
                                  acknowledged_by, alert_id
                           FROM {db}.alerts_active WHERE is_deleted = 0
                           ORDER BY multiIf(severity = 'CRITICAL', 0, severity = 'WARNING', 1, 2), event_time,
                                    meter_id, rule
                           LIMIT {OPEN_ALERT_ROWS}""",
        "resolved": f"""SELECT rule, dateDiff('second', event_time, assumeNotNull(resolved_at)) / 60 AS minutes
                        FROM {db}.alerts FINAL
                        WHERE is_deleted = 0 AND state = 'RESOLVED' AND resolved_at IS NOT NULL
                        ORDER BY rule, minutes""",
        "health": f"""SELECT day, {_band_sql()} AS band, count() AS meters
                      FROM {db}.meter_health GROUP BY day, band ORDER BY day, band""",
        "health_median": f"""SELECT day, median(score) AS median_score, count() AS meters
                             FROM {db}.meter_health GROUP BY day ORDER BY day""",
    }


def _band_sql() -> str:
    cases = ", ".join(f"score >= {low}, '{label}'" for label, low in HEALTH_BANDS[:-1])
    return f"multiIf({cases}, '{HEALTH_BANDS[-1][0]}')"


def load(pipeline: MeterPipeline) -> dict[str, pd.DataFrame]:
    """The report's data, one frame per chart."""
    db = names_for(pipeline).clickhouse_database
    with session(clickhouse_dsn(pipeline)) as client:
        ensure_schema(client, pipeline)
        return {name: client.query_df(sql) for name, sql in _queries(db, pipeline.spec.time_zone).items()}


def _empty(fig: Any, title: str) -> Any:
    fig.update_layout(title=f"{title} — no data yet")
    fig.add_annotation(text="no data yet", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    return fig


def _label(row: Any) -> str:
    return f"{row.measurement_type}/{row.series} ({row.unit})"


def consumption_per_day(frame: pd.DataFrame) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    title = "Consumption per day"
    if frame.empty:
        return _empty(fig, title)
    frame = frame.assign(label=[_label(r) for r in frame.itertuples(index=False)])
    for (label, source), part in frame.groupby(["label", "source"], sort=True):
        fig.add_bar(
            x=pd.to_datetime(part["day"]),
            y=part["total"],
            name=f"{label} — {source}",
            marker_pattern_shape="" if source == "batch" else "/",
        )
    fig.update_layout(
        title=f"{title} (batch for recomputed days, hatched: speed layer)",
        barmode="group",
        xaxis_title="day",
        yaxis_title="consumption",
    )
    return fig


def consumption_per_suburb(frame: pd.DataFrame) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    title = "Consumption per suburb"
    if frame.empty:
        return _empty(fig, title)
    frame = frame.assign(label=[_label(r) for r in frame.itertuples(index=False)])
    for label, part in frame.groupby("label", sort=True):
        fig.add_bar(x=part["suburb"], y=part["total"], name=label)
    fig.update_layout(title=title, barmode="group", xaxis_title="suburb", yaxis_title="consumption")
    return fig


def alerts_by_rule(frame: pd.DataFrame) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    title = "Speed-layer alerts per day, by rule"
    if frame.empty:
        return _empty(fig, title)
    for rule, part in frame.groupby("rule", sort=True):
        fig.add_bar(x=pd.to_datetime(part["day"]), y=part["alerts"], name=str(rule))
    fig.update_layout(title=title, barmode="stack", xaxis_title="day", yaxis_title="alerts")
    return fig


def problem_table(frame: pd.DataFrame) -> Any:
    import plotly.graph_objects as go

    title = f"Problem meters (batch; up to {PROBLEM_ROWS}, most severe first)"
    columns = ["day", "meter_id", "rule", "severity", "measurement_type", "value", "reason", "suburb", "usage_type"]
    if frame.empty:
        fig = go.Figure(go.Table(header={"values": columns}, cells={"values": [[] for _ in columns]}))
        return _empty(fig, title)
    frame = frame.assign(
        day=pd.to_datetime(frame["day"]).dt.strftime("%Y-%m-%d"),
        value=frame["value"].map(lambda v: "" if pd.isna(v) else f"{v:,.2f}"),
        measurement_type=[
            f"{m}/{s}" if m else "(meter)" for m, s in zip(frame["measurement_type"], frame["series"], strict=True)
        ],
    )
    fig = go.Figure(
        go.Table(
            columnwidth=[90, 90, 190, 80, 140, 80, 380, 120, 110],
            header={"values": columns, "align": "left"},
            cells={"values": [frame[c].astype(str).tolist() for c in columns], "align": "left"},
        )
    )
    fig.update_layout(title=title, height=620)
    return fig


def drift_chart(frame: pd.DataFrame) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    title = "Speed vs batch: consumption drift per recomputed day"
    if frame.empty:
        return _empty(fig, title)
    days = pd.to_datetime(frame["day"])
    fig.add_bar(x=days, y=frame["total_drift"], name="drift (speed - batch)")
    fig.add_scatter(
        x=days, y=frame["meter_days_drifting"], name="meter-days drifting", yaxis="y2", mode="lines+markers"
    )
    fig.update_layout(
        title=title,
        xaxis_title="day",
        yaxis={"title": "speed - batch"},
        yaxis2={"title": "meter-days", "overlaying": "y", "side": "right", "rangemode": "tozero"},
    )
    return fig


def open_alerts(frame: pd.DataFrame) -> Any:
    import plotly.graph_objects as go

    title = f"Open alerts (up to {OPEN_ALERT_ROWS}, most severe and oldest first)"
    columns = ["rule", "severity", "meter_id", "series", "opened", "last_seen", "breaches", "last_value", "acked_by",
               "alert_id"]  # fmt: skip
    if frame.empty:
        fig = go.Figure(go.Table(header={"values": columns}, cells={"values": [[] for _ in columns]}))
        fig.update_layout(title=f"{title} — none")
        return fig
    stamp = "%Y-%m-%d %H:%M"
    frame = frame.assign(
        opened=pd.to_datetime(frame["event_time"]).dt.strftime(stamp),
        last_seen=pd.to_datetime(frame["last_seen"]).dt.strftime(stamp),
        last_value=frame["last_value"].map(lambda v: f"{v:,.2f}"),
        acked_by=frame["acknowledged_by"],
    )
    fig = go.Figure(
        go.Table(
            columnwidth=[150, 80, 100, 60, 120, 120, 70, 90, 80, 140],
            header={"values": columns, "align": "left"},
            cells={"values": [frame[c].astype(str).tolist() for c in columns], "align": "left"},
        )
    )
    fig.update_layout(title=f"{title} — {len(frame)} (UTC)", height=520)
    return fig


def time_to_resolve(frame: pd.DataFrame) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    title = "Time to resolve, by rule (minutes from opening)"
    if frame.empty:
        fig.update_layout(title=f"{title} — no alert resolved yet")
        return fig
    for rule, part in frame.groupby("rule", sort=True):
        minutes = part["minutes"].astype(float)
        fig.add_box(
            y=minutes, name=f"{rule} ({len(minutes)}, median {minutes.median():,.0f} min)", boxpoints="outliers"
        )
    fig.update_layout(title=title, yaxis_title="minutes", showlegend=False)
    return fig


def meter_health(bands: pd.DataFrame, medians: pd.DataFrame) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    title = "Meter health: meters per day by data-quality score (batch)"
    if bands.empty:
        return _empty(fig, title)
    for label, _ in HEALTH_BANDS:
        part = bands[bands["band"] == label]
        fig.add_bar(x=pd.to_datetime(part["day"]), y=part["meters"], name=f"score {label}")
    fig.add_scatter(
        x=pd.to_datetime(medians["day"]), y=medians["median_score"], name="median score", yaxis="y2",
        mode="lines+markers",
    )  # fmt: skip
    fig.update_layout(
        title=title,
        barmode="stack",
        xaxis_title="day",
        yaxis={"title": "meters"},
        yaxis2={"title": "score", "overlaying": "y", "side": "right", "range": [0, 100]},
    )
    return fig


def render(pipeline: MeterPipeline, data: dict[str, pd.DataFrame], generated: datetime | None = None) -> str:
    """The report's HTML (pure: data in, text out)."""
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    figures = [
        consumption_per_day(data["daily"]),
        consumption_per_suburb(data["suburb"]),
        alerts_by_rule(data["alerts"]),
        problem_table(data["problems"]),
        drift_chart(data["drift"]),
        open_alerts(data["open_alerts"]),
        time_to_resolve(data["resolved"]),
        meter_health(data["health"], data["health_median"]),
    ]
    divs = []
    for chart_id, fig in zip(CHARTS, figures, strict=True):
        fig.update_layout(template="plotly_white", margin={"t": 60, "l": 60, "r": 60, "b": 50})
        body = pio.to_html(
            fig,
            full_html=False,
            include_plotlyjs=False,
            div_id=chart_id,
            config={"displaylogo": False, "responsive": True},
        )
        divs.append(f'<section class="meterflow-chart" data-chart="{chart_id}">{body}</section>')
    when = (generated or datetime.now(UTC)).isoformat(timespec="seconds")
    name = html.escape(pipeline.name)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>meterflow report — {name}</title>
<script type="text/javascript">{get_plotlyjs()}</script>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }}
h1 {{ font-size: 1.5em; }} .meta {{ color: #666; }} section {{ margin: 2em 0; }}
</style>
</head>
<body>
<h1>meterflow report — {name}</h1>
<p class="meta">Days are calendar days in {html.escape(pipeline.spec.time_zone)}. Generated {when}.</p>
{"".join(divs)}
</body>
</html>
"""


def write_report(pipeline: MeterPipeline, path: str | Path) -> Path:
    """Write the report of ``pipeline`` to ``path`` (one HTML file, no other files); the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(pipeline, load(pipeline)), encoding="utf-8")
    return out
