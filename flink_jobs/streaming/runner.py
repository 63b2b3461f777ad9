"""Run the streaming job and its serving sink until told to stop (both runtimes).

:func:`run_local` is ``meterflow run``: it prepares the embedded stack (topics, Iceberg table,
ClickHouse schema, meter metadata), restores the newest checkpoint or savepoint, submits the job
to PyFlink's mini-cluster and copies results into ClickHouse while the job runs. It stops

* with ``until_idle``: once the job has committed every readings offset (so everything read is
  checkpointed, Iceberg included) — it takes a savepoint for the next run, then *drains*: the
  watermark jumps to the end of event time and every open window fires;
* after ``duration_s``, or on Ctrl-C: with a savepoint, without draining (windows stay open);
* when the job ends on its own (failure included).

:func:`run_in_cluster` is the FlinkDeployment's entry: submit, then sink until the job ends.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flink_jobs.runtime import (
    free_port,
    in_cluster,
    kafka_bootstrap,
    prepare_local_jvm,
    stop_with_savepoint,
    stream_environment,
    trigger_savepoint,
    web_ui_port,
)
from flink_jobs.streaming.job import job_config, submit
from flink_jobs.streaming.observe import RunMetrics
from flink_jobs.streaming.plan import KafkaEndpoint, job_plan
from flink_jobs.streaming.restore import drained_root, latest_restore_point, prune, savepoint_root
from meterflow.errors import MeterflowError, SpecError
from meterflow.metrics import CLUSTER_PORT
from meterflow.paths import pipeline_state
from meterflow.reading import MeterInfo
from meterflow.spec.model import MeterPipeline
from meterflow.spec.names import PipelineNames, names_for
from meterflow.spec.topics import topic_plan
from meterflow.stack.endpoints import clickhouse_dsn, iceberg_location
from meterflow.stack.local import bootstrap_for
from meterflow.stack.topics import delete_topics, ensure_topics
from meterflow_clickhouse.migrate import apply_migrations, drop_database
from meterflow_clickhouse.observe import SinkMetrics
from meterflow_clickhouse.sink import AGGREGATES, ALERTS, COUNTERS, METERS, ServingSink
from meterflow_iceberg.catalog import open_catalog
from meterflow_iceberg.tables import drop_namespace, ensure_readings_table

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


class JobFailedError(MeterflowError):
    """The Flink job ended in a failure."""


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


def prepare(pipeline: MeterPipeline, bootstrap: str) -> PipelineNames:
    """Create what the job writes to and reads from; idempotent (also run by the operator)."""
    names = names_for(pipeline)
    ensure_topics(bootstrap, topic_plan(pipeline))
    ensure_readings_table(open_catalog(iceberg_location(pipeline)), names.iceberg_namespace)
    apply_migrations(clickhouse_dsn(pipeline), names.clickhouse_database)
    if pipeline.spec.meters.source == "file":
        publish_meter_file(pipeline, bootstrap)
    return names


def reset(pipeline: MeterPipeline) -> PipelineNames:
    """Delete everything of ``pipeline`` on the embedded stack: topics, consumer groups, the
    ClickHouse database, the Iceberg namespace and the saved Flink state (``meterflow reset``)."""
    names = names_for(pipeline)
    bootstrap = bootstrap_for(pipeline)
    delete_topics(bootstrap, names.topics.all(), groups=[names.consumer_group, sink_group(names)])
    drop_database(clickhouse_dsn(pipeline), names.clickhouse_database)
    drop_namespace(open_catalog(iceberg_location(pipeline)), names.iceberg_namespace)
    shutil.rmtree(pipeline_state(pipeline.name), ignore_errors=True)
    return names


def publish_meter_file(pipeline: MeterPipeline, bootstrap: str) -> int:
    """Load ``spec.meters.file`` (CSV with a header row) into the compacted meters topic."""
    from kafka import KafkaProducer

    path = Path(pipeline.spec.meters.file or "")
    try:
        with path.open(newline="") as handle:
            rows = list(csv.reader(handle))[1:]
    except OSError as exc:
        raise SpecError(f"spec.meters.file {path}: cannot read it ({exc.strerror})") from None
    topic = names_for(pipeline).topics.meters
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    sent = 0
    for row in rows:
        if len(row) < 5 or not row[0].strip():
            continue
        info = MeterInfo(*(cell.strip() for cell in row[:5]))
        producer.send(topic, key=info.meter_id.encode(), value=info.to_json())
        sent += 1
    producer.flush()
    producer.close()
    return sent


def sink_group(names: PipelineNames) -> str:
    """The consumer group of the serving sink (``reset`` deletes it with the job's own)."""
    return f"{names.consumer_group}.clickhouse"


def serving_sink(
    pipeline: MeterPipeline, bootstrap: str, names: PipelineNames, observer: SinkMetrics | None = None
) -> ServingSink:
    topics = names.topics
    return ServingSink(
        bootstrap=bootstrap,
        dsn=clickhouse_dsn(pipeline),
        database=names.clickhouse_database,
        routes={topics.aggregates: AGGREGATES, topics.alerts: ALERTS, topics.counters: COUNTERS, topics.meters: METERS},
        group_id=sink_group(names),
        observer=observer,
    )


def run_local(
    pipeline: MeterPipeline,
    until_idle: bool = False,
    duration_s: float | None = None,
    fresh: bool = False,
    echo: Callable[[str], None] = print,
    idle_settle_s: float = 2.0,
    metrics_port: int = 0,
) -> RunSummary:
    """``meterflow run``: the job on PyFlink's mini-cluster plus the serving sink, with Prometheus
    metrics on ``metrics_port`` (0: a free port; ``pipelines/<name>/run.json`` says which)."""
    bootstrap = bootstrap_for(pipeline)
    names = prepare(pipeline, bootstrap)
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
    next_check = 0.0
    try:
        with _interruptible() as interrupted:
            while True:
                sink.poll()
                if time.monotonic() < next_check and not interrupted():
                    continue
                next_check = time.monotonic() + STATUS_EVERY_S
                status = _status(job)
                if status in _TERMINAL:
                    summary.final_state = status
                    break
                stop_reason = (
                    "interrupted" if interrupted() else
                    "idle" if until_idle and idle.idle() else
                    "duration" if duration_s is not None and time.monotonic() - started >= duration_s else
                    None
                )  # fmt: skip
                if stop_reason == "idle":
                    # Resume from a savepoint taken before the drain (a drained one cannot be resumed):
                    # windows the drain fires fire again later with the same rows, which ClickHouse
                    # replaces by key.
                    echo("stopping (idle): savepoint, then draining open windows …")
                    summary.savepoint = trigger_savepoint(job, savepoint_root(state))
                    stop_with_savepoint(job, drain=True, directory=drained_root(state))
                    summary.final_state = _wait_terminal(job)
                    break
                if stop_reason:
                    echo(f"stopping ({stop_reason}) …")
                    summary.savepoint = stop_with_savepoint(job, drain=False, directory=savepoint_root(state))
                    summary.final_state = _wait_terminal(job)
                    break
        if summary.final_state == "FAILED":
            raise JobFailedError(f"the streaming job failed: {_failure(job)}; see {cluster.log_file}")
        sink.drain()
    finally:
        summary.sink_rows = dict(sink.stats.rows)
        try:
            sink.close()
        finally:
            metrics.ended(summary.final_state)
            metrics.close()
        idle.close()
    summary.seconds = time.monotonic() - started
    if summary.savepoint:
        prune(state, keep=Path(summary.savepoint.removeprefix("file:")))
    return summary


def run_in_cluster(pipeline: MeterPipeline) -> None:
    """The FlinkDeployment entry: submit into the running cluster, then sink until it ends."""
    if not in_cluster():
        raise MeterflowError("run_in_cluster needs a Flink cluster's PythonDriver; use `meterflow run` locally")
    bootstrap = kafka_bootstrap(pipeline)
    names = prepare(pipeline, bootstrap)
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
        from kafka import KafkaAdminClient, KafkaConsumer

        self._admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="meterflow-idle-probe")
        self._consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="meterflow-idle-probe")
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

        partitions = [TopicPartition(self._topic, p) for p in self._consumer.partitions_for_topic(self._topic) or []]
        ends = self._consumer.end_offsets(partitions)
        committed = self._admin.list_group_offsets({self._group: partitions}).get(self._group, {})
        caught_up = all(ends[tp] == 0 or (tp in committed and committed[tp].offset >= ends[tp]) for tp in partitions)
        if not caught_up:
            self._since = None
            return False
        self._since = self._since or now
        return now - self._since >= self._settle_s

    def close(self) -> None:
        self._admin.close()
        self._consumer.close()


def _status(job: Any) -> str:
    return str(job.get_job_status().result()).rsplit(".", 1)[-1]


def _wait_terminal(job: Any, timeout_s: float = 120.0) -> str:
    """The job's final state after a successful stop-with-savepoint.

    The local mini-cluster shuts down as soon as its only job has ended, so a status query can
    lose that race; after a completed stop, a cluster that is gone means the job finished.
    """
    from py4j.protocol import Py4JJavaError

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            status = _status(job)
        except Py4JJavaError as exc:
            if "has already been shut down" in str(exc.java_exception):
                return "FINISHED"
            raise
        if status in _TERMINAL or time.monotonic() >= deadline:
            return status
        time.sleep(0.2)


def _failure(job: Any) -> str:
    try:
        job.get_job_execution_result().result()
    except Exception as exc:  # py4j wraps the JVM's exception; keep its first line
        lines = [line for line in str(exc).splitlines() if "Exception" in line]
        return lines[-1].strip() if lines else str(exc).splitlines()[0]
    return "unknown cause"


@contextmanager
def _interruptible() -> Iterator[Callable[[], bool]]:
    """Turn Ctrl-C (and SIGTERM) into a flag the loop checks, so the job stops with a savepoint."""
    flag = {"hit": False}

    def handler(signum: int, frame: Any) -> None:
        flag["hit"] = True

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: flag["hit"]
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
