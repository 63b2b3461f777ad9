"""End to end on a simulated water network: stream, batch, re-run, a late reading, time travel, upkeep, outputs.

The module fixture drives one pipeline through every phase once (Flink jobs cost ~15 s each) and
records what it observed; the tests then check the observations:

1. three closed days are simulated (every injection but late readings), streamed to idle and
   recomputed with ``meterflow batch --from --to``; then recomputed again;
2. ``meterflow batch`` with the default range finds nothing due;
3. a reading arrives late (the streaming job keeps it out of its windows, writes it to the lake);
4. the default run now finds its day due and recomputes it;
5. ``--as-of`` the snapshot from before the late reading;
6. exports, the report (of that state), and snapshot expiry.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from kafka import KafkaProducer

from meterflow.spec import MeterPipeline, names_for
from meterflow.stack.broker import BrokerInfo
from meterflow.stack.endpoints import iceberg_location
from meterflow_iceberg.catalog import open_catalog
from tests.batch.support import METERFLOW, chromium_dom, fingerprint, meterflow, rows
from tests.conftest import unique_pipeline, write_manifest
from tests.streaming.harness import await_event

pytestmark = [pytest.mark.integration, pytest.mark.flink]

LATE_VALUE = 123.0
DRIFTING = "SELECT day, meter_id, measurement_type, drift, readings_drift FROM speed_vs_batch " \
    "WHERE drift != 0 OR readings_drift != 0 ORDER BY day, meter_id, measurement_type"  # fmt: skip


LAST_RUN = "SELECT status, day_from, day_to FROM batch_runs ORDER BY started_at DESC LIMIT 1"


def _zone_far_from_midnight() -> str:
    """A time zone whose local time is now nearest noon, so 'today' cannot change during the test."""
    now = datetime.now(UTC)
    zones = ["Australia/Brisbane", "Europe/Madrid", "America/New_York", "Asia/Kolkata", "UTC"]
    return min(
        zones, key=lambda z: abs(now.astimezone(ZoneInfo(z)).hour + now.astimezone(ZoneInfo(z)).minute / 60 - 12)
    )


@dataclass
class Run:
    """What the fixture saw, phase by phase."""

    pipeline: MeterPipeline
    manifest: Path
    days: list[date]
    late_day: date
    late_meter: str
    first: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    second: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    seen: dict[str, Any] = field(default_factory=dict)


def _lake_records(pipeline: MeterPipeline) -> int:
    table = open_catalog(iceberg_location(pipeline)).load_table(names_for(pipeline).readings_table)
    snapshot = table.current_snapshot()
    return int(snapshot.summary["total-records"] or 0) if snapshot and snapshot.summary else 0


def _current_snapshot(pipeline: MeterPipeline) -> int:
    table = open_catalog(iceberg_location(pipeline)).load_table(names_for(pipeline).readings_table)
    snapshot = table.current_snapshot()
    assert snapshot is not None
    return int(snapshot.snapshot_id)


def _reading(meter: str, at: datetime, value: float) -> bytes:
    return json.dumps(
        {"meter_id": meter, "timestamp": at.isoformat(timespec="milliseconds"), "measurement_type": "Pulse1",
         "series": "P1", "unit": "L", "value": value}
    ).encode()  # fmt: skip


def _send_late_reading(run: Run, broker: BrokerInfo, zone: ZoneInfo) -> None:
    """Stream a fresh reading (moves the watermark), then one from two days ago: it is late."""
    topic = names_for(run.pipeline).topics.readings
    process = subprocess.Popen(
        [*METERFLOW, "run", "-f", str(run.manifest)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=os.environ.copy(), start_new_session=True,
    )  # fmt: skip
    producer = KafkaProducer(bootstrap_servers=f"127.0.0.1:{broker.port}")
    try:
        before = _lake_records(run.pipeline)
        today = datetime.now(zone).replace(hour=0, minute=0, second=30, microsecond=0)
        producer.send(topic, key=run.late_meter.encode(), value=_reading(run.late_meter, today, 0.0))
        producer.flush()
        # as long as the run lives: a busy machine makes the reading later, not lost
        lake = partial(_lake_records, run.pipeline)
        await_event("the fresh reading in the lake", lake, lambda n: n == before + 1, [process])
        time.sleep(1.0)  # a watermark interval or five
        late_at = datetime.combine(run.late_day, datetime.min.time(), zone) + timedelta(hours=12, seconds=30)
        producer.send(topic, key=run.late_meter.encode(), value=_reading(run.late_meter, late_at, LATE_VALUE))
        producer.flush()
        await_event("the late reading in the lake", lake, lambda n: n == before + 2, [process])
    finally:
        producer.close()
        process.send_signal(signal.SIGINT)  # stops with a savepoint (a hang: pytest-timeout)
        out, _ = process.communicate()
    assert process.returncode == 0, out


@pytest.fixture(scope="module")
def water(broker: BrokerInfo, tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("water-batch")
    zone_name = _zone_far_from_midnight()
    zone = ZoneInfo(zone_name)
    pipeline = unique_pipeline(
        "water-meters", timeZone=zone_name, source={"partitions": 1}, flink={"checkpointInterval": "2s"}
    )
    manifest = write_manifest(pipeline, folder)
    today = datetime.now(zone).date()
    days = [today - timedelta(days=n) for n in (3, 2, 1)]
    start = datetime.combine(days[0], datetime.min.time(), zone).isoformat()
    meterflow("simulate", "-f", str(manifest), "--meters", "12", "--duration", "3d", "--seed", "7", "--start", start,
              "--inject", "--inject-rate", "late=0", "--no-progress")  # fmt: skip
    meterflow("run", "-f", str(manifest), "--until-idle")
    late_meter = rows(pipeline, "SELECT min(meter_id) FROM readings_agg WHERE measurement_type = 'Pulse1'")[0][0]
    run = Run(pipeline, manifest, days, late_day=days[1], late_meter=late_meter)
    span = ["--from", days[0].isoformat(), "--to", days[-1].isoformat()]
    seen = run.seen

    meterflow("batch", "-f", str(manifest), *span)
    run.first = fingerprint(pipeline)
    seen["drift_first"] = rows(pipeline, DRIFTING)
    seen["sources"] = rows(pipeline, "SELECT source, min(day), max(day) FROM consumption_daily GROUP BY source")
    meterflow("batch", "-f", str(manifest), *span)
    run.second = fingerprint(pipeline)
    seen["runs"] = rows(pipeline, "SELECT count(), countIf(status = 'ok') FROM batch_runs")
    meterflow("batch", "-f", str(manifest))
    seen["default_idle"] = rows(pipeline, LAST_RUN)

    seen["snapshot_before_late"] = _current_snapshot(pipeline)
    _send_late_reading(run, broker, zone)
    table = open_catalog(iceberg_location(pipeline)).load_table(names_for(pipeline).readings_table)
    lake = table.scan(row_filter="late == true").to_arrow().to_pylist()
    seen["lake_late"] = [(r["meter_id"], r["measurement_type"], r["value"]) for r in lake]
    seen["drift_stale"] = rows(pipeline, DRIFTING)

    meterflow("batch", "-f", str(manifest))
    seen["default_after_late"] = rows(pipeline, LAST_RUN)
    seen["drift_after"] = rows(pipeline, DRIFTING)
    seen["late_in_batch"] = rows(
        pipeline, "SELECT day, meter_id, late_readings FROM daily_stats WHERE late_readings > 0"
    )
    meterflow("batch", "-f", str(manifest), *span, "--as-of", str(seen["snapshot_before_late"]))
    seen["drift_as_of"] = rows(pipeline, DRIFTING)

    seen["exports"] = meterflow("export", "-f", str(manifest), "--out", str(folder / "bi")).stdout
    seen["export_dir"] = folder / "bi"
    seen["report"] = folder / "report.html"
    meterflow("report", "-f", str(manifest), "--out", str(seen["report"]))

    seen["snapshots_before_expiry"] = len(table.refresh().snapshots())
    seen["expire"] = meterflow("lake", "expire", "-f", str(manifest), "--older-than", "0s").stdout
    seen["snapshots_after_expiry"] = len(table.refresh().snapshots())
    seen["as_of_expired"] = meterflow(
        "batch", "-f", str(manifest), *span, "--as-of", str(seen["snapshot_before_late"]), check=False
    )
    return run


def test_batch_figures_agree_with_the_speed_layer_when_nothing_was_late(water: Run) -> None:
    assert water.seen["drift_first"] == []
    assert water.first["daily_stats"][0] > 0 and water.first["problem_meters"][0] > 0
    assert water.seen["sources"] == [("batch", water.days[0], water.days[-1])]


def test_rows_carry_meter_metadata_and_unknown_meters_are_labelled(water: Run) -> None:
    assert water.first["meters"][0] == 12  # the simulated meters, copied from <name>.meters
    labelled = rows(
        water.pipeline,
        "SELECT d.suburb = 'unknown', m.meter_id != '', count() FROM daily_stats AS d "
        "LEFT JOIN (SELECT meter_id FROM meters FINAL) AS m ON d.meter_id = m.meter_id GROUP BY 1, 2 ORDER BY 1, 2",
    )
    assert [(unknown, known) for unknown, known, _ in labelled] == [(False, True), (True, False)]
    [(by_suburb,)] = rows(water.pipeline, "SELECT sum(total_consumption) FROM daily_by_suburb")
    [(by_usage,)] = rows(water.pipeline, "SELECT sum(total_consumption) FROM daily_by_usage_type")
    [(total,)] = rows(water.pipeline, "SELECT sum(consumption) FROM daily_stats")
    assert by_suburb == pytest.approx(total) and by_usage == pytest.approx(total) and total > 0


def test_running_the_batch_twice_changes_nothing(water: Run) -> None:
    assert water.second == water.first
    assert water.seen["runs"] == [(2, 2)]
    assert water.seen["default_idle"] == [("up to date", None, None)]  # every closed day already recomputed


def test_a_late_reading_drifts_exactly_its_meter_day_once_recomputed(water: Run) -> None:
    seen = water.seen
    assert seen["lake_late"] == [(water.late_meter, "Pulse1", LATE_VALUE)]
    # before the recompute the batch has not seen it either: no drift yet
    assert seen["drift_stale"] == []
    # the default run finds the late reading's day due again
    [(status, first, last)] = seen["default_after_late"]
    assert status == "ok" and first <= water.late_day <= last
    assert seen["drift_after"] == [(water.late_day, water.late_meter, "Pulse1", -LATE_VALUE, -1)]
    assert seen["late_in_batch"] == [(water.late_day, water.late_meter, 1)]
    # time travel to the snapshot before it: zero again
    assert seen["drift_as_of"] == []


def test_exports_are_the_three_bi_files_in_csv_and_parquet(water: Run) -> None:
    folder: Path = water.seen["export_dir"]
    names = sorted(p.name for p in folder.iterdir())
    assert names == [f"{stem}.{ext}" for stem in ("daily_stats", "monthly_stats", "problem_meters")
                     for ext in ("csv", "parquet")]  # fmt: skip
    for stem in ("daily_stats", "monthly_stats", "problem_meters"):
        csv, parquet = pd.read_csv(folder / f"{stem}.csv"), pd.read_parquet(folder / f"{stem}.parquet")
        assert list(csv.columns) == list(parquet.columns)
        assert len(csv) == len(parquet) == rows(water.pipeline, f"SELECT count() FROM {stem}")[0][0] > 0
    daily = pd.read_csv(folder / "daily_stats.csv")
    assert daily["first_time"].str.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$").all()
    assert set(daily["day"]) == {d.isoformat() for d in water.days}


def _external_resources(text: str) -> list[str]:
    """Every src/href the page would load (scripts, styles, images)."""
    from html.parser import HTMLParser

    found: list[str] = []

    class Finder(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.extend(f"{tag} {v}" for k, v in attrs if k in ("src", "href") and tag in ("script", "link", "img"))

    Finder().feed(text)
    return found


def test_the_report_is_one_file_whose_charts_draw_in_a_browser(water: Run) -> None:
    report: Path = water.seen["report"]
    text = report.read_text()
    assert _external_resources(text) == []  # plotly.js is inline: the file works offline
    charts = ("consumption-per-day", "consumption-per-suburb", "alerts-by-rule", "problem-meters", "speed-vs-batch",
              "open-alerts", "time-to-resolve")  # fmt: skip
    for chart in charts:
        assert f'id="{chart}"' in text
    dom = chromium_dom(report)
    if dom is None:
        pytest.skip("chromium is not installed (make chromium); the HTML structure was checked")
    for chart in charts:
        start = dom.index(f'id="{chart}"')
        end = dom.find('class="meterflow-chart"', start)  # the next chart's section
        assert 'class="main-svg"' in dom[start : end if end > 0 else len(dom)], f"{chart} did not draw"
    assert "no data yet" not in dom


def test_old_snapshots_expire_and_time_travel_says_so(water: Run) -> None:
    seen = water.seen
    assert seen["snapshots_before_expiry"] > 1
    assert seen["snapshots_after_expiry"] == 1
    assert f"expired {seen['snapshots_before_expiry'] - 1} of {seen['snapshots_before_expiry']}" in seen["expire"]
    failed = seen["as_of_expired"]
    assert failed.returncode == 2
    assert failed.stderr.startswith(f"meterflow: --as-of {seen['snapshot_before_late']}: no such snapshot")
    assert len(failed.stderr.strip().splitlines()) == 1
