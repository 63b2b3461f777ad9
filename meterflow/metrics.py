"""meterflow's own Prometheus metrics: the one catalogue of names, the endpoint, the text format.

Every process that does work exports metrics (DESIGN.md): names start with ``meterflow_``,
counters end in ``_total``, every series has a ``pipeline`` label. :data:`CATALOGUE` is the only
list of them — docs/metrics.md holds it as a table (``python -m meterflow.metrics`` prints it, a
test keeps the two equal) and the tests check that each exporter exports exactly its part:

* ``run`` — the process that runs the serving sink: ``meterflow run`` locally, the streaming
  FlinkDeployment's JobManager on Kubernetes (port :data:`CLUSTER_PORT`). Ingest counts from the
  job's exactly-once ``<name>.counters`` topic, the job's state and checkpoints from Flink's REST
  API, open alerts from the alert transitions, and the sink's own work;
* ``batch`` — a batch run, which lives shorter than a scrape interval: it writes a textfile
  (locally) or pushes to a Pushgateway (``METERFLOW_PUSHGATEWAY``);
* ``operator`` — the kopf operator (its own port, ``METERFLOW_OPERATOR_METRICS_PORT``).

Flink's own metrics (``flink_*``) come from Flink's Prometheus reporter, with the same
``pipeline`` label (:func:`flink_reporter_config`). Called by those exporters, by ``meterflow
status`` / ``meterflow metrics`` and by the tests.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meterflow.errors import StackError
from meterflow.paths import pipeline_state, state_home

CLUSTER_PORT = 9464
"""meterflow's /metrics in a pod (the run's JobManager, the operator)."""
FLINK_REPORTER_PORT = 9249
"""Flink's Prometheus reporter in a pod (JobManager and TaskManagers): Flink's documented default."""
FLINK_REPORTER_FACTORY = "org.apache.flink.metrics.prometheus.PrometheusReporterFactory"
PUSHGATEWAY_ENV = "METERFLOW_PUSHGATEWAY"
"""A Pushgateway URL the batch pushes its metrics to (else it writes a textfile)."""

COUNTER, GAUGE, HISTOGRAM = "counter", "gauge", "histogram"
RUN, BATCH, OPERATOR = "run", "batch", "operator"


@dataclass(frozen=True)
class MetricDef:
    """One metric: its exposed name, type, labels (``pipeline`` first), exporter and meaning."""

    name: str
    kind: str
    labels: tuple[str, ...]
    exporter: str
    help: str


def _m(name: str, kind: str, labels: str, exporter: str, help_: str) -> MetricDef:
    return MetricDef(name, kind, tuple(labels.split()), exporter, help_)


CATALOGUE: tuple[MetricDef, ...] = (
    # -- the run: what the job counted (the <name>.counters topic, exactly once) ------------------
    _m("meterflow_readings_total", COUNTER, "pipeline", RUN,
       "Records the streaming job read from <name>.readings: valid + dead letters."),
    _m("meterflow_readings_valid_total", COUNTER, "pipeline", RUN,
       "Readings that passed validation: on time + late + duplicates."),
    _m("meterflow_dead_letters_total", COUNTER, "pipeline reason", RUN,
       "Records sent to <name>.readings.dlq, by reason (bad_json, out_of_range, ...)."),
    _m("meterflow_readings_on_time_total", COUNTER, "pipeline", RUN,
       "Unique readings ahead of the watermark: they reach windows and register steps."),
    _m("meterflow_readings_late_total", COUNTER, "pipeline", RUN,
       "Unique readings at or behind the watermark: kept in the lake, left out of windows."),
    _m("meterflow_readings_duplicate_total", COUNTER, "pipeline", RUN,
       "Readings equal to one already seen (meter, measurement, series, event time): valid - on time - late."),
    # -- the run: the Flink job (its REST API, read when scraped) --------------------------------
    _m("meterflow_job_up", GAUGE, "pipeline", RUN, "1 when the job's Flink REST API answered this scrape."),
    _m("meterflow_job_state", GAUGE, "pipeline state", RUN,
       "1 for the job's current state (RUNNING, RESTARTING, FAILED, ...), 0 for the others."),
    _m("meterflow_job_uptime_seconds", GAUGE, "pipeline", RUN, "Seconds since the job (this attempt) started."),
    _m("meterflow_job_restarts_total", COUNTER, "pipeline", RUN, "Times the job restarted after a failure."),
    _m("meterflow_job_input_lag_records", GAUGE, "pipeline", RUN,
       "Records of <name>.readings the job has not read yet (its source's pendingRecords)."),
    _m("meterflow_watermark_lag_seconds", GAUGE, "pipeline", RUN,
       "Now minus the meter operator's event-time watermark (it trails the newest reading by "
       "watermarkDelay + allowedLateness)."),
    _m("meterflow_checkpoints_total", COUNTER, "pipeline outcome", RUN, "Checkpoints completed and failed."),
    _m("meterflow_checkpoint_duration_seconds", GAUGE, "pipeline", RUN,
       "End-to-end duration of the last completed checkpoint."),
    _m("meterflow_checkpoint_size_bytes", GAUGE, "pipeline", RUN, "Size of the last completed checkpoint."),
    _m("meterflow_checkpoint_last_completed_timestamp_seconds", GAUGE, "pipeline", RUN,
       "When the last checkpoint completed (Unix time)."),
    # -- the run: alerts (transitions through the sink; open ones loaded from alerts_active) -----
    _m("meterflow_alerts_open", GAUGE, "pipeline rule", RUN, "Alerts open now, by rule."),
    _m("meterflow_alert_transitions_total", COUNTER, "pipeline rule transition", RUN,
       "Alert transitions the sink wrote (OPENED, UPDATED, ESCALATED, ACKNOWLEDGED, RESOLVED)."),
    # -- the run: the serving sink ---------------------------------------------------------------
    _m("meterflow_sink_consumer_lag", GAUGE, "pipeline topic partition", RUN,
       "Records of a result topic the serving sink has not read yet."),
    _m("meterflow_sink_lag_seconds", GAUGE, "pipeline topic", RUN,
       "How far behind the serving sink is: now minus the time of the last record it read, while records wait."),
    _m("meterflow_sink_rows_total", COUNTER, "pipeline table", RUN, "Rows the serving sink inserted into ClickHouse."),
    _m("meterflow_sink_bytes_total", COUNTER, "pipeline table", RUN, "Bytes the serving sink sent to ClickHouse."),
    _m("meterflow_sink_insert_duration_seconds", HISTOGRAM, "pipeline table", RUN, "Time one insert took."),
    _m("meterflow_sink_retries_total", COUNTER, "pipeline operation", RUN,
       "Operations the serving sink retries later (offset commits the broker did not take)."),
    # -- the batch (textfile or Pushgateway; the last run's values) ------------------------------
    _m("meterflow_batch_last_run_timestamp_seconds", GAUGE, "pipeline", BATCH, "When the last batch run ended."),
    _m("meterflow_batch_last_success_timestamp_seconds", GAUGE, "pipeline", BATCH,
       "When the last successful batch run ended."),
    _m("meterflow_batch_last_run_failed", GAUGE, "pipeline", BATCH, "1 when the last batch run failed."),
    _m("meterflow_batch_duration_seconds", GAUGE, "pipeline", BATCH, "How long the last batch run took."),
    _m("meterflow_batch_days_recomputed", GAUGE, "pipeline", BATCH, "Days the last batch run recomputed."),
    _m("meterflow_batch_readings", GAUGE, "pipeline", BATCH, "Readings the last batch run read from the lake."),
    # -- the operator ----------------------------------------------------------------------------
    _m("meterflow_operator_reconciles_total", COUNTER, "pipeline namespace trigger outcome", OPERATOR,
       "Reconciles by trigger (spec, resync) and outcome (ok, retry, invalid, error)."),
    _m("meterflow_operator_reconcile_duration_seconds", HISTOGRAM, "pipeline namespace", OPERATOR,
       "Time one reconcile took."),
    _m("meterflow_operator_time_to_ready_seconds", GAUGE, "pipeline namespace", OPERATOR,
       "Seconds from a spec's first sighting (its creation for a new pipeline) to Ready=True."),
    _m("meterflow_operator_condition", GAUGE, "pipeline namespace type status reason", OPERATOR,
       "1 for each status condition of a pipeline as the operator last wrote it."),
)  # fmt: skip


def catalogue(exporter: str | None = None) -> tuple[MetricDef, ...]:
    """The metrics of one exporter (all of them without one)."""
    return tuple(m for m in CATALOGUE if exporter is None or m.exporter == exporter)


def metric(name: str) -> MetricDef:
    """The definition of ``name`` (a KeyError names it when it is not in the catalogue)."""
    for m in CATALOGUE:
        if m.name == name:
            return m
    raise KeyError(f"{name} is not in meterflow.metrics.CATALOGUE")


def markdown_table() -> str:
    """The catalogue as the table of docs/metrics.md."""
    lines = ["| metric | type | labels | exported by | meaning |", "|---|---|---|---|---|"]
    lines += [
        f"| `{m.name}` | {m.kind} | {', '.join(m.labels)} | {m.exporter} | {m.help.replace('|', '/')} |"
        for m in CATALOGUE
    ]
    return "\n".join(lines) + "\n"


def flink_reporter_config(pipeline: str, port: int | str) -> dict[str, str]:
    """Flink settings that turn on its Prometheus reporter on ``port`` (a port or a range) and give
    every Flink metric the ``pipeline`` label our own metrics carry."""
    return {
        "metrics.reporter.prom.factory.class": FLINK_REPORTER_FACTORY,
        "metrics.reporter.prom.port": str(port),
        "metrics.reporter.prom.scope.variables.additional": f"pipeline:{pipeline}",
        # keep label values as they are: the filter would turn water-meters into water_meters,
        # and the pipeline label would no longer match our own metrics'
        "metrics.reporter.prom.filterLabelValueCharacters": "false",
    }


# --- the endpoint ------------------------------------------------------------------------------


@dataclass
class Endpoint:
    """A /metrics HTTP endpoint serving one registry from a daemon thread."""

    server: Any
    thread: threading.Thread
    host: str

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve(registry: Any, port: int, address: str = "127.0.0.1") -> Endpoint:
    """Serve ``registry`` (a prometheus_client CollectorRegistry) on ``address:port`` (0: any free
    port); a taken port is one line naming it."""
    from prometheus_client import disable_created_metrics, start_http_server

    disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series: the counters' start times are not ours to tell
    try:
        server, thread = start_http_server(port, addr=address, registry=registry)
    except OSError as exc:
        raise StackError(
            f"cannot serve metrics on {address}:{port} ({exc.strerror}); choose another port (--metrics-port)"
        ) from None
    host = "127.0.0.1" if address in ("0.0.0.0", "") else address
    return Endpoint(server, thread, host)


# --- where a local run says it serves, and what it left ---------------------------------------


def run_info_path(pipeline: str) -> Path:
    """``pipelines/<name>/run.json``: a running ``meterflow run``'s endpoints (removed when it stops)."""
    return pipeline_state(pipeline) / "run.json"


def last_run_path(pipeline: str) -> Path:
    """``pipelines/<name>/last-run.prom``: the run's metrics as they were when it stopped."""
    return pipeline_state(pipeline) / "last-run.prom"


def textfile_dir() -> Path:
    """``$METERFLOW_HOME/metrics``: textfiles (``*.prom``) for node_exporter's textfile collector."""
    return state_home() / "metrics"


def batch_textfile(pipeline: str) -> Path:
    return textfile_dir() / f"{pipeline}.batch.prom"


# --- reading the text format back ---------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One sample of a scrape."""

    name: str
    labels: dict[str, str]
    value: float


class Samples:
    """A parsed scrape (Prometheus text format), searchable by name and labels."""

    def __init__(self, samples: Iterable[Sample], families: dict[str, str] | None = None) -> None:
        self.samples = list(samples)
        self.families = families or {}
        """Exposed name (counters with their ``_total``) → type, announced samples or not."""

    @classmethod
    def parse(cls, text: str) -> Samples:
        from prometheus_client.parser import text_string_to_metric_families

        families = list(text_string_to_metric_families(text))
        return cls(
            (Sample(s.name, dict(s.labels), float(s.value)) for family in families for s in family.samples),
            {f"{f.name}_total" if f.type == COUNTER else f.name: f.type for f in families},
        )

    def names(self) -> set[str]:
        return {s.name for s in self.samples}

    def find(self, name: str, **labels: str) -> list[Sample]:
        return [s for s in self.samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]

    def value(self, name: str, default: float | None = None, **labels: str) -> float | None:
        """The sum of the samples of ``name`` with ``labels`` (``default`` when there are none)."""
        found = self.find(name, **labels)
        return sum(s.value for s in found) if found else default

    def by(self, name: str, label: str, **labels: str) -> dict[str, float]:
        """``{label value: sum of samples}`` of ``name``."""
        out: dict[str, float] = {}
        for s in self.find(name, **labels):
            key = s.labels.get(label, "")
            out[key] = out.get(key, 0.0) + s.value
        return out


def scrape(url: str, timeout: float = 5.0) -> str:
    """The text a /metrics endpoint serves (``OSError`` when it does not answer)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bytes(response.read()).decode("utf-8")
    except urllib.error.URLError as exc:
        raise OSError(f"{url}: {exc.reason}") from None


if __name__ == "__main__":
    print(markdown_table(), end="")
