"""End to end on a water pipeline with every alert rule kind (tests/conftest.every_kind_rules):
six meters over five days with every injection, so one episode of each stateful kind — a leak, a
silent meter, a night-flow leak, a stuck register — besides the threshold triggers.

* ClickHouse holds exactly the alerts the independent model computes from the record file
  (tests/streaming/expected.py), each with its state, times, counts, values and every transition;
* each episode's alert opens, escalates, updates and resolves where its truth entry says (derived
  from the truth and the rules alone), and normal meters raise none of the stateful kinds;
* the alerts topic carries every transition; ``alerts_active`` is the open ones, and so is the
  report's table, beside each rule's time to resolve;
* ``meterflow alerts list|ack|resolve`` go through a running job (which owns the state it restored)
  and come back in ClickHouse.

A restart in the middle of an episode is tests/streaming/test_alerts_restart.py.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from meterflow.spec import MeterPipeline, names_for
from meterflow.stack.broker import BrokerInfo
from meterflow_clickhouse.report import load
from tests.conftest import every_kind_rules, unique_pipeline, write_manifest
from tests.streaming.expected import ONE_PARTITION, Alert, Expected, compute, instant
from tests.streaming.harness import METERFLOW, Process, meterflow, poll, rows, simulate, topic_records

pytestmark = [pytest.mark.integration, pytest.mark.flink]

START = "2024-05-01T00:00:00+00:00"
SIMULATION = ("--meters", "6", "--duration", "5d", "--seed", "3", "--start", START)
"""6 meters x 5 days: about 4,400 records, one episode of each kind (the seed places them)."""

H = timedelta(hours=1)


@dataclass
class Run:
    pipeline: MeterPipeline
    manifest: Path
    expected: Expected
    truth: dict[str, Any]


@pytest.fixture(scope="module")
def run(broker: BrokerInfo, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The simulation, one run of the job to idle."""
    out = tmp_path_factory.mktemp("alerts")
    pipeline = unique_pipeline(
        "water-meters",
        source=ONE_PARTITION,
        flink={"parallelism": 1, "checkpointInterval": "2s"},
        rules=every_kind_rules(),
    )
    manifest = write_manifest(pipeline, out)
    truth = simulate(manifest, out, *SIMULATION)
    meterflow("run", "-f", str(manifest), "--until-idle")
    return Run(pipeline, manifest, compute(pipeline, out / "records.jsonl", truth), truth)


ALERT_COLUMNS = (
    "meter_id, rule, series, event_time, kind, alert_id, state, severity, escalated, breaches, value, last_value, "
    "peak_value, last_seen, resolved_at"
)


def actual_alerts(pipeline: MeterPipeline) -> dict[tuple[Any, ...], dict[str, Any]]:
    names = [c.strip() for c in ALERT_COLUMNS.split(",")]
    found = rows(pipeline, f"SELECT {ALERT_COLUMNS} FROM alerts FINAL")
    return {tuple(r[:4]): dict(zip(names, r, strict=True)) for r in found}


def actual_events(pipeline: MeterPipeline) -> dict[str, Counter[tuple[str, datetime, float]]]:
    events: dict[str, Counter[tuple[str, datetime, float]]] = {}
    for alert_id, transition, at, value in rows(
        pipeline, "SELECT alert_id, transition, at, value FROM alert_events FINAL"
    ):
        events.setdefault(alert_id, Counter())[(transition, at, round(value, 6))] += 1
    return events


def transitions(alert: Alert) -> Counter[tuple[str, datetime, float]]:
    return Counter((name, _utc(at), round(value, 6)) for name, at, value in alert.transitions)


def _utc(ms: int) -> datetime:
    return datetime(1970, 1, 1) + timedelta(milliseconds=ms)


def test_the_model_sees_the_lateness_the_truth_injected(run: Run) -> None:
    """The model's own watermark finds exactly the injected late readings late (a check of the model)."""
    late = {(m, name, s, _utc(at)) for m, name, s, at in run.expected.model_late}
    assert late == {(r["meter_id"], r["measurement_type"], r["series"], r["at"]) for r in run.expected.late}


def test_every_alert_is_the_models_with_its_state_and_transitions(run: Run) -> None:
    actual = actual_alerts(run.pipeline)
    assert set(actual) == run.expected.alerts
    events = actual_events(run.pipeline)
    severities = ("INFO", "WARNING", "CRITICAL")
    for key, alert in run.expected.episodes.items():
        row = actual[key]
        assert (row["kind"], row["state"], row["severity"], row["escalated"], row["breaches"]) == (
            alert.kind,
            alert.state,
            severities[alert.severity],
            int(alert.escalated),
            alert.breaches,
        ), key
        assert row["resolved_at"] == (None if alert.resolved is None else _utc(alert.resolved)), key
        assert row["last_seen"] == _utc(alert.last_seen), key
        for column, value in (("value", alert.first), ("last_value", alert.last), ("peak_value", alert.peak)):
            assert math.isclose(row[column], value, abs_tol=1e-6), (key, column)
        assert events[row["alert_id"]] == transitions(alert), key
    assert len({row["alert_id"] for row in actual.values()}) == len(actual)
    assert set(events) == {row["alert_id"] for row in actual.values()}


def test_every_kind_raised_alerts(run: Run) -> None:
    kinds = Counter(a.kind for a in run.expected.episodes.values())
    assert set(kinds) == {"threshold", "noData", "continuousFlow", "nightFlow", "stuck"}
    assert {t for a in run.expected.episodes.values() for t, _, _ in a.transitions} == {
        "OPENED",
        "UPDATED",
        "ESCALATED",
        "RESOLVED",
    }


def by_rule(run: Run, rule: str, meter: str) -> dict[str, Any]:
    [row] = [r for k, r in actual_alerts(run.pipeline).items() if k[1] == rule and k[0] == meter]
    return row


def episode(run: Run, kind: str) -> dict[str, Any]:
    entries: list[dict[str, Any]] = [e for e in run.truth["episodes"] if e["kind"] == kind]
    assert len(entries) == 1, entries
    return entries[0]


def event_times(run: Run, alert_id: str, transition: str) -> list[datetime]:
    return [
        at
        for (at,) in rows(
            run.pipeline,
            f"SELECT at FROM alert_events FINAL WHERE alert_id = '{alert_id}' AND transition = '{transition}' "
            "ORDER BY at",
        )
    ]


def test_a_leak_opens_after_24_hours_of_flow_and_resolves_with_the_dry_hour(run: Run) -> None:
    leak = episode(run, "leak")
    start, end, dry_end = instant(leak["start"]), instant(leak["end"]), instant(leak["quiet_end"])
    row = by_rule(run, "CONTINUOUS_FLOW", leak["meter_id"])
    assert row["event_time"] == start + 24 * H  # the end of the 24th flowing hour
    assert event_times(run, row["alert_id"], "UPDATED") == [start + k * H for k in range(25, 31)]
    assert event_times(run, row["alert_id"], "ESCALATED") == [start + 27 * H]  # escalateAfter 3h
    assert (row["state"], row["resolved_at"], row["severity"], row["breaches"]) == ("RESOLVED", dry_end, "CRITICAL", 7)
    assert end + H == dry_end


def test_a_silent_meter_opens_26_hours_after_its_last_reading(run: Run) -> None:
    silent = episode(run, "silent")
    start, end = instant(silent["start"]), instant(silent["end"])
    row = by_rule(run, "NO_DATA", silent["meter_id"])
    assert (row["event_time"], row["series"], row["resolved_at"]) == (start + 26 * H, "", end)
    assert event_times(run, row["alert_id"], "ESCALATED") == [start + 38 * H]  # escalateAfter 12h


def test_a_night_leak_opens_after_its_third_night_and_resolves_after_the_next(run: Run) -> None:
    night = episode(run, "night_leak")
    row = by_rule(run, "NIGHT_FLOW", night["meter_id"])
    assert (row["event_time"], row["series"]) == (instant(night["end"]), "T1")
    assert (row["resolved_at"], row["breaches"]) == (instant(night["quiet_after"][1]), 1)


def test_a_stuck_register_opens_after_6_hours_and_resolves_when_it_moves(run: Run) -> None:
    stuck = episode(run, "stuck")
    start, end = instant(stuck["start"]), instant(stuck["end"])
    row = by_rule(run, "STUCK_REGISTER", stuck["meter_id"])
    assert (row["event_time"], row["resolved_at"]) == (start + 6 * H, end)
    # every frozen reading after the opening one updates it: 6 h 15 min .. 11 h 45 min, every 15 min
    assert event_times(run, row["alert_id"], "UPDATED") == [
        start + 6 * H + timedelta(minutes=15 * k) for k in range(1, 24)
    ]


def test_normal_meters_raise_no_stateful_alert(run: Run) -> None:
    """On the published meters only the episodes do; a meter without metadata that falls quiet (the
    three unknown meters send a few readings) is silent, and rightly noData."""
    unknown = set(run.truth["unknown_meter_ids"])
    stateful = {(a.rule, a.meter) for a in run.expected.episodes.values() if a.kind != "threshold"}
    assert {(r, m) for r, m in stateful if m not in unknown} == {
        (e["rule"], e["meter_id"]) for e in run.truth["episodes"]
    }
    assert {r for r, m in stateful if m in unknown} <= {"NO_DATA"}


def test_the_alerts_topic_carries_every_transition(run: Run, broker: BrokerInfo) -> None:
    records = [json.loads(v) for _, v in topic_records(broker.bootstrap, names_for(run.pipeline).topics.alerts)]
    on_topic = Counter((r["alert_id"], r["transition"], instant(r["at"])) for r in records)
    in_clickhouse = Counter(
        (alert_id, transition, at)
        for alert_id, transition, at in rows(run.pipeline, "SELECT alert_id, transition, at FROM alert_events FINAL")
    )
    assert on_topic == in_clickhouse
    assert {r["rule"] for r in records} == {r.name for r in run.pipeline.spec.rules}


def test_alerts_active_is_the_open_ones(run: Run) -> None:
    active = {tuple(r) for r in rows(run.pipeline, "SELECT meter_id, rule, series, event_time FROM alerts_active")}
    assert active == {a.key for a in run.expected.episodes.values() if a.state == "OPEN"}
    assert active, "the seed leaves no alert open at the end (the ack test needs one)"


def test_the_report_shows_the_open_alerts_and_the_time_to_resolve(run: Run, tmp_path: Path) -> None:
    data = load(run.pipeline)
    opened = {
        (r.meter_id, r.rule, r.series, pd.Timestamp(r.event_time).tz_localize(None).to_pydatetime())
        for r in data["open_alerts"].itertuples()
    }
    assert opened == {a.key for a in run.expected.episodes.values() if a.state == "OPEN"}
    took = sorted((r.rule, round(r.minutes, 6)) for r in data["resolved"].itertuples())
    assert took == sorted(
        (a.rule, round((a.resolved - a.opened) / 60_000, 6))
        for a in run.expected.episodes.values()
        if a.resolved is not None
    )
    report = tmp_path / "report.html"
    meterflow("report", "-f", str(run.manifest), "--out", str(report))
    text = report.read_text()
    assert 'id="open-alerts"' in text and 'id="time-to-resolve"' in text
    assert all(alert_id in text for alert_id in data["open_alerts"]["alert_id"])
    assert f"Open alerts (up to 300, most severe and oldest first) — {len(opened)} (UTC)" in text


def test_ack_and_resolve_go_through_the_running_job(run: Run, tmp_path: Path) -> None:
    """A continuous run restores the state; an acknowledgement and a resolution by hand reach it
    through the alert-commands topic and come back as transitions in ClickHouse."""
    [target, *_] = sorted((a for a in run.expected.episodes.values() if a.state == "OPEN"), key=lambda a: a.opened)
    [(alert_id,)] = rows(
        run.pipeline,
        f"SELECT alert_id FROM alerts FINAL WHERE meter_id = '{target.meter}' AND rule = '{target.rule}' "
        f"AND state = 'OPEN'",
    )
    listed = meterflow("alerts", "list", "-f", str(run.manifest), "--limit", "100").stdout
    assert alert_id in listed
    job = Process("run", "-f", str(write_manifest(run.pipeline, tmp_path)))
    try:
        job.wait_for(r"Flink log:", timeout=300)
        acked_at = datetime.now(UTC).replace(tzinfo=None)
        out = meterflow("alerts", "ack", alert_id, "--by", "ana", "-f", str(run.manifest)).stdout
        assert f"alert {alert_id} ({target.rule} on {target.meter}): acknowledged by ana" in " ".join(out.split())
        acked = poll(
            lambda: rows(run.pipeline, f"SELECT state, acknowledged_by, acknowledged_at FROM alerts FINAL "
                         f"WHERE alert_id = '{alert_id}'"),
            lambda r: r and r[0][1] == "ana", timeout=240,
        )  # fmt: skip
        assert acked[0][:2] == ("OPEN", "ana"), job.output
        assert acked[0][2] >= acked_at - timedelta(minutes=1)  # the wall clock of the command
        assert event_times(run, alert_id, "ACKNOWLEDGED") == [acked[0][2]]
        meterflow("alerts", "resolve", alert_id, "--by", "bo", "-f", str(run.manifest))
        resolved = poll(
            lambda: rows(run.pipeline, f"SELECT state, resolved_at FROM alerts FINAL WHERE alert_id = '{alert_id}'"),
            lambda r: r and r[0][0] == "RESOLVED", timeout=240,
        )  # fmt: skip
        assert resolved[0][1] >= acked[0][2]
        [(by, detail)] = rows(
            run.pipeline,
            f"SELECT by, detail FROM alert_events FINAL WHERE alert_id = '{alert_id}' AND transition = 'RESOLVED'",
        )
        assert (by, detail) == ("bo", "resolved by bo")
        assert alert_id not in meterflow("alerts", "list", "-f", str(run.manifest), "--limit", "100").stdout
        job.kill_group(signal.SIGINT)
        assert job.wait(timeout=180) == 0, job.output
    finally:
        job.stop()
    again = _meterflow_fails("alerts", "resolve", alert_id, "--by", "bo", "-f", str(run.manifest))
    assert "is already resolved" in again and len(again.strip().splitlines()) == 1


def _meterflow_fails(*args: str) -> str:
    result = subprocess.run([*METERFLOW, *args], capture_output=True, text=True, env=os.environ.copy(), check=False)
    assert result.returncode != 0, result.stdout
    return result.stdout + result.stderr
