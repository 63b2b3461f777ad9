"""The operator's Prometheus metrics against a real kube-apiserver: scraped from the operator
process while a pipeline goes to Ready, and gone once the pipeline is deleted (docs/metrics.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from operator_support import Cluster, example, sinks_in

from meterflow.metrics import Samples, catalogue, scrape
from meterflow.stack.process import free_port
from tests.k8s.wait import until

pytestmark = [pytest.mark.integration, pytest.mark.k8s]


def test_reconciles_conditions_and_time_to_ready_follow_a_pipeline(
    cluster: Cluster, start_operator: Any, tmp_path: Path
) -> None:
    port = free_port()
    operator = start_operator(METERFLOW_OPERATOR_METRICS_PORT=str(port))
    url = f"http://127.0.0.1:{port}/metrics"
    name, namespace = "water-meters", cluster.namespace
    cluster.apply(example(name, namespace, sinks_in(tmp_path / "sinks")))
    cluster.wait_condition(name, "SchemaReady", "True")
    cluster.mark_topics_ready(name)
    cluster.set_flink_status(f"{name}-streaming", "RUNNING", "STABLE")
    cluster.wait_condition(name, "Ready", "True")

    def ready_seen() -> Samples | None:
        scraped = Samples.parse(scrape(url))
        return scraped if scraped.find("meterflow_operator_time_to_ready_seconds", pipeline=name) else None

    scraped = until(ready_seen, what="time to Ready in the metrics", alive=lambda: operator.alive)
    who = {"pipeline": name, "namespace": namespace}
    assert (
        scraped.value("meterflow_operator_condition", **who, type="Ready", status="True", reason="PipelineReady") == 1
    )
    assert scraped.value("meterflow_operator_condition", **who, type="Ready", status="False") in (None, 0.0)
    assert (scraped.value("meterflow_operator_reconciles_total", **who, outcome="ok") or 0) >= 1
    assert (scraped.value("meterflow_operator_reconciles_total", **who, outcome="error") or 0) == 0
    assert (scraped.value("meterflow_operator_time_to_ready_seconds", **who) or 0) > 0
    assert (scraped.value("meterflow_operator_reconcile_duration_seconds_count", **who) or 0) >= 1
    assert set(scraped.families) >= {m.name for m in catalogue("operator")}

    cluster.delete_pipeline(name)
    until(lambda: cluster.pipeline(name) is None, what="the pipeline gone", alive=lambda: operator.alive)

    def gone() -> Samples | None:
        scraped = Samples.parse(scrape(url))
        return None if scraped.find("meterflow_operator_condition", pipeline=name) else scraped

    after = until(gone, what="the pipeline's series gone", alive=lambda: operator.alive)
    assert after.find("meterflow_operator_time_to_ready_seconds", pipeline=name) == []
    assert after.find("meterflow_operator_reconciles_total", pipeline=name) == []
