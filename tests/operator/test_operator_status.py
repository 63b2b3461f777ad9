"""Status conditions, settings and the entry point of the operator, without a cluster."""

from __future__ import annotations

from typing import Any

import pytest

from meterflow_operator.__main__ import kopf_args
from meterflow_operator.settings import Settings
from meterflow_operator.status import (
    Condition,
    merge_conditions,
    ready_condition,
    status_patch,
    streaming_condition,
    topics_condition,
)

NAMES = ["wm.readings", "wm.alerts"]


def topic(name: str, ready: str | None, generation: int = 1, observed: int | None = 1, **extra: str) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if ready is not None:
        status["conditions"] = [{"type": "Ready", "status": ready, **extra}]
    if observed is not None:
        status["observedGeneration"] = observed
    return {"metadata": {"name": name, "generation": generation}, "status": status}


def test_topics_ready_when_strimzi_says_so() -> None:
    topics = {n: topic(n, "True") for n in NAMES}
    assert topics_condition(NAMES, topics, "meterflow") == Condition(
        "TopicsReady", "True", "TopicsReady", "2 topics ready on Kafka cluster meterflow"
    )


def test_topics_waiting_for_strimzi() -> None:
    cond = topics_condition(
        NAMES, {"wm.readings": topic("wm.readings", "True"), "wm.alerts": topic("wm.alerts", None)}, "k"
    )
    assert (cond.status, cond.reason) == ("False", "WaitingForStrimzi")
    assert "wm.alerts" in cond.message and "wm.readings" not in cond.message
    # a Ready condition for an older generation is not an answer yet
    stale = {n: topic(n, "True", generation=2, observed=1) for n in NAMES}
    assert topics_condition(NAMES, stale, "k").reason == "WaitingForStrimzi"


def test_topics_not_ready_carries_strimzi_reason() -> None:
    bad = topic("wm.alerts", "False", reason="KafkaError", message="Replication factor larger than brokers")
    cond = topics_condition(NAMES, {"wm.readings": topic("wm.readings", "True"), "wm.alerts": bad}, "k")
    assert (cond.status, cond.reason) == ("False", "TopicNotReady")
    assert "KafkaError: Replication factor larger than brokers" in cond.message
    assert topics_condition(NAMES, {"wm.readings": topic("wm.readings", "True")}, "k").reason == "TopicMissing"


def deployment(state: str | None, lifecycle: str | None = None, **status: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"metadata": {"name": "wm-streaming", "generation": 1}, "status": dict(status)}
    if state:
        body["status"]["jobStatus"] = {"state": state}
    if lifecycle:
        body["status"]["lifecycleState"] = lifecycle
    return body


@pytest.mark.parametrize(
    ("fd", "suspended", "schema", "expected"),
    [
        (deployment("RUNNING", "STABLE"), False, True, ("True", "JobRunning")),
        (deployment("RUNNING", "DEPLOYED"), False, True, ("True", "JobRunning")),
        (deployment("RUNNING", "UPGRADING"), False, True, ("False", "LifecycleUpgrading")),
        (deployment("FAILED", "FAILED", error="boom"), False, True, ("False", "JobFailed")),
        (deployment("RECONCILING", "DEPLOYED"), False, True, ("False", "JobReconciling")),
        (deployment(None), False, True, ("False", "WaitingForFlinkOperator")),
        (deployment("RUNNING", "STABLE", observedGeneration=0), False, True, ("False", "SpecChangePending")),
        (deployment("SUSPENDED", "SUSPENDED"), True, True, ("False", "Suspended")),
        (None, False, False, ("False", "WaitingForSchema")),
        (None, False, True, ("False", "NotCreated")),
    ],
)
def test_streaming_condition(fd: Any, suspended: bool, schema: bool, expected: tuple[str, str]) -> None:
    cond = streaming_condition(fd, suspended=suspended, schema_ready=schema)
    assert (cond.type, cond.status, cond.reason) == ("StreamingJobReady", *expected)


def test_failed_job_message_names_the_error() -> None:
    cond = streaming_condition(
        deployment("FAILED", "FAILED", error="OutOfMemoryError"), suspended=False, schema_ready=True
    )
    assert cond.message == "wm-streaming: job FAILED, lifecycle FAILED: OutOfMemoryError"


def test_ready_condition() -> None:
    ok = [Condition.true("TopicsReady", "TopicsReady"), Condition.true("SchemaReady", "SchemaApplied")]
    assert ready_condition(ok, suspended=False) == Condition.true(
        "Ready", "PipelineReady", "topics, schema, streaming job and batch schedule are ready"
    )
    mixed = [*ok, Condition.false("StreamingJobReady", "JobFailed")]
    assert ready_condition(mixed, suspended=False) == Condition.false(
        "Ready", "ComponentsNotReady", "StreamingJobReady: JobFailed"
    )
    assert ready_condition(ok, suspended=True).reason == "Suspended"


def test_merge_conditions_moves_transition_time_only_on_a_flip() -> None:
    before = [
        {
            "type": "Ready",
            "status": "False",
            "reason": "X",
            "message": "",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        },
        {
            "type": "TopicsReady",
            "status": "True",
            "reason": "T",
            "message": "",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        },
    ]
    now = "2026-02-02T00:00:00Z"
    merged = merge_conditions(
        before,
        [Condition.true("TopicsReady", "TopicsReady", "6 topics"), Condition.true("Ready", "PipelineReady")],
        now,
        3,
    )
    assert merged == [
        {"type": "Ready", "status": "True", "reason": "PipelineReady", "message": "", "lastTransitionTime": now,
         "observedGeneration": 3},
        {"type": "TopicsReady", "status": "True", "reason": "TopicsReady", "message": "6 topics",
         "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 3},
    ]  # fmt: skip


def test_status_patch_only_changes() -> None:
    current = {"observedGeneration": 1, "streamingJobState": "RUNNING", "lastBatch": {"name": "a"}}
    desired = {"observedGeneration": 2, "streamingJobState": "RUNNING", "lastBatch": None, "children": {"x": 1}}
    assert status_patch(current, desired) == {"observedGeneration": 2, "lastBatch": None, "children": {"x": 1}}
    assert status_patch(None, {"streamingJobState": None}) == {}


def test_settings_from_env() -> None:
    settings = Settings.from_env(
        {
            "METERFLOW_OPERATOR_RESYNC_SECONDS": "2.5",
            "METERFLOW_OPERATOR_SERVER_TIMEOUT": "10",
            "METERFLOW_OPERATOR_FLINK_SERVICE_ACCOUNT": "flink-jobs",
            "METERFLOW_OPERATOR_POSTING_LEVEL": "warning",
            "METERFLOW_OPERATOR_CLICKHOUSE_DSN": "",
            "UNRELATED": "x",
        }
    )
    assert settings.resync_seconds == 2.5
    assert settings.server_timeout == 10 and isinstance(settings.server_timeout, int)
    assert settings.flink_service_account == "flink-jobs"
    assert settings.posting_level_number == 30
    assert settings.clickhouse_dsn is None
    assert Settings.from_env({}) == Settings()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"METERFLOW_OPERATOR_MAX_WORKERS": "many"}, "METERFLOW_OPERATOR_MAX_WORKERS='many' is not a int"),
        ({"METERFLOW_OPERATOR_POSTING_LEVEL": "LOUD"}, "is not a logging level"),
        ({"METERFLOW_OPERATOR_STATE_URI": "/tmp/state"}, "must be a durable URI"),
        ({"METERFLOW_OPERATOR_RESYNC_SECONDS": "0"}, "must be positive"),
    ],
)
def test_settings_reject_nonsense(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings.from_env(env)


def test_retry_delay_backs_off_exponentially() -> None:
    settings = Settings(retry_seconds=5, max_retry_seconds=60)
    assert [settings.retry_delay(r) for r in range(6)] == [5, 10, 20, 40, 60, 60]


def test_python_dash_m_runs_kopf_with_our_defaults() -> None:
    assert kopf_args([], {}) == [
        "run", "-m", "meterflow_operator.main", "--standalone", "--all-namespaces",
        "--liveness=http://0.0.0.0:8080/healthz",
    ]  # fmt: skip
    assert kopf_args(["-v"], {"METERFLOW_OPERATOR_NAMESPACE": "a, b"}) == [
        "run", "-m", "meterflow_operator.main", "--standalone", "--namespace=a", "--namespace=b",
        "--liveness=http://0.0.0.0:8080/healthz", "-v",
    ]  # fmt: skip
    given = ["-n", "prod", "--liveness", "http://0.0.0.0:9090/healthz"]
    assert kopf_args(given, {}) == ["run", "-m", "meterflow_operator.main", "--standalone", *given]
