"""meterflow's metric catalogue, the serving sink's collector and the status rules, without services.

The catalogue follows Prometheus' conventions and is the table of docs/metrics.md; the sink's
collector turns counter and alert records into exactly the expected exposition (folding old
minutes, following alerts open and closed); :mod:`meterflow.health` says what is wrong in the
exact words ``meterflow status`` prints. The same parts are checked on a real run in
tests/streaming/test_water_e2e.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest

from flink_jobs.streaming.job import job_config
from meterflow.health import Batch, Facts, problems, root_cause, screen
from meterflow.metrics import CATALOGUE, COUNTER, GAUGE, HISTOGRAM, Samples, flink_reporter_config, markdown_table
from meterflow_clickhouse.observe import FOLD_AFTER_S, SinkMetrics
from tests.conftest import unique_pipeline

DOCS = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def test_the_catalogue_follows_prometheus_conventions() -> None:
    names = [m.name for m in CATALOGUE]
    assert len(names) == len(set(names))
    for m in CATALOGUE:
        assert m.name.startswith("meterflow_"), m.name
        assert m.kind in (COUNTER, GAUGE, HISTOGRAM), m.name
        assert m.name.endswith("_total") == (m.kind == COUNTER), m.name
        assert m.labels[0] == "pipeline", m.name
        assert m.help.endswith("."), m.name
        if m.kind != COUNTER:
            assert not m.name.endswith(("_count", "_sum", "_bucket")), m.name


def test_docs_hold_the_catalogue_as_one_table() -> None:
    """docs/metrics.md has exactly `python -m meterflow.metrics`'s table (paste it after a change)."""
    assert markdown_table() in DOCS.read_text()


def test_flink_reporter_settings_reach_the_local_job() -> None:
    pipeline = unique_pipeline("water-meters")
    config = job_config(pipeline, metrics_port="9999")
    assert {k: v for k, v in config.items() if k.startswith("metrics.")} == {
        "metrics.reporter.prom.factory.class": "org.apache.flink.metrics.prometheus.PrometheusReporterFactory",
        "metrics.reporter.prom.port": "9999",
        "metrics.reporter.prom.scope.variables.additional": f"pipeline:{pipeline.name}",
        "metrics.reporter.prom.filterLabelValueCharacters": "false",
    }
    assert not any(k.startswith("metrics.") for k in job_config(pipeline))
    assert flink_reporter_config("p", "9249-9250")["metrics.reporter.prom.port"] == "9249-9250"


# --- the serving sink's collector ---------------------------------------------------------------


class _Result:
    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.result_rows = rows


class _Tables:
    """ClickHouse's answers to SinkMetrics.load (what an earlier run left)."""

    def __init__(self, newest: int, counters: list[tuple[str, int, int]], active: list[tuple[str, str]]) -> None:
        self.newest, self.counters, self.active = newest, counters, active

    def query(self, sql: str) -> _Result:
        if "max(minute)" in sql:
            return _Result([(self.newest,)])
        if "GROUP BY counter" in sql:
            before = int(sql.split("< ")[1].split(maxsplit=1)[0])
            totals: dict[str, int] = {}
            for counter, minute, value in self.counters:
                if minute < before:
                    totals[counter] = totals.get(counter, 0) + value
            return _Result(list(totals.items()))
        if "ingest_counters" in sql:
            after = int(sql.split(">= ")[1].split(maxsplit=1)[0])
            return _Result([(c, m, v) for c, m, v in self.counters if m >= after])
        assert "alerts_active" in sql, sql
        return _Result(list(self.active))


def counter(minute: str, name: str, value: int, version: int) -> bytes:
    return json.dumps({"minute": minute, "counter": name, "value": value, "version": version}).encode()


def transition(alert: str, rule: str, kind: str, state: str) -> bytes:
    return json.dumps({"alert_id": alert, "rule": rule, "transition": kind, "state": state, "version": 1}).encode()


def exposition(collector: SinkMetrics) -> Samples:
    registry = CollectorRegistry()
    registry.register(collector)
    return Samples.parse(generate_latest(registry).decode())


def test_sink_metrics_add_up_the_counters_topic_and_follow_alerts() -> None:
    sink = SinkMetrics("wm", "wm.counters", "wm.alerts")
    t0 = 1_800_000_000 - 1_800_000_000 % 60
    # an earlier run left two minutes (one older than the fold) and one open alert
    sink.load(
        _Tables(t0, [("valid", t0 - FOLD_AFTER_S - 60, 100), ("valid", t0, 10), ("dlq:bad_json", t0, 2)],
                [("a1", "HIGH_FLOW")]),
        "db",
    )  # fmt: skip
    minute = datetime.fromtimestamp(t0, UTC).isoformat().replace("+00:00", "Z")
    later = datetime.fromtimestamp(t0 + 60, UTC).isoformat().replace("+00:00", "Z")
    # running totals: a minute's newer total replaces its older one; a new minute adds
    pieces = [
        counter(minute, "valid", 12, 7), counter(minute, "on_time", 9, 8), counter(minute, "late", 1, 9),
        counter(later, "valid", 5, 10), counter(later, "on_time", 5, 11), counter(later, "dlq:out_of_range", 1, 12),
    ]  # fmt: skip
    sink.inserted("wm.counters", "ingest_counters", pieces, 6, 300, 0.02)
    sink.inserted(
        "wm.alerts", "alert_transitions_queue",
        [transition("a2", "LOW_BATTERY", "OPENED", "OPEN"), transition("a1", "HIGH_FLOW", "RESOLVED", "RESOLVED"),
         transition("a3", "HIGH_FLOW", "OPENED", "OPEN")],
        3, 400, 0.3,
    )  # fmt: skip
    sink.inserted("wm.aggregates", "readings_agg_queue", [], 1000, 90_000, 12.0)
    sink.retried("commit")
    got = exposition(sink)
    assert got.value("meterflow_readings_valid_total") == 100 + 12 + 5
    assert got.by("meterflow_dead_letters_total", "reason") == {"bad_json": 2, "out_of_range": 1}
    assert got.value("meterflow_readings_total") == 117 + 3
    assert got.value("meterflow_readings_on_time_total") == 14
    assert got.value("meterflow_readings_late_total") == 1
    assert got.value("meterflow_readings_duplicate_total") == 117 - 14 - 1
    assert got.by("meterflow_alerts_open", "rule") == {"HIGH_FLOW": 1, "LOW_BATTERY": 1}
    assert got.find("meterflow_alert_transitions_total", rule="HIGH_FLOW", transition="OPENED")[0].value == 1
    assert got.by("meterflow_sink_rows_total", "table") == {
        "ingest_counters": 6, "alert_transitions_queue": 3, "readings_agg_queue": 1000,
    }  # fmt: skip
    assert got.value("meterflow_sink_bytes_total", table="readings_agg_queue") == 90_000
    assert got.value("meterflow_sink_insert_duration_seconds_count", table="ingest_counters") == 1
    assert got.value("meterflow_sink_insert_duration_seconds_bucket", table="ingest_counters", le="0.025") == 1
    assert got.value("meterflow_sink_insert_duration_seconds_bucket", table="ingest_counters", le="0.01") == 0
    assert got.value("meterflow_sink_insert_duration_seconds_bucket", table="readings_agg_queue", le="10.0") == 0
    assert got.value("meterflow_sink_insert_duration_seconds_bucket", table="readings_agg_queue", le="+Inf") == 1
    assert got.value("meterflow_sink_insert_duration_seconds_sum", table="readings_agg_queue") == 12.0
    assert got.value("meterflow_sink_retries_total", operation="commit") == 1
    assert {s.labels["pipeline"] for s in got.samples} == {"wm"}


def test_sink_metrics_fold_old_minutes_and_ignore_changes_to_them() -> None:
    sink = SinkMetrics("wm", "wm.counters", "wm.alerts")
    stamp = lambda s: datetime.fromtimestamp(s, UTC).isoformat().replace("+00:00", "Z")  # noqa: E731
    t0 = 1_800_000_000 - 1_800_000_000 % 60
    sink.inserted("wm.counters", "ingest_counters", [counter(stamp(t0), "valid", 4, 1)], 1, 10, 0.01)
    later = t0 + FOLD_AFTER_S + 60
    sink.inserted("wm.counters", "ingest_counters", [counter(stamp(later), "valid", 3, 2)], 1, 10, 0.01)
    assert sink.totals() == {"valid": 7}
    assert sink._minutes == {"valid": {later: 3}} and sink._folded == {"valid": 4}
    # a folded minute that changes is not counted again
    sink.inserted("wm.counters", "ingest_counters", [counter(stamp(t0), "valid", 6, 3)], 1, 10, 0.01)
    assert sink.totals() == {"valid": 7}


# --- status: what is wrong, in its exact words --------------------------------------------------

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def healthy() -> Facts:
    return Facts(
        "water-meters", NOW, broker="127.0.0.1:9092", running=True, job_state="RUNNING", uptime_s=7980,
        restarts=0, checkpoint_interval_s=10, checkpoint_age_s=4, checkpoint_s=0.4, checkpoint_bytes=48_328,
        readings_waiting=0, last_reading_age_s=3, sink_lag={"water-meters.aggregates": 0, "water-meters.alerts": 0},
        sink_behind_s={"water-meters.aggregates": 0.0}, hour_in=12_345,
        hour_dead_letters={"bad_json": 8, "out_of_range": 4},
        open_alerts={"HIGH_FLOW": 2, "LOW_BATTERY": 1},
        last_batch=Batch(datetime(2026, 12, 1, 1, 31, tzinfo=UTC), "ok", 3, 1_234_567, 42.0, "batch ok"),
        web_ui="http://127.0.0.1:8081", metrics_url="http://127.0.0.1:9464/metrics",
    )  # fmt: skip


def test_a_healthy_pipeline_on_one_screen() -> None:
    assert screen(healthy()) == [
        "water-meters: healthy",
        "  broker      running at 127.0.0.1:9092",
        "  job         RUNNING for 2 h 13 min (0 restarts); Flink UI http://127.0.0.1:8081",
        "  checkpoint  4 s ago, took 0.4 s, 47.2 KB",
        "  lag         readings 0 (job) · aggregates 0 · alerts 0 (sink)",
        "  readings    last arrived 3 s ago; last hour: 12,345 in, 12 dead letters (bad_json 8, out_of_range 4)",
        "  alerts      3 open: HIGH_FLOW 2, LOW_BATTERY 1",
        "  batch       last run 2026-12-01 01:31 UTC ok: 3 days, 1,234,567 readings in 42 s",
        "  metrics     http://127.0.0.1:9464/metrics",
    ]


def test_a_stalled_pipeline_says_what_is_wrong_worst_first() -> None:
    stalled = healthy()
    stalled.sink_lag["water-meters.aggregates"] = 5_400
    stalled.sink_behind_s["water-meters.aggregates"] = 120.4
    stalled.readings_waiting, stalled.oldest_waiting_age_s = 80_000, 95
    stalled.checkpoint_age_s = 300
    lines = screen(stalled)
    assert lines[:4] == [
        "water-meters: sink 120 s behind on water-meters.aggregates (5,400 records wait)",
        "  also: job 95 s behind: 80,000 readings not read yet",
        "  also: no checkpoint for 300 s (one every 10 s expected)",
        "  broker      running at 127.0.0.1:9092",
    ]
    assert "  lag         readings 80,000 (job) · aggregates 5,400 · alerts 0 (sink)" in lines


def test_each_rule_in_one_line() -> None:
    def first(**changes: Any) -> str:
        facts = healthy()
        for key, value in changes.items():
            setattr(facts, key, value)
        found = problems(facts)
        return found[0] if found else "healthy"

    assert first() == "healthy"
    assert first(broker=None) == "Kafka broker not running: start it with `meterflow up`"
    assert first(
        job_state="RESTARTING", restarts=3, failure="RecordTooLargeException: The message is 1048664 bytes"
    ) == ("job restarting: RecordTooLargeException: The message is 1048664 bytes (3 restarts)")
    assert first(job_state="FAILED", failure="KafkaException: no broker") == "job failed: KafkaException: no broker"
    assert first(last_reading_age_s=1830) == "no readings for 30 min"
    assert first(last_reading_age_s=1790) == "healthy"
    assert first(running=False, readings_waiting=1200) == (
        "not running: 1,200 readings wait; start it with `meterflow run -f <manifest>`"
    )
    assert first(running=False) == "healthy"
    assert first(hour_in=100, hour_dead_letters={"bad_json": 9}) == (
        "9% of the last hour's records were dead letters (most: bad_json 9)"
    )
    failed = Batch(NOW, "failed", 0, 0, 3.0, "the batch job failed: no lake")
    assert first(last_batch=failed) == "last batch run failed: the batch job failed: no lake"
    assert first(checkpoint_age_s=None, uptime_s=200) == "no checkpoint completed in 200 s of running"
    assert first(sink_behind_s={"water-meters.alerts": 59.0}) == "healthy"


def test_root_cause_is_the_innermost_exception_without_its_package() -> None:
    trace = (
        "org.apache.flink.runtime.JobException: Recovery is suppressed\n\tat org.apache.flink.X.y(X.java:1)\n"
        "Caused by: org.apache.kafka.common.errors.RecordTooLargeException: The message is 1048664 bytes when "
        "serialized\n\tat org.apache.kafka.Z.z(Z.java:2)\n"
    )
    assert root_cause(trace) == "RecordTooLargeException: The message is 1048664 bytes when serialized"
    assert root_cause("java.io.IOException") == "IOException"
    assert root_cause("") == "unknown cause"
