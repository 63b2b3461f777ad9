"""The pipeline-health dashboard's PromQL is tested against the metric names, as meterflow.json's
SQL is against the tables: every ``meterflow_*`` series it reads is in the catalogue with the labels
it groups and filters by, and every ``flink_*`` one is among those a real scrape is checked for."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from meterflow.metrics import HISTOGRAM, metric
from tests.streaming.test_water_e2e import FLINK_METRICS_USED

DASHBOARD = Path(__file__).resolve().parents[2] / "helm" / "meterflow" / "dashboards" / "pipeline-health.json"
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")


def _expressions() -> list[tuple[str, str]]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [(p["title"], t["expr"]) for p in panels for t in p.get("targets", [])]


def _catalogued(series: str) -> tuple[str, tuple[str, ...]]:
    """The catalogue's name and labels of an exposed series (a histogram's ``_bucket`` adds ``le``)."""
    for suffix in HISTOGRAM_SERIES:
        base = series.removesuffix(suffix)
        if base != series:
            try:
                found = metric(base)
            except KeyError:
                continue
            if found.kind == HISTOGRAM:
                return found.name, (*found.labels, "le")
    found = metric(series)
    return found.name, found.labels


def test_every_panel_has_a_query() -> None:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    assert all(p.get("targets") for p in panels if p.get("type") != "row")
    assert len(_expressions()) == 22


@pytest.mark.parametrize(("title", "expr"), _expressions(), ids=[f"{t}:{i}" for i, (t, _) in enumerate(_expressions())])
def test_each_query_reads_known_series_by_their_labels(title: str, expr: str) -> None:
    names = set(re.findall(r"\b((?:meterflow|flink)_[A-Za-z_]+)\b", expr))
    assert names, f"{title}: no metric in {expr}"
    grouped = {label.strip() for group in re.findall(r"by \(([^)]*)\)", expr) for label in group.split(",")}
    for name in names:
        if name.startswith("flink_"):
            assert name in FLINK_METRICS_USED, f"{title}: {name} is not checked in a scrape"
            continue
        _, labels = _catalogued(name)
        selectors = re.findall(rf"{name}\{{([^}}]*)\}}", expr)
        filtered = {m.split("=")[0].rstrip("!~").strip() for s in selectors for m in s.split(",") if m.strip()}
        assert filtered <= set(labels), f"{title}: {name} has no label {filtered - set(labels)}"
        assert grouped <= set(labels), f"{title}: {name} is not grouped by {grouped - set(labels)}"
