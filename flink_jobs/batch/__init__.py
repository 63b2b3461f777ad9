"""The batch layer: closed days recomputed from the Iceberg lake with Flink SQL in batch mode.

Public face (what ``meterflow batch|export|report``, the FlinkDeployment entry and the demo call):
:func:`run_batch` → :class:`BatchSummary`, :func:`export` → the three BI files, and
:func:`write_report` → one self-contained HTML report. See docs/batch.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["BatchSummary", "export", "run_batch", "write_report"]

if TYPE_CHECKING:
    from flink_jobs.batch.exports import export
    from flink_jobs.batch.report import write_report
    from flink_jobs.batch.run import BatchSummary, run_batch


def __getattr__(name: str) -> Any:
    """Import lazily: the pure modules (days, sql, problems) must not pull in pandas/ClickHouse."""
    if name in ("run_batch", "BatchSummary"):
        from flink_jobs.batch import run

        return getattr(run, name)
    if name == "export":
        from flink_jobs.batch.exports import export

        return export
    if name == "write_report":
        from flink_jobs.batch.report import write_report

        return write_report
    raise AttributeError(name)
