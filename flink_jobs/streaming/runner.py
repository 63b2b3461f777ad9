"""Run the streaming job and its serving sink until told to stop (both runtimes).

:func:`run_local` is ``meterflow run``: it provisions the pipeline on the embedded stack
(:func:`meterflow_provision.provision`: topics, Iceberg table, ClickHouse schema and serving
views, meter metadata), restores the newest checkpoint or savepoint, submits the job
to PyFlink's mini-cluster and copies results into ClickHouse while the job runs. It stops

* with ``until_idle``: once the job has committed every readings offset (so everything read is
  checkpointed, Iceberg included) — it takes a savepoint for the next run, then *drains*: the
  watermark jumps to the end of event time and every open window fires;
* after ``duration_s``, or on Ctrl-C: with a savepoint, without draining (windows stay open);
* when the job ends on its own (failure included).

:func:`run_in_cluster` is the FlinkDeployment's entry: publish the meters file (the rest was
provisioned by the operator and Strimzi), submit, then sink until the job ends.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from flink_jobs.runtime import (
    prepare_local_jvm,
    stop_with_savepoint,
    stream_environment,
    trigger_savepoint,
    web_ui_port,
)
from flink_jobs.streaming.job import RESTART_ATTEMPTS, RESTART_WINDOW, job_config, submit
from flink_jobs.streaming.observe import RunMetrics
from flink_jobs.streaming.plan import KafkaEndpoint, job_plan
from flink_jobs.streaming.restore import checkpoint_id, drained_root, latest_restore_point, prune, savepoint_root
from meterflow import kafka_clients
from meterflow.errors import MeterflowError
from meterflow.metrics import CLUSTER_PORT
from meterflow.paths import pipeline_state
from meterflow.spec.model import MeterPipeline
from meterflow.spec.names import PipelineNames, names_for
from meterflow.stack.broker import probe
from meterflow.stack.endpoints import clickhouse_dsn, iceberg_location, in_flink_cluster, job_endpoints, kafka_bootstrap
from meterflow.stack.lock import command_line, hold_pipeline
from meterflow.stack.process import free_port
from meterflow_clickhouse.observe import SinkMetrics
from meterflow_clickhouse.sink import ServingSink, routes
from meterflow_iceberg.catalog import open_catalog
from meterflow_iceberg.committed import reopen_after_drain
from meterflow_provision import provision, publish_meter_file, sink_group

if TYPE_CHECKING:
    from meterflow_clickhouse.anomalies import WindowScorer

CONTINUOUS_IDLE_TIMEOUT_MS = 30_000
"""How long a silent partition may hold the watermark back in a continuous run.

Runs that end with a drain (``until_idle``) turn idleness off: Flink 2.2 swallows the drain's
final watermark when its source is idle, and the last windows would never fire (measured).
"""

_TERMINAL = {"FINISHED", "FAILED", "CANCELED"}

FLINK_REST_ENV = "METERFLOW_FLINK_REST"
"""The Flink REST API of the JobManager the job runs in (default http://localhost:8081)."""

STATUS_EVERY_S = 0.5
"""How often the run loop asks the JVM for the job's state (a gateway round trip) between polls of the sink."""


SAVEPOINT_TIMEOUT_S = 300.0
"""How long a stop waits for its savepoint (and asks again while the job's tasks are starting)."""
INTERRUPTED_SAVEPOINT_S = 60.0
INTERRUPTED_SAVEPOINT_RETRY_S = 20.0
"""The same after Ctrl-C: a job that cannot save by then (one in a restart loop) is cancelled
instead; its retained checkpoints remain."""


class JobFailedError(MeterflowError):
    """The Flink job ended in a failure (its restart strategy gave up)."""


class StopFailedError(MeterflowError):
    """The run could not save its state with a savepoint when it stopped (the job was cancelled)."""


class InterruptedRunError(StopFailedError):
    """Ctrl-C, and the job could not save its state with a savepoint."""

    exit_code = 130


@dataclass
class RunSummary:
    """What a run did, for the CLI and the tests."""

    job_id: str
    web_ui: str | None
    restored_from: Path | None
    final_state: str
    savepoint: str | None = None
    seconds: float = 0.0
    sink_rows: dict[str, int] = field(default_factory=dict)


def serving_sink(
    pipeline: MeterPipeline, bootstrap: str, names: PipelineNames, observer: SinkMetrics | None = None
) -> ServingSink:
    return ServingSink(
        bootstrap=bootstrap,
        dsn=clickhouse_dsn(pipeline),
        database=names.clickhouse_database,
        routes=routes(names.topics),
        group_id=sink_group(names),
        observer=observer,
        after_windows=anomaly_scorer(pipeline, names),
    )


def anomaly_scorer(pipeline: MeterPipeline, names: PipelineNames) -> WindowScorer | None:
    """The sink's scorer of closed windows, with the newest model kept beside the lake (None when
    the pipeline has no ``spec.anomalies``; it scores nothing until a model is trained)."""
    if pipeline.spec.anomalies is None:
        return None
    # local: pandas and the model code cost a run without spec.anomalies 1.3 s of CPU to import
    from meterflow_clickhouse.anomalies import WindowScorer
    from meterflow_iceberg.models import ModelStore, NewestModel
    from meterflow_iceberg.tables import ensure_readings_table

    table = ensure_readings_table(open_catalog(iceberg_location(pipeline)), names.iceberg_namespace)
    return WindowScorer(pipeline, NewestModel(ModelStore(table)))


def run_local(
    pipeline: MeterPipeline,
    until_idle: bool = False,
    duration_s: float | None = None,
    fresh: bool = False,
    echo: Callable[[str], None] = print,
    idle_settle_s: float = 2.0,
    metrics_port: int = 0,
) -> RunSummary:
    """``meterflow run``: the job on PyFlink's mini-cluster plus the serving sink, one at a time
    per pipeline (:class:`~meterflow.stack.lock.PipelineBusyError` names the run that holds it),
    with Prometheus metrics on ``metrics_port`` (0: a free port; ``pipelines/<name>/run.json``
    says which)."""
    with hold_pipeline(pipeline.name, command_line()):
        bootstrap = kafka_bootstrap(pipeline)
        return _run_local(pipeline, bootstrap, until_idle, duration_s, fresh, echo, idle_settle_s, metrics_port)


def _run_local(
    pipeline: MeterPipeline,
    bootstrap: str,
    until_idle: bool,
    duration_s: float | None,
    fresh: bool,
    echo: Callable[[str], None],
    idle_settle_s: float,
    metrics_port: int,
) -> RunSummary:
    names = provision(pipeline, job_endpoints(pipeline), echo)
    state = pipeline_state(pipeline.name)
    restore = None if fresh else latest_restore_point(state)
    cluster = prepare_local_jvm(pipeline.name)
    flink_metrics = free_port()
    config = job_config(
        pipeline,
        state_dir=state,
        restore_from=restore,
        web_ui_port=web_ui_port(cluster),
        metrics_port=str(flink_metrics),
    )
    env = stream_environment(config)
    started = time.monotonic()
    plan = job_plan(
        pipeline,
        KafkaEndpoint(bootstrap, names.consumer_group),
        iceberg_location(pipeline),
        idle_timeout_ms=0 if until_idle else CONTINUOUS_IDLE_TIMEOUT_MS,
    )
    job = submit(env, plan)
    summary = RunSummary(str(job.get_job_id()), cluster.web_ui, restore, "RUNNING")
    echo(f"streaming job {summary.job_id} running; Flink web UI: {cluster.web_ui}")
    echo(f"  restored from {restore}" if restore else "  starting from the committed offsets (no saved state)")
    echo(f"  Flink log: {cluster.log_file}")
    metrics = RunMetrics(
        pipeline.name, names, rest_url=cluster.web_ui, job_id=summary.job_id, port=metrics_port,
        address="127.0.0.1", local=True, flink_metrics=f"http://127.0.0.1:{flink_metrics}/metrics",
    )  # fmt: skip
    echo(f"  metrics: {metrics.endpoint.url} (meterflow_*), {metrics.flink_metrics} (Flink's flink_*)")
    try:
        sink = serving_sink(pipeline, bootstrap, names, observer=metrics.sink)
    except BaseException:
        metrics.close()
        raise
    idle = _IdleProbe(bootstrap, names, settle_s=idle_settle_s)
    restarts = _Restarts(cluster.web_ui, summary.job_id, echo)
    next_check = 0.0
    stopped: _Stopped | None = None
    stop_reason: str | None = None
    try:
        with _interruptible() as interrupted:
            while True:
                sink.poll()
                if time.monotonic() < next_check and not interrupted():
                    continue
                next_check = time.monotonic() + STATUS_EVERY_S
                status = _status(job)
                restarts.saw(status)
                if status in _TERMINAL:
                    summary.final_state = status
                    break
                stop_reason = (
                    "interrupted" if interrupted() else
                    "idle" if until_idle and idle.idle() else
                    "duration" if duration_s is not None and time.monotonic() - started >= duration_s else
                    None
                )  # fmt: skip
                if stop_reason is None:
                    continue
                stopped = _stop(job, stop_reason, state, bootstrap, echo)
                summary.final_state, summary.savepoint = stopped.state, stopped.savepoint
                break
        if summary.final_state == "FAILED":
            raise JobFailedError(
                f"the streaming job failed after {restarts.count} restart(s): {_failure(job)}; see {cluster.log_file}"
            )
        if stopped is not None and stopped.why_not is not None:
            error = InterruptedRunError if stop_reason == "interrupted" else StopFailedError
            raise error(
                f"stopped without a savepoint ({stopped.why_not}); the job was cancelled and the next run "
                f"resumes from its last checkpoint; see {cluster.log_file}"
            )
        sink.drain()
    finally:
        summary.sink_rows = dict(sink.stats.rows)
        scorer = cast("WindowScorer | None", sink.after_windows)
        if scorer is not None:
            summary.sink_rows["anomalies"] = scorer.stats.windows
        try:
            sink.close()
        finally:
            metrics.ended(summary.final_state)
            metrics.close()
        idle.close()
    summary.seconds = time.monotonic() - started
    if summary.savepoint:
        kept = Path(summary.savepoint.removeprefix("file:"))
        if stop_reason == "idle":  # the drain's last lake commit would stop the next run's commits
            lake = open_catalog(iceberg_location(pipeline)).load_table(names.readings_table)
            reopen_after_drain(lake, summary.job_id, checkpoint_id(kept))
        prune(state, keep=kept)
    return summary


@dataclass
class _Stopped:
    """How a stop ended: the job's final state, its savepoint, or why there is none."""

    state: str
    savepoint: str | None = None
    why_not: str | None = None


def _stop(job: Any, reason: str, state: Path, bootstrap: str, echo: Callable[[str], None]) -> _Stopped:
    """Stop the job for ``reason`` with a savepoint.

    ``idle`` takes a savepoint, then drains (every window fires): the next run resumes from the
    savepoint taken before the drain (a drained one cannot be resumed), and the windows the drain
    fired fire again with the same rows, which ClickHouse replaces by key. Any other reason stops
    without draining. A job that cannot take a savepoint — its Kafka does not answer (a savepoint
    commits every sink's transaction there), or it keeps failing and restarting — is cancelled
    instead: its retained checkpoints are where the next run resumes. After Ctrl-C that is decided
    within :data:`INTERRUPTED_SAVEPOINT_S`.
    """
    from py4j.protocol import Py4JJavaError

    interrupted = reason == "interrupted"
    echo("stopping (idle): savepoint, then draining open windows …" if reason == "idle" else f"stopping ({reason}) …")
    if interrupted and probe(bootstrap) is None:
        return _Stopped(_cancel(job), why_not=f"Kafka at {bootstrap} does not answer")
    try:
        if reason == "idle":
            savepoint = trigger_savepoint(job, savepoint_root(state))
            stop_with_savepoint(job, drain=True, directory=drained_root(state))
        else:
            savepoint = stop_with_savepoint(
                job,
                drain=False,
                directory=savepoint_root(state),
                timeout_s=INTERRUPTED_SAVEPOINT_S if interrupted else SAVEPOINT_TIMEOUT_S,
                retry_s=INTERRUPTED_SAVEPOINT_RETRY_S if interrupted else SAVEPOINT_TIMEOUT_S,
            )
    except Py4JJavaError as exc:
        return _Stopped(_cancel(job), why_not=f"the savepoint failed: {_java_cause(exc)}")
    return _Stopped(_wait_terminal(job), savepoint)


def _cancel(job: Any) -> str:
    """Cancel the job (its checkpoints are retained on cancellation); its final state."""
    from py4j.protocol import Py4JJavaError

    with suppress(Py4JJavaError):  # it ended on its own meanwhile: the state below says how
        job.cancel().result()
    return _wait_terminal(job)


def run_in_cluster(pipeline: MeterPipeline) -> None:
    """The FlinkDeployment entry: submit into the running cluster, then sink until it ends."""
    if not in_flink_cluster():
        raise MeterflowError("run_in_cluster needs a Flink cluster's PythonDriver; use `meterflow run` locally")
    endpoints = job_endpoints(pipeline)
    bootstrap = endpoints.kafka_bootstrap
    # the operator made the schema and the table, Strimzi the topics; the meters file is in this image
    publish_meter_file(pipeline, endpoints)
    names = names_for(pipeline)
    env = stream_environment(job_config(pipeline))
    plan = job_plan(
        pipeline,
        KafkaEndpoint(bootstrap, names.consumer_group),
        iceberg_location(pipeline),
        idle_timeout_ms=CONTINUOUS_IDLE_TIMEOUT_MS,
    )
    job = submit(env, plan)
    metrics = RunMetrics(
        pipeline.name, names, rest_url=os.environ.get(FLINK_REST_ENV, "http://localhost:8081"),
        job_id=str(job.get_job_id()), port=CLUSTER_PORT, address="0.0.0.0", local=False,
    )  # fmt: skip
    sink = serving_sink(pipeline, bootstrap, names, observer=metrics.sink)
    try:
        next_check = 0.0
        while True:
            sink.poll()
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + STATUS_EVERY_S
                if _status(job) in _TERMINAL:
                    break
        sink.drain()
    finally:
        sink.close()
        metrics.close()


# --- machinery ---------------------------------------------------------------------------------


class _IdleProbe:
    """True once the job's committed readings offsets reach the topic's end and stay there.

    Flink commits offsets when a checkpoint completes, so "committed = end" means every reading
    has been processed and checkpointed (Iceberg files committed too).
    """

    def __init__(self, bootstrap: str, names: PipelineNames, settle_s: float) -> None:
        self._bootstrap = bootstrap
        self._admin: Any = None
        self._consumer: Any = None
        self._topic = names.topics.readings
        self._group = names.consumer_group
        self._settle_s = settle_s
        self._since: float | None = None
        self._last_check = 0.0

    def idle(self) -> bool:
        now = time.monotonic()
        if now - self._last_check < 0.5:
            return self._since is not None and now - self._since >= self._settle_s
        self._last_check = now
        from kafka import TopicPartition
        from kafka.errors import KafkaError

        try:
            self._connect()
            topic = self._consumer.partitions_for_topic(self._topic) or []
            partitions = [TopicPartition(self._topic, p) for p in topic]
            ends = self._consumer.end_offsets(partitions)
            committed = self._admin.list_group_offsets({self._group: partitions}).get(self._group, {})
        except KafkaError:  # the broker is away (restarting): not idle, ask again later
            self._since = None
            return False
        caught_up = all(ends[tp] == 0 or (tp in committed and committed[tp].offset >= ends[tp]) for tp in partitions)
        if not caught_up:
            self._since = None
            return False
        self._since = self._since or now
        return now - self._since >= self._settle_s

    def _connect(self) -> None:
        """The clients, made when first needed (the broker may be away when the run starts)."""
        if self._admin is None:
            self._admin = kafka_clients.admin(self._bootstrap, "idle-probe")
        if self._consumer is None:
            self._consumer = kafka_clients.consumer(self._bootstrap, "idle-probe")

    def close(self) -> None:
        for client in (self._admin, self._consumer):
            if client is not None:
                client.close()


def _status(job: Any) -> str:
    """The job's state; once the local mini-cluster has shut down (it does when its only job
    ends), the final state its execution result tells."""
    from py4j.protocol import Py4JJavaError

    try:
        return str(job.get_job_status().result()).rsplit(".", 1)[-1]
    except Py4JJavaError as exc:
        if "has already been shut down" not in str(exc.java_exception):
            raise
        return _ended(job)


def _ended(job: Any) -> str:
    from py4j.protocol import Py4JJavaError

    try:
        job.get_job_execution_result().result()
    except Py4JJavaError as exc:
        return "CANCELED" if "JobCancellationException" in str(exc) else "FAILED"
    return "FINISHED"


def _wait_terminal(job: Any, timeout_s: float = 120.0) -> str:
    """The job's final state after a stop or a cancel (its state after ``timeout_s`` if it has none)."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = _status(job)
        if status in _TERMINAL or time.monotonic() >= deadline:
            return status
        time.sleep(0.2)


def _failure(job: Any) -> str:
    """The root cause of a failed job, in one line."""
    from py4j.protocol import Py4JJavaError

    try:
        job.get_job_execution_result().result()
    except Py4JJavaError as exc:
        return _java_cause(exc)
    return "unknown cause"


def _java_cause(exc: Exception) -> str:
    """The deepest ``Caused by:`` of a Java stack trace (py4j puts it in the exception's text)."""
    return root_cause(str(exc))


def root_cause(trace: str, limit: int = 400) -> str:
    """The innermost cause of a Java stack trace as one line (``Caused by:`` stripped)."""
    lines = [line.strip() for line in trace.splitlines() if line.strip()]
    causes = [line.removeprefix("Caused by:").strip() for line in lines if line.startswith("Caused by:")]
    text = causes[-1] if causes else next((line for line in lines if not line.startswith("at ")), "unknown cause")
    text = text.removeprefix("An error occurred while calling").strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Restarts:
    """Notices the job's restarts (its restart strategy at work) and says why, one line each.

    The cause comes from the job's exception history on the Flink web UI's REST API.
    """

    def __init__(self, web_ui: str, job_id: str, echo: Callable[[str], None]) -> None:
        self._url = f"{web_ui}/jobs/{job_id}/exceptions?maxExceptions=1"
        self._echo = echo
        self._last = "RUNNING"
        self.count = 0
        self.cause: str | None = None

    def saw(self, status: str) -> None:
        if status == "RESTARTING" and self._last != "RESTARTING":
            self.count += 1
            self.cause = self._latest_exception() or self.cause
            self._echo(
                f"  the job failed and restarts ({self.count}; at most {RESTART_ATTEMPTS} failures in "
                f"{RESTART_WINDOW}): {self.cause or 'see the Flink log'}"
            )
        self._last = status

    def _latest_exception(self) -> str | None:
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(self._url, timeout=2) as response:
                entries = json.loads(response.read())["exceptionHistory"]["entries"]
        except (OSError, urllib.error.URLError, ValueError, KeyError, TypeError):
            return None
        return root_cause(entries[0].get("stacktrace") or entries[0].get("exceptionName", "")) if entries else None


@contextmanager
def _interruptible() -> Iterator[Callable[[], bool]]:
    """Turn Ctrl-C (and SIGTERM) into a flag the loop checks, so the job stops with a savepoint;
    a second one stops at once (the retained checkpoints remain)."""
    flag = {"hit": False}

    def handler(signum: int, frame: Any) -> None:
        if flag["hit"]:
            raise KeyboardInterrupt
        flag["hit"] = True

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: flag["hit"]
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
