"""The operator against a real kube-apiserver: deletion by retention policy, and batch runs.

Deletion goes through the operator's finalizer; no garbage collector runs here, so Retain is
asserted as released ownerReferences and Delete as objects actually deleted by the operator.
Batch runs are started by the operator's own timer on the cron schedule (and on request).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from operator_support import Cluster, example, schema_exists, sinks_in

from tests.k8s.kopf_process import KopfProcess
from tests.k8s.wait import until

pytestmark = [pytest.mark.integration, pytest.mark.k8s]


def _created(cluster: Cluster, name: str) -> str:
    until(lambda: len(cluster.topics(name)) == 7 and cluster.flink_deployments(name), what=f"children of {name}")
    cluster.wait_condition(name, "SchemaReady", "True")
    return str((cluster.pipeline(name) or {})["metadata"]["uid"])


def test_delete_with_retain_keeps_topics_and_data(cluster: Cluster, operator: KopfProcess, tmp_path: Path) -> None:
    sinks = sinks_in(tmp_path)
    cluster.apply(example("water-meters", cluster.namespace, sinks, retention="Retain"))
    uid = _created(cluster, "water-meters")

    cluster.delete_pipeline("water-meters")
    until(lambda: cluster.pipeline("water-meters") is None, timeout=30, what="the finalizer to let go")

    topics = cluster.topics("water-meters")
    assert len(topics) == 7
    for topic in topics.values():  # released: garbage collection would keep them
        assert not topic["metadata"].get("ownerReferences"), topic["metadata"]["name"]
    # compute goes with the pipeline: still owned, so garbage collection would delete it
    deployment = cluster.flink_deployments("water-meters")["water-meters-streaming"]
    assert [ref["uid"] for ref in deployment["metadata"]["ownerReferences"]] == [uid]
    found = schema_exists(
        sinks["clickhouse"]["dsn"], "water_meters",
        sinks["iceberg"]["catalogUri"], sinks["iceberg"]["warehouse"], "water_meters",
    )  # fmt: skip
    assert found["database"] and found["lake"] == ["water_meters.readings"]
    reasons = {e["reason"] for e in cluster.events()}
    assert "Retained" in reasons


def test_delete_with_delete_removes_children_and_data(cluster: Cluster, operator: KopfProcess, tmp_path: Path) -> None:
    sinks = sinks_in(tmp_path)
    cluster.apply(example("household-power", cluster.namespace, sinks, retention="Delete"))
    _created(cluster, "household-power")

    cluster.delete_pipeline("household-power")
    until(lambda: cluster.pipeline("household-power") is None, timeout=30, what="the finalizer to let go")
    assert cluster.topics("household-power") == {}
    assert cluster.flink_deployments("household-power") == {}
    assert cluster.config_maps("household-power") == {}
    found = schema_exists(
        sinks["clickhouse"]["dsn"], "household_power",
        sinks["iceberg"]["catalogUri"], sinks["iceberg"]["warehouse"], "household_power",
    )  # fmt: skip
    assert not found["database"]
    assert "household_power" not in found["namespaces"]


def test_batch_runs_on_request_and_on_schedule(cluster: Cluster, start_operator: Any, tmp_path: Path) -> None:
    start_operator(METERFLOW_OPERATOR_BATCH_HISTORY="1")
    cluster.apply(example("water-meters", cluster.namespace, sinks_in(tmp_path), batch={"schedule": "* * * * *"}))
    _created(cluster, "water-meters")
    scheduled = cluster.wait_condition("water-meters", "BatchScheduled", "True")
    assert "'* * * * *' in Australia/Brisbane" in scheduled["message"]

    # on request: annotate, the operator starts a run and removes the annotation
    cluster.server.kubectl("annotate", "mp", "water-meters", "-n", cluster.namespace, "meterflow.io/run-batch=now")

    def manual_run() -> dict[str, Any] | None:
        runs = [d for n, d in cluster.flink_deployments("water-meters").items() if "batch-manual" in n]
        return runs[0] if runs else None

    run = until(manual_run, timeout=30, what="a batch run on request")
    assert run["spec"]["job"]["upgradeMode"] == "stateless"
    assert run["spec"]["job"]["args"] == ["-pym", "flink_jobs.batch", "--manifest", "/opt/meterflow/pipeline.yaml"]
    assert run["metadata"]["ownerReferences"][0]["name"] == "water-meters"
    until(
        lambda: (
            "meterflow.io/run-batch"
            not in ((cluster.pipeline("water-meters") or {})["metadata"].get("annotations") or {})
        ),
        what="the run-batch annotation to be removed",
    )
    until(
        lambda: (
            ((cluster.pipeline("water-meters") or {})["status"].get("lastBatch") or {}).get("name")
            == run["metadata"]["name"]
        ),
        what="status.lastBatch to name the run",
    )

    # on schedule: the next minute; the older run is pruned (history 1)
    def scheduled_run() -> dict[str, Any] | None:
        runs = cluster.flink_deployments("water-meters")
        names = [n for n in runs if n.startswith("water-meters-batch-2")]
        return runs[names[0]] if names and len(runs) == 2 else None

    run = until(scheduled_run, timeout=75, what="the scheduled batch run (and the manual one pruned)")
    cluster.set_flink_status(run["metadata"]["name"], "FINISHED", "STABLE")

    def last_batch() -> dict[str, Any] | None:
        batch = (cluster.pipeline("water-meters") or {})["status"].get("lastBatch") or {}
        return batch if batch.get("name") == run["metadata"]["name"] and batch.get("state") == "FINISHED" else None

    batch = until(last_batch, timeout=30, what="status.lastBatch FINISHED")
    assert batch["time"] == run["metadata"]["annotations"]["meterflow.io/scheduled-time"]
    assert batch["time"].endswith(":00Z")
    out = cluster.server.kubectl("get", "mp", "water-meters", "-n", cluster.namespace).stdout
    assert "LAST BATCH" in out.splitlines()[0]
    reasons = {e["reason"] for e in cluster.events()}
    assert {"BatchStarted", "Pruned"} <= reasons
