"""The operator killed (SIGKILL) again and again against a real kube-apiserver (issue 11).

* Ten times mid-reconcile: each round changes the spec so every child must change (the retention
  of every topic, the manifest in the ConfigMap, the FlinkDeployment's digest), starts the
  operator and kills it as soon as the first child shows the change — the ConfigMap, applied
  first — so the rest of the reconcile is cut off. A last start converges: every child once, at
  the last spec, owned once, the status at the last generation.
* During deletion (retention Delete): killed as soon as the first child is gone, twice; the next
  start finishes the deletion: no child left, the data dropped, the finalizer gone.

No controllers run here: nothing is garbage collected, so whatever the operator leaves behind
stays visible.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from operator_support import Cluster, example, schema_exists, sinks_in

from meterflow.spec import parse_manifest
from meterflow.spec.durations import to_millis
from meterflow.spec.topics import topic_plan
from tests.k8s.wait import until

pytestmark = [pytest.mark.integration, pytest.mark.k8s]

ROUNDS = 10


def _retention(cluster: Cluster, name: str) -> str | None:
    """The retention in the manifest the ConfigMap holds (what the operator applies first)."""
    config = cluster.config_maps(name).get(f"{name}-pipeline")
    if config is None:
        return None
    retention: str | None = yaml.safe_load(config["data"]["pipeline.yaml"])["spec"]["source"]["retention"]
    return retention


def _uids(obj: dict[str, Any]) -> list[str]:
    return [ref["uid"] for ref in obj["metadata"].get("ownerReferences", [])]


def test_ten_kills_mid_reconcile_converge_without_orphans_or_duplicates(
    cluster: Cluster, start_operator: Any, tmp_path: Path
) -> None:
    name = "water-meters"
    cluster.apply(example(name, cluster.namespace, sinks_in(tmp_path)))
    mid_way = 0
    for round_ in range(ROUNDS):
        retention = f"{8 + round_}d"
        cluster.patch_spec(name, {"source": {"retention": retention}})
        operator = start_operator()
        # the ConfigMap is applied first: once it shows the change, the rest is still to come
        until(
            lambda: _retention(cluster, name) == retention,  # noqa: B023
            interval=0.01, what=f"round {round_}", alive=lambda: operator.alive,  # noqa: B023
        )  # fmt: skip
        operator.kill()
        topics = cluster.topics(name)
        ms = str(to_millis(retention))
        mid_way += not all(t["spec"]["config"].get("retention.ms", ms) == ms for t in topics.values())

    operator = start_operator()
    final = cluster.pipeline(name)
    assert final is not None
    pipeline = parse_manifest(final)
    plan = {t.name: t for t in topic_plan(pipeline)}

    def converged() -> bool:
        topics = cluster.topics(name)
        status = (cluster.pipeline(name) or {}).get("status") or {}
        return (
            set(topics) == set(plan)
            and all(topics[n]["spec"]["config"] == plan[n].config for n in plan)
            and status.get("observedGeneration") == final["metadata"]["generation"]
        )

    until(converged, what="the last spec everywhere", describe=operator.log_tail, alive=lambda: operator.alive)
    cluster.wait_condition(name, "SchemaReady", "True")
    uid = final["metadata"]["uid"]
    everything = (
        list(cluster.topics().values())
        + list(cluster.flink_deployments().values())
        + list(cluster.config_maps(name).values())
    )
    assert len(cluster.topics()) == len(plan) == 7  # no orphan, no twin
    assert list(cluster.flink_deployments()) == [f"{name}-streaming"]
    assert list(cluster.config_maps(name)) == [f"{name}-pipeline"]
    assert all(_uids(child) == [uid] for child in everything)
    assert _retention(cluster, name) == f"{8 + ROUNDS - 1}d"
    assert (cluster.pipeline(name) or {})["metadata"]["finalizers"] == ["meterflow.io/finalizer"]
    assert mid_way >= 1, "no kill landed before the topics were updated"


def test_killed_during_deletion_it_still_deletes_everything(
    cluster: Cluster, start_operator: Any, tmp_path: Path
) -> None:
    name = "household-power"
    sinks = sinks_in(tmp_path)
    document = example(name, cluster.namespace, sinks, retention="Delete")
    topics = len(topic_plan(parse_manifest(document)))
    cluster.apply(document)
    operator = start_operator()
    until(
        lambda: len(cluster.topics(name)) == topics and cluster.flink_deployments(name),
        what=f"children of {name}", alive=lambda: operator.alive,
    )  # fmt: skip
    cluster.wait_condition(name, "SchemaReady", "True")
    children = topics + 1 + 1  # topics, the FlinkDeployment, the ConfigMap

    def left() -> int:
        return len(cluster.topics(name)) + len(cluster.flink_deployments(name)) + len(cluster.config_maps(name))

    cluster.delete_pipeline(name)
    for _ in range(2):  # cut the finalizer's work short twice
        before = left()
        until(
            lambda: left() < before or cluster.pipeline(name) is None,  # noqa: B023
            interval=0.01, what="a child deleted", alive=lambda: operator.alive,  # noqa: B023
        )  # fmt: skip
        operator.kill()
        operator = start_operator()
    until(
        lambda: cluster.pipeline(name) is None,
        what="the finalizer to let go", describe=operator.log_tail, alive=lambda: operator.alive,
    )  # fmt: skip
    assert left() == 0 < children
    found = schema_exists(
        sinks["clickhouse"]["dsn"], "household_power",
        sinks["iceberg"]["catalogUri"], sinks["iceberg"]["warehouse"], "household_power",
    )  # fmt: skip
    assert not found["database"]
    assert "household_power" not in found["namespaces"]
