"""A batch run's metrics: the textfile it leaves (exact values), and a failure that keeps the
time of the last success. The end-to-end batch tests run the real job; this checks the exporter."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from flink_jobs.batch import metrics as batch_metrics
from flink_jobs.batch.run import BatchSummary
from meterflow.metrics import Samples, batch_textfile, catalogue

ENDED = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
LATER = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("METERFLOW_HOME", str(tmp_path))
    monkeypatch.delenv("METERFLOW_PUSHGATEWAY", raising=False)
    return tmp_path


def _summary(status: str = "ok") -> BatchSummary:
    return BatchSummary(
        run_id="r1", pipeline="water-meters", days=[date(2026, 11, 29), date(2026, 11, 30)],
        readings=58_298, seconds=12.5, status=status,
    )  # fmt: skip


def test_a_run_leaves_every_batch_metric_in_its_textfile(home: Path) -> None:
    where = batch_metrics.export(_summary(), ENDED)
    assert where == str(home / "metrics" / "water-meters.batch.prom") == str(batch_textfile("water-meters"))
    scraped = Samples.parse(Path(where).read_text())
    assert {s.name: s.value for s in scraped.samples} == {
        "meterflow_batch_last_run_timestamp_seconds": ENDED.timestamp(),
        "meterflow_batch_last_run_failed": 0.0,
        "meterflow_batch_duration_seconds": 12.5,
        "meterflow_batch_days_recomputed": 2.0,
        "meterflow_batch_readings": 58_298.0,
        "meterflow_batch_last_success_timestamp_seconds": ENDED.timestamp(),
    }
    assert {s.labels["pipeline"] for s in scraped.samples} == {"water-meters"}
    assert scraped.families == {m.name: m.kind for m in catalogue("batch")}


def test_a_failed_run_keeps_the_last_success(home: Path) -> None:
    batch_metrics.export(_summary(), ENDED)
    batch_metrics.export(_summary("failed"), LATER)
    scraped = Samples.parse(batch_textfile("water-meters").read_text())
    assert scraped.value("meterflow_batch_last_run_failed") == 1.0
    assert scraped.value("meterflow_batch_last_run_timestamp_seconds") == LATER.timestamp()
    assert scraped.value("meterflow_batch_last_success_timestamp_seconds") == ENDED.timestamp()


def test_a_first_run_that_fails_has_no_last_success(home: Path) -> None:
    batch_metrics.export(_summary("failed"), ENDED)
    scraped = Samples.parse(batch_textfile("water-meters").read_text())
    assert scraped.find("meterflow_batch_last_success_timestamp_seconds") == []
    assert scraped.value("meterflow_batch_last_run_failed") == 1.0


def test_a_pushgateway_that_does_not_answer_is_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METERFLOW_PUSHGATEWAY", "http://127.0.0.1:9")  # discard port: refused
    assert batch_metrics.export(_summary(), ENDED) is None
