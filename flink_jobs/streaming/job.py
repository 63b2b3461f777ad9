"""Configure and submit the streaming job (both runtimes).

:func:`job_config` holds every Flink setting the job relies on, as data; :func:`submit` builds the
JVM job from the plan of :mod:`flink_jobs.streaming.plan` in a PyFlink StreamExecutionEnvironment
and submits it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flink_jobs.streaming.plan import job_name, plan_json
from flink_jobs.streaming.restore import checkpoint_root, savepoint_root
from meterflow.metrics import flink_reporter_config
from meterflow.spec.durations import to_millis
from meterflow.spec.model import MeterPipeline

RESTART_ATTEMPTS = 5
"""Failures tolerated within :data:`RESTART_WINDOW` before the job is declared FAILED."""
RESTART_WINDOW = "5 min"

JOB_BUILDER = "io.meterflow.stream.StreamingJob"


def job_config(
    pipeline: MeterPipeline,
    state_dir: Path | None = None,
    restore_from: Path | None = None,
    web_ui_port: str | None = None,
    metrics_port: str | None = None,
) -> dict[str, str]:
    """Flink settings of the streaming job; local paths only when ``state_dir`` is given, Flink's
    Prometheus reporter (on the local mini-cluster) when ``metrics_port`` is."""
    flink = pipeline.spec.flink
    config = {
        "pipeline.name": job_name(pipeline),
        "parallelism.default": str(flink.parallelism),
        "execution.checkpointing.interval": f"{to_millis(flink.checkpoint_interval)} ms",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "execution.checkpointing.num-retained": "2",
        "state.backend.type": "hashmap",
        # The operators hand records to each other without copies (none keeps a reference).
        "pipeline.object-reuse": "true",
        # A partly filled network buffer waits at most this long: an alert's hop to its operator.
        "execution.buffer-timeout.interval": "20 ms",
        # A poison record or an outage restarts the job a few times, then it fails and says why.
        "restart-strategy.type": "failure-rate",
        "restart-strategy.failure-rate.max-failures-per-interval": str(RESTART_ATTEMPTS),
        "restart-strategy.failure-rate.failure-rate-interval": RESTART_WINDOW,
        "restart-strategy.failure-rate.delay": "2 s",
    }
    if state_dir is not None:
        config |= {
            "execution.checkpointing.dir": checkpoint_root(state_dir).as_uri(),
            "execution.checkpointing.savepoint-dir": savepoint_root(state_dir).as_uri(),
            "taskmanager.numberOfTaskSlots": str(flink.parallelism),
        }
    if restore_from is not None:
        config["execution.state-recovery.path"] = restore_from.as_uri()
    if web_ui_port is not None:
        config["rest.bind-port"] = web_ui_port
        config["rest.bind-address"] = "127.0.0.1"
        config["rest.address"] = "127.0.0.1"
    if metrics_port is not None:
        config |= flink_reporter_config(pipeline.name, metrics_port)
    return config


def build(env: Any, plan: dict[str, Any]) -> None:
    """Add the JVM job of ``plan`` to the PyFlink StreamExecutionEnvironment ``env``."""
    from pyflink.java_gateway import get_gateway

    builder = get_gateway().jvm
    for part in JOB_BUILDER.split("."):
        builder = getattr(builder, part)
    builder.build(env._j_stream_execution_environment, plan_json(plan))


def submit(env: Any, plan: dict[str, Any]) -> Any:
    """Build and submit the job; its PyFlink JobClient."""
    build(env, plan)
    return env.execute_async(plan["job_name"])


def explain(env: Any, plan: dict[str, Any]) -> str:
    """The job graph as Flink's JSON execution plan (``meterflow run --explain``)."""
    build(env, plan)
    return str(env.get_execution_plan())
