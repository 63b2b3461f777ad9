"""The batch layer: closed days recomputed from the Iceberg lake by a Flink job in batch mode.

Public face (what ``meterflow batch``, the FlinkDeployment entry and the demo call):
:func:`run_batch` → :class:`BatchSummary`. The report and the BI files read what it serves, and
live with the serving layer (:mod:`meterflow_clickhouse.report`, :mod:`meterflow_clickhouse.exports`).
See docs/batch.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["BatchSummary", "run_batch"]

if TYPE_CHECKING:
    from flink_jobs.batch.run import BatchSummary, run_batch


def __getattr__(name: str) -> Any:
    """Import lazily: the pure modules (days, problems) must not pull in pandas/ClickHouse."""
    if name in ("run_batch", "BatchSummary"):
        from flink_jobs.batch import run

        return getattr(run, name)
    raise AttributeError(name)
