"""The run's Prometheus endpoint: the serving sink's metrics and the Flink job's, in one registry.

:class:`RunMetrics` is what the runner starts next to the serving sink (``meterflow run``
locally, ``run_in_cluster`` in the streaming JobManager): a registry with the sink's collector
(:class:`meterflow_clickhouse.observe.SinkMetrics`) and :class:`FlinkJobMetrics`, which asks the
job's REST API (the local web UI, or the JobManager's REST service in a cluster) for its state,
restarts, checkpoints, watermark and input lag **when scraped** — nothing is polled while nobody
looks. Locally the run also writes ``pipelines/<name>/run.json`` (where its endpoints are, for
``meterflow status`` and ``meterflow metrics``) and, when it stops, ``last-run.prom`` (its final
values). Flink's own metrics (``flink_*``) come from Flink's reporter, configured by
:func:`flink_jobs.streaming.job.job_config` locally and by the operator's FlinkDeployment.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from meterflow.metrics import Endpoint, last_run_path, metric, run_info_path, serve
from meterflow.spec.names import PipelineNames
from meterflow_clickhouse.observe import SinkMetrics

log = logging.getLogger(__name__)

JOB_STATES = ("INITIALIZING", "CREATED", "RUNNING", "FAILING", "FAILED", "CANCELLING", "CANCELED", "FINISHED",
              "RESTARTING", "SUSPENDED", "RECONCILING")  # fmt: skip
"""Flink's JobStatus values (``meterflow_job_state`` has one series each)."""
NO_WATERMARK = -(2**63)
"""Long.MIN_VALUE: an operator that has seen no watermark yet."""
METER_OPERATOR = "meters"
"""The name of the keyed operator whose input watermark is the job's event time (StreamingJob.java)."""
READINGS_SOURCE = "readings"
REST_TIMEOUT_S = 5.0


class FlinkJobMetrics:
    """The job's state, restarts, checkpoints, watermark lag and input lag from Flink's REST API,
    read when scraped (a prometheus_client collector)."""

    def __init__(self, pipeline: str, rest_url: str, job_id: str) -> None:
        self.pipeline = pipeline
        self.rest_url = rest_url.rstrip("/")
        self.job_id = job_id
        self.final_state: str | None = None
        """Set when the job has ended: then the REST API is gone and this state is reported."""

    def _get(self, path: str) -> Any:
        import urllib.request

        with urllib.request.urlopen(f"{self.rest_url}/jobs/{self.job_id}{path}", timeout=REST_TIMEOUT_S) as response:
            return json.loads(response.read())

    def snapshot(self) -> dict[str, Any]:
        """What the REST API says now (OSError or ValueError when the job itself does not answer;
        a part that does not answer is left out)."""
        job = self._get("")
        out: dict[str, Any] = {"state": job["state"], "now_ms": job.get("now") or time.time() * 1000}
        running_since = (job.get("timestamps") or {}).get("RUNNING") or 0
        out["uptime_s"] = (out["now_ms"] - running_since) / 1000 if job["state"] == "RUNNING" and running_since else 0.0
        vertices = {v["name"]: v["id"] for v in job.get("vertices", [])}
        for part in (self._restarts, self._checkpoints, self._watermark, self._input_lag):
            try:
                out |= part(vertices)
            except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
                log.debug("Flink REST: %s failed: %s", part.__name__, exc)
        return out

    def _restarts(self, vertices: dict[str, str]) -> dict[str, Any]:
        restarts = self._get("/metrics?get=numRestarts")
        return {"restarts": int(float(restarts[0]["value"]))} if restarts else {}

    def _checkpoints(self, vertices: dict[str, str]) -> dict[str, Any]:
        checkpoints = self._get("/checkpoints")
        counts = checkpoints.get("counts") or {}
        out: dict[str, Any] = {"completed": int(counts.get("completed", 0)), "failed": int(counts.get("failed", 0))}
        latest = (checkpoints.get("latest") or {}).get("completed")
        if latest:
            out["checkpoint_s"] = float(latest.get("end_to_end_duration", 0)) / 1000
            out["checkpoint_bytes"] = float(latest.get("checkpointed_size", latest.get("state_size", 0)))
            out["checkpoint_at_s"] = float(latest.get("latest_ack_timestamp", 0)) / 1000
        return out

    def _watermark(self, vertices: dict[str, str]) -> dict[str, Any]:
        """The meter operator's output watermark (its input watermark gauge also counts the alert
        commands input, which has none: measured)."""
        meters = next((i for name, i in vertices.items() if name.startswith(METER_OPERATOR)), None)
        if meters is None:
            return {}
        found = self._get(f"/vertices/{meters}/subtasks/metrics?get={METER_OPERATOR}.currentOutputWatermark&agg=min")
        if not found or float(found[0]["min"]) <= NO_WATERMARK:
            return {}
        return {"watermark_lag_s": max(0.0, time.time() - float(found[0]["min"]) / 1000)}

    def _input_lag(self, vertices: dict[str, str]) -> dict[str, Any]:
        """The readings source's pendingRecords (what Kafka holds that the job has not read)."""
        source = next((i for name, i in vertices.items() if name.startswith(f"Source: {READINGS_SOURCE}")), None)
        if source is None:
            return {}
        found = self._get(f"/vertices/{source}/subtasks/metrics?get=Source__{READINGS_SOURCE}.pendingRecords&agg=sum")
        return {"input_lag": float(found[0]["sum"])} if found else {}

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        p = self.pipeline
        up = GaugeMetricFamily("meterflow_job_up", metric("meterflow_job_up").help, labels=["pipeline"])
        state = GaugeMetricFamily(
            "meterflow_job_state", metric("meterflow_job_state").help, labels=["pipeline", "state"]
        )
        snap: dict[str, Any] = {}
        if self.final_state is not None:
            snap = {"state": self.final_state}
            up.add_metric([p], 0)
        else:
            try:
                snap = self.snapshot()
                up.add_metric([p], 1)
            except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
                log.debug("Flink REST API did not answer: %s", exc)
                up.add_metric([p], 0)
        yield up
        if "state" in snap:
            for s in JOB_STATES:
                state.add_metric([p, s], 1 if s == snap["state"] else 0)
        yield state
        for name, key in (
            ("meterflow_job_uptime_seconds", "uptime_s"),
            ("meterflow_job_input_lag_records", "input_lag"),
            ("meterflow_watermark_lag_seconds", "watermark_lag_s"),
            ("meterflow_checkpoint_duration_seconds", "checkpoint_s"),
            ("meterflow_checkpoint_size_bytes", "checkpoint_bytes"),
            ("meterflow_checkpoint_last_completed_timestamp_seconds", "checkpoint_at_s"),
        ):
            gauge = GaugeMetricFamily(name, metric(name).help, labels=["pipeline"])
            if key in snap:
                gauge.add_metric([p], snap[key])
            yield gauge
        restarts = CounterMetricFamily(
            "meterflow_job_restarts_total", metric("meterflow_job_restarts_total").help, labels=["pipeline"]
        )
        if "restarts" in snap:
            restarts.add_metric([p], snap["restarts"])
        yield restarts
        checkpoints = CounterMetricFamily(
            "meterflow_checkpoints_total", metric("meterflow_checkpoints_total").help, labels=["pipeline", "outcome"]
        )
        if "completed" in snap:
            checkpoints.add_metric([p, "completed"], snap["completed"])
            checkpoints.add_metric([p, "failed"], snap["failed"])
        yield checkpoints


class RunMetrics:
    """The run's registry and endpoint (see the module docstring); :attr:`sink` goes to the sink."""

    def __init__(
        self,
        pipeline: str,
        names: PipelineNames,
        *,
        rest_url: str,
        job_id: str,
        port: int,
        address: str,
        local: bool,
        flink_metrics: str | None = None,
    ) -> None:
        from prometheus_client import CollectorRegistry

        self.pipeline = pipeline
        self.local = local
        self.registry = CollectorRegistry(auto_describe=False)
        self.sink = SinkMetrics(pipeline, names.topics.counters, names.topics.alerts)
        self.job = FlinkJobMetrics(pipeline, rest_url, job_id)
        self.registry.register(self.sink)
        self.registry.register(self.job)
        self.endpoint: Endpoint = serve(self.registry, port, address)
        self.flink_metrics = flink_metrics
        if local:
            info = {
                "pid": os.getpid(),
                "metrics": self.endpoint.url,
                "flink_metrics": flink_metrics,
                "web_ui": rest_url,
                "job_id": job_id,
                "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            path = run_info_path(pipeline)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(info, indent=2) + "\n")

    def ended(self, final_state: str) -> None:
        """The job has ended (its REST API goes with it locally): report ``final_state`` from now on."""
        self.job.final_state = final_state

    def close(self) -> None:
        """Write the final values (locally), stop serving, and remove ``run.json``."""
        try:
            if self.local:
                from prometheus_client import write_to_textfile

                write_to_textfile(str(last_run_path(self.pipeline)), self.registry)
        finally:
            self.endpoint.close()
            if self.local:
                run_info_path(self.pipeline).unlink(missing_ok=True)
