"""Flink's commit bookkeeping in the lake, and the repair a drained run needs.

Flink's Iceberg committer writes, in the summary of every snapshot it commits, the Flink job id,
its own operator id and ``flink.max-committed-checkpoint-id``. A job restored from a checkpoint or
savepoint of job J reads J's newest such snapshot and commits only checkpoints above that id
(everything at or below it is in the table already).

A *drained* stop (``meterflow run --until-idle``) ends J's input: the committer makes a last commit
with the checkpoint id ``Long.MAX_VALUE``. The next run restores the savepoint taken before the
drain — J's state — reads J's maximum as ``Long.MAX_VALUE``, and then never commits again: every
reading it processes stays out of the lake (found when a continuous run after a run to idle never
landed its readings). :func:`reopen_after_drain` repairs that right after the drain: an empty
snapshot records J's maximum as the savepoint's own checkpoint id, which is exactly what is in the
table from J's state — the savepoint's checkpoint was committed when it completed, and the drain
committed the rest. Called by :mod:`flink_jobs.streaming.runner`.
"""

from __future__ import annotations

from pyiceberg.table import Table

END_OF_INPUT = str(2**63 - 1)
"""The checkpoint id Flink's Iceberg committer gives its commit at the end of input (Long.MAX_VALUE)."""
JOB_ID = "flink.job-id"
OPERATOR_ID = "flink.operator-id"
MAX_COMMITTED = "flink.max-committed-checkpoint-id"


def reopen_after_drain(table: Table, job_id: str, checkpoint_id: int) -> bool:
    """When job ``job_id``'s newest commit is its end-of-input one, record its maximum committed
    checkpoint as ``checkpoint_id`` (the savepoint the next run restores); True when it did."""
    snapshot = table.current_snapshot()
    while snapshot is not None:
        summary = snapshot.summary.additional_properties if snapshot.summary else {}
        if summary.get(JOB_ID) == job_id and MAX_COMMITTED in summary:
            if summary[MAX_COMMITTED] != END_OF_INPUT:
                return False
            properties = {JOB_ID: job_id, MAX_COMMITTED: str(checkpoint_id)}
            if OPERATOR_ID in summary:
                properties[OPERATOR_ID] = summary[OPERATOR_ID]
            table.append(table.schema().as_arrow().empty_table(), snapshot_properties=properties)
            return True
        snapshot = table.snapshot_by_id(snapshot.parent_snapshot_id) if snapshot.parent_snapshot_id else None
    return False
