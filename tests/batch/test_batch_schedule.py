"""``meterflow batch --schedule``: the cron expression read in the pipeline's time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flink_jobs.batch import run as batch_run
from flink_jobs.batch.schedule import next_fire, run_on_schedule
from meterflow.errors import MeterflowError
from tests.conftest import unique_pipeline


def test_next_fire_is_in_the_pipeline_time_zone() -> None:
    after = datetime(2024, 5, 1, 0, 0, tzinfo=UTC)  # 10:00 in Brisbane
    assert next_fire("30 1 * * *", "Australia/Brisbane", after) == datetime(2024, 5, 1, 15, 30, tzinfo=UTC)
    assert next_fire("30 1 * * *", "UTC", after) == datetime(2024, 5, 1, 1, 30, tzinfo=UTC)
    # across the autumn change in Madrid: 02:30 local on 30 Oct 2016 is CEST (00:30Z)
    assert next_fire("30 2 * * *", "Europe/Madrid", datetime(2016, 10, 29, 12, tzinfo=UTC)) == datetime(
        2016, 10, 30, 0, 30, tzinfo=UTC
    )


def test_the_loop_fires_at_each_cron_time_and_survives_a_failed_run(monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = unique_pipeline("water-meters", batch={"schedule": "0 * * * *"}, timeZone="UTC")
    clock = [datetime(2024, 5, 1, 10, 59, 30, tzinfo=UTC)]
    fired: list[datetime] = []

    def fake_run(p: object, echo: object = None) -> object:
        fired.append(clock[0])
        if len(fired) == 1:
            raise MeterflowError("the lake is unreachable")
        return type("S", (), {"describe": lambda self: "ok"})()

    def sleep(seconds: float) -> None:
        clock[0] += timedelta(seconds=seconds)

    monkeypatch.setattr(batch_run, "run_batch", fake_run)
    lines: list[str] = []
    n = run_on_schedule(pipeline, echo=lines.append, clock=lambda: clock[0], sleep=sleep, max_runs=2)
    assert n == 2
    assert fired == [datetime(2024, 5, 1, 11, 0, tzinfo=UTC), datetime(2024, 5, 1, 12, 0, tzinfo=UTC)]
    assert "batch run failed: the lake is unreachable" in lines
    assert lines[0] == "next batch run at 2024-05-01T11:00+00:00 ('0 * * * *', UTC)"
