"""A batch run's Prometheus metrics (the ``batch`` part of :data:`meterflow.metrics.CATALOGUE`).

A run ends long before a scrape would find it, so it leaves its metrics behind: pushed to the
Pushgateway named by ``$METERFLOW_PUSHGATEWAY`` (the operator sets it on the batch
FlinkDeployments when the chart has one), else written as a node_exporter textfile,
``$METERFLOW_HOME/metrics/<pipeline>.batch.prom``, which ``meterflow metrics`` and ``meterflow
status`` read. A failed run keeps the last success's time: the textfile's previous value, or, on
the Pushgateway, by leaving that metric out of a ``pushadd`` (it replaces only what it sends).
Called by :func:`flink_jobs.batch.run.run_batch` at the end of every run.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Gauge, pushadd_to_gateway, write_to_textfile

from meterflow.metrics import PUSHGATEWAY_ENV, Samples, batch_textfile, metric

if TYPE_CHECKING:
    from flink_jobs.batch.run import BatchSummary

log = logging.getLogger(__name__)

JOB = "meterflow-batch"
"""The Pushgateway's job label of every batch run (grouped further by pipeline)."""
LAST_SUCCESS = "meterflow_batch_last_success_timestamp_seconds"


def registry_for(summary: BatchSummary, ended: datetime, last_success: float | None) -> CollectorRegistry:
    """The run's metrics: ``last_success`` is the previous success's time (None: none known);
    a successful run sets it to ``ended``."""
    registry = CollectorRegistry()
    failed = summary.status == "failed"
    values = {
        "meterflow_batch_last_run_timestamp_seconds": ended.timestamp(),
        "meterflow_batch_last_run_failed": 1.0 if failed else 0.0,
        "meterflow_batch_duration_seconds": summary.seconds,
        "meterflow_batch_days_recomputed": float(len(summary.days)),
        "meterflow_batch_readings": float(summary.readings),
        LAST_SUCCESS: last_success if failed else ended.timestamp(),
    }
    for name, value in values.items():
        if value is None:
            continue
        definition = metric(name)
        Gauge(name, definition.help, list(definition.labels), registry=registry).labels(summary.pipeline).set(value)
    return registry


def export(summary: BatchSummary, ended: datetime) -> str | None:
    """Push or write the run's metrics; where they went (None when that failed: a warning says
    why, since the run's work matters more than its metrics)."""
    gateway = os.environ.get(PUSHGATEWAY_ENV, "")
    try:
        if gateway:
            registry = registry_for(summary, ended, None)
            pushadd_to_gateway(gateway, job=JOB, grouping_key={"pipeline": summary.pipeline}, registry=registry)
            return gateway
        path = batch_textfile(summary.pipeline)
        previous = Samples.parse(path.read_text()).value(LAST_SUCCESS) if path.exists() else None
        path.parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(path), registry_for(summary, ended, previous))
        return str(path)
    except OSError as exc:
        log.warning("batch metrics not exported to %s: %s", gateway or batch_textfile(summary.pipeline), exc)
        return None
