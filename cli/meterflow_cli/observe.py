"""``meterflow status -f M`` (one screen: is the pipeline healthy, and if not, what is wrong) and
``meterflow metrics -f M`` (the Prometheus text of the running pipeline).

Status gathers the facts of :class:`meterflow.health.Facts` from where they are: the broker
(probed), the running ``meterflow run`` (its ``run.json``, its metrics endpoint and Flink's REST
API for the latest exception), Kafka (what waits in ``<name>.readings`` for the job, when the
newest reading arrived), ClickHouse (the last hour's ingest counters, open alerts, the last batch
run); :mod:`meterflow.health` decides what is wrong. Anything it cannot read becomes a note, never
a crash. Called by :mod:`meterflow_cli.stack` (``status``) and registered here (``metrics``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from meterflow.errors import MeterflowError, StackError
from meterflow.health import Batch, Facts, root_cause, screen
from meterflow.metrics import Samples, batch_textfile, last_run_path, run_info_path, scrape
from meterflow.spec.durations import to_millis
from meterflow.spec.model import MeterPipeline
from meterflow.spec.names import names_for
from meterflow.stack.endpoints import clickhouse_dsn
from meterflow.stack.process import alive
from meterflow_cli.options import ManifestOption, manifest

console = Console()


def status_of(file: Path) -> None:
    """``meterflow status -f M``: print the screen; exit 1 when something is wrong."""
    from meterflow.health import problems

    pipeline = manifest(file)
    facts = gather(pipeline)
    lines = screen(facts)
    console.print(escape(lines[0]), style="red" if problems(facts) else "green", highlight=False)
    for line in lines[1:]:
        console.print(escape(line), highlight=False, soft_wrap=True)
    if problems(facts):
        raise typer.Exit(code=1)


def metrics(
    file: ManifestOption,
    flink: Annotated[bool, typer.Option("--flink", help="Print Flink's own metrics (flink_*) instead.")] = False,
) -> None:
    """Print the Prometheus text of a running pipeline (`meterflow run`), and of its last batch run."""
    pipeline = manifest(file)
    info = live_run(pipeline.name)
    if info is None:
        last = last_run_path(pipeline.name)
        if flink or not last.exists():
            raise MeterflowError(
                f"{pipeline.name} is not running, so nothing serves its metrics; "
                f"start it with `meterflow run -f {file}`"
            )
        stamp = datetime.fromtimestamp(last.stat().st_mtime, UTC).isoformat(timespec="seconds")
        print(f"# {pipeline.name} is not running: its metrics as they were when its last run stopped ({stamp})")
        print(last.read_text(), end="")
    else:
        url = str(info["flink_metrics"] if flink else info["metrics"])
        try:
            print(scrape(url), end="")
        except OSError as exc:
            raise MeterflowError(f"the run of {pipeline.name} does not answer at {url}: {exc}") from None
    batch = batch_textfile(pipeline.name)
    if not flink and batch.exists():
        print(f"# the last batch run ({batch})")
        print(batch.read_text(), end="")


def register(app: typer.Typer) -> None:
    app.command()(metrics)


# --- gathering ----------------------------------------------------------------------------------


def live_run(pipeline: str) -> dict[str, Any] | None:
    """The ``run.json`` of a running ``meterflow run`` of ``pipeline`` (None: none runs)."""
    path = run_info_path(pipeline)
    try:
        info: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return info if alive(int(info.get("pid", 0))) else None


def gather(pipeline: MeterPipeline) -> Facts:
    """Every fact :func:`meterflow.health.screen` needs (what cannot be read becomes a note)."""
    from meterflow.stack.broker import probe
    from meterflow.stack.endpoints import kafka_bootstrap

    facts = Facts(
        pipeline.name,
        datetime.now(UTC),
        checkpoint_interval_s=to_millis(pipeline.spec.flink.checkpoint_interval) / 1000,
    )
    try:
        bootstrap = kafka_bootstrap(pipeline)
    except StackError:
        return facts
    if probe(bootstrap) is None:
        return facts
    facts.broker = bootstrap
    _run(pipeline, facts)
    try:
        _kafka(pipeline, bootstrap, facts)
    except Exception as exc:  # kafka-python raises many kinds; say it and go on
        facts.notes.append(f"Kafka offsets not read: {_first_line(exc)}")
    try:
        _clickhouse(pipeline, facts)
    except Exception as exc:  # a database that does not exist yet, a locked engine: say it, go on
        facts.notes.append(f"ClickHouse not read: {_first_line(exc)}")
    return facts


def _run(pipeline: MeterPipeline, facts: Facts) -> None:
    info = live_run(pipeline.name)
    if info is None:
        last = last_run_path(pipeline.name)
        if last.exists():
            try:
                states = Samples.parse(last.read_text()).by("meterflow_job_state", "state")
            except ValueError:
                states = {}
            final = next((s for s, v in states.items() if v == 1), "unknown")
            stamp = datetime.fromtimestamp(last.stat().st_mtime, UTC)
            facts.last_run = f"{final} at {stamp:%Y-%m-%d %H:%M} UTC"
        return
    try:
        samples = Samples.parse(scrape(str(info["metrics"])))
    except (OSError, ValueError) as exc:
        facts.notes.append(f"the run (pid {info.get('pid')}) does not answer at {info['metrics']}: {exc}")
        return
    facts.running = True
    facts.web_ui, facts.metrics_url = info.get("web_ui"), str(info["metrics"])
    states = samples.by("meterflow_job_state", "state")
    facts.job_state = next((s for s, v in states.items() if v == 1), None)
    facts.uptime_s = samples.value("meterflow_job_uptime_seconds")
    restarts = samples.value("meterflow_job_restarts_total")
    facts.restarts = None if restarts is None else int(restarts)
    completed = samples.value("meterflow_checkpoint_last_completed_timestamp_seconds")
    if completed:
        facts.checkpoint_age_s = max(0.0, facts.now.timestamp() - completed)
        facts.checkpoint_s = samples.value("meterflow_checkpoint_duration_seconds")
        facts.checkpoint_bytes = samples.value("meterflow_checkpoint_size_bytes")
    facts.sink_lag = {t: int(v) for t, v in samples.by("meterflow_sink_consumer_lag", "topic").items()}
    facts.sink_behind_s = samples.by("meterflow_sink_lag_seconds", "topic")
    if facts.job_state != "RUNNING" or (facts.restarts or 0) > 0:
        facts.failure = _latest_exception(str(info.get("web_ui")), str(info.get("job_id")))


def _latest_exception(web_ui: str, job_id: str) -> str | None:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{web_ui}/jobs/{job_id}/exceptions?maxExceptions=1", timeout=5) as response:
            entries = json.loads(response.read())["exceptionHistory"]["entries"]
    except (OSError, urllib.error.URLError, ValueError, KeyError, TypeError):
        return None
    if not entries:
        return None
    return root_cause(entries[0].get("stacktrace") or entries[0].get("exceptionName") or "")


def _kafka(pipeline: MeterPipeline, bootstrap: str, facts: Facts) -> None:
    """What waits for the job in <name>.readings, since when, and when the newest reading arrived."""
    from kafka import TopicPartition

    from meterflow import kafka_clients

    names = names_for(pipeline)
    consumer = kafka_clients.consumer(bootstrap, "status", enable_auto_commit=False)
    admin = kafka_clients.admin(bootstrap, "status")
    try:
        topic = names.topics.readings
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not parts:
            return
        ends = consumer.end_offsets(parts)
        committed = admin.list_group_offsets({names.consumer_group: parts}).get(names.consumer_group, {})
        starts = consumer.beginning_offsets(parts)
        waiting, oldest, newest = 0, None, None
        for tp in parts:
            done = committed[tp].offset if tp in committed and committed[tp].offset >= 0 else starts[tp]
            waiting += max(0, ends[tp] - done)
            if ends[tp] > done:
                stamp = _timestamp_at(consumer, tp, done)
                oldest = stamp if oldest is None or (stamp is not None and stamp < oldest) else oldest
            if ends[tp] > starts[tp]:
                stamp = _timestamp_at(consumer, tp, ends[tp] - 1)
                newest = stamp if newest is None or (stamp is not None and stamp > newest) else newest
        now_ms = facts.now.timestamp() * 1000
        facts.readings_waiting = waiting
        facts.oldest_waiting_age_s = None if oldest is None else max(0.0, (now_ms - oldest) / 1000)
        facts.last_reading_age_s = None if newest is None else max(0.0, (now_ms - newest) / 1000)
    finally:
        consumer.close()
        admin.close()


def _timestamp_at(consumer: Any, tp: Any, offset: int) -> int | None:
    """The Kafka timestamp (ms) of the record at ``offset`` of ``tp`` (None when it cannot be read)."""
    consumer.assign([tp])
    consumer.seek(tp, offset)
    for _ in range(5):
        for records in consumer.poll(timeout_ms=1000, max_records=1).values():
            if records:
                return int(records[0].timestamp)
    return None


def _clickhouse(pipeline: MeterPipeline, facts: Facts) -> None:
    from meterflow_clickhouse.client import session

    with session(clickhouse_dsn(pipeline), database=names_for(pipeline).clickhouse_database) as client:
        hour = client.query(
            "SELECT counter, sum(value) FROM ingest_counters FINAL WHERE minute >= now() - INTERVAL 1 HOUR "
            "GROUP BY counter"
        ).result_rows
        counters = {str(c): int(v) for c, v in hour}
        facts.hour_dead_letters = {c.removeprefix("dlq:"): v for c, v in counters.items() if c.startswith("dlq:")}
        facts.hour_in = counters.get("valid", 0) + sum(facts.hour_dead_letters.values())
        facts.open_alerts = {
            str(rule): int(n)
            for rule, n in client.query("SELECT rule, count() FROM alerts_active GROUP BY rule").result_rows
        }
        last = client.query(
            "SELECT finished_at, status, if(isNull(day_from), 0, dateDiff('day', day_from, day_to) + 1), readings, "
            "seconds, message FROM batch_runs ORDER BY started_at DESC LIMIT 1"
        ).result_rows
        if last:
            finished, status, days, readings, seconds, message = last[0]
            facts.last_batch = Batch(finished, str(status), int(days), int(readings), float(seconds), str(message))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
