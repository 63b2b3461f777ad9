"""The cluster runtime on a real Flink application cluster (a JobManager and a TaskManager process).

The operator's own render functions turn a MeterPipeline into its ConfigMap and FlinkDeployments;
the FlinkDeployment's job spec (``PythonDriver``, ``-pym flink_jobs.streaming --manifest …``) and
its ``flinkConfiguration`` then run as Flink runs them on Kubernetes, against the embedded
broker, chDB and lake (tests/cluster/harness.py). The streaming job is upgraded the way the
Flink operator upgrades it — stopped with a savepoint mid-stream, started again from it — and
still lands exactly the rows an uninterrupted run would; a batch FlinkDeployment recomputes the
day from the lake.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from meterflow.spec import MeterPipeline, names_for, parse_manifest
from meterflow.stack.broker import BrokerInfo
from meterflow.stack.endpoints import clickhouse_dsn, iceberg_location, job_endpoints
from meterflow_operator.render.batch import render_batch
from meterflow_operator.render.configmap import render_config_map
from meterflow_operator.render.flink import render_flink_deployment
from meterflow_operator.settings import Settings
from meterflow_provision import provision
from tests.cluster.harness import ApplicationCluster
from tests.conftest import unique_pipeline, write_manifest
from tests.streaming import checks
from tests.streaming.expected import ONE_PARTITION, compute
from tests.streaming.harness import Process, lake, rows

pytestmark = [pytest.mark.integration, pytest.mark.flink]

SIMULATION = ("--meters", "20", "--duration", "1d", "--seed", "5")
"""20 meters x yesterday: about 3,900 records (every injection)."""
RATE = "100"
"""Records per second of the paced simulation: about 40 s of input, so the upgrade lands mid-stream."""
STOP_AFTER = 500
"""Stop the first cluster once the job has committed this many readings offsets (a checkpoint)."""


def _committed(bootstrap: str, pipeline: MeterPipeline) -> tuple[int, int]:
    """(offsets the job has committed, records in the readings topic)."""
    names = names_for(pipeline)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [
            TopicPartition(names.topics.readings, p) for p in consumer.partitions_for_topic(names.topics.readings)
        ]
        end = sum(consumer.end_offsets(partitions).values())
        committed = admin.list_group_offsets({names.consumer_group: partitions}).get(names.consumer_group, {})
        return sum(max(c.offset, 0) for c in committed.values()), end
    finally:
        admin.close()
        consumer.close()


def _until(condition: Any, what: str, cluster: ApplicationCluster, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline or cluster.processes[0].poll() is not None:
            raise AssertionError(f"{what} did not happen:\n{cluster.log()[-3000:]}")
        time.sleep(1)


@pytest.fixture(scope="module")
def upgraded(broker: BrokerInfo, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Yesterday's readings of 20 meters through two application clusters (a savepoint between),
    then a batch FlinkDeployment; what it took."""
    out = tmp_path_factory.mktemp("application-cluster")
    source = ONE_PARTITION | {"bootstrapServers": broker.bootstrap}
    document = unique_pipeline("water-meters", source=source, flink={"checkpointInterval": "2s"}).to_manifest()
    document["metadata"]["namespace"] = "meterflow"  # the operator renders namespaced children
    pipeline = parse_manifest(document)
    lake_location = iceberg_location(pipeline)
    settings = Settings(
        state_uri=(out / "flink").as_uri(),
        clickhouse_dsn=clickhouse_dsn(pipeline),
        iceberg_catalog_uri=lake_location.catalog_uri,
        iceberg_warehouse=lake_location.warehouse,
    )
    manifest = out / "pipeline.yaml"
    manifest.write_text(render_config_map(pipeline, settings)["data"]["pipeline.yaml"])
    zone = ZoneInfo(pipeline.spec.time_zone)
    day = (datetime.now(zone) - timedelta(days=1)).date()
    start = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
    figures: dict[str, Any] = {"day": day}
    streaming = render_flink_deployment(pipeline, settings)

    # what Strimzi (the topics) and the operator (schema and table) have done before a FlinkDeployment
    # starts: the job itself provisions nothing but its meters file
    provision(pipeline, job_endpoints(pipeline))
    # the first cluster: stopped with a savepoint mid-stream (the input is paced), as the Flink
    # operator upgrades a job
    first = ApplicationCluster(out / "first", streaming, manifest)
    started = time.monotonic()
    first.start()
    simulator: Process | None = None
    try:
        first.wait_running()
        figures["start_s"] = round(time.monotonic() - started, 1)
        simulator = Process(
            "simulate", "-f", str(write_manifest(pipeline, out)), "--inject", "--no-progress", "--rate", RATE,
            "--truth", str(out / "truth.json"), "--record", str(out / "records.jsonl"), *SIMULATION,
            "--start", start.isoformat(),
        )  # fmt: skip
        _until(lambda: _committed(broker.bootstrap, pipeline)[0] >= STOP_AFTER, "the first checkpoints", first)
        savepoint = first.stop_with_savepoint(out / "savepoints", drain=False)
        figures["stopped_at"] = _committed(broker.bootstrap, pipeline)[0]
        figures["simulator_running"] = simulator.running()
        assert first.wait_finished() == 0, first.log()[-3000:]
        assert simulator.wait() == 0, simulator.output
    finally:
        first.close()
        if simulator is not None:
            simulator.stop()
    truth = json.loads((out / "truth.json").read_text())
    figures["end"] = _committed(broker.bootstrap, pipeline)[1]

    # the second: from the savepoint to the end, drained at last (every window fires)
    second = ApplicationCluster(out / "second", streaming, manifest, restore_from=savepoint)
    second.start()
    try:
        second.wait_running()
        _until(lambda: (c := _committed(broker.bootstrap, pipeline))[0] == c[1], "the end of the readings", second)
        second.stop_with_savepoint(out / "savepoints", drain=True)
        assert second.wait_finished() == 0, second.log()[-3000:]
        figures["restored_from"] = savepoint
        figures["restore_log"] = second.log()
    finally:
        second.close()

    # a batch run: the FlinkDeployment the operator renders on the schedule
    batch = ApplicationCluster(out / "batch", render_batch(pipeline, settings, datetime.now(UTC)), manifest)
    batch.start()
    try:
        assert batch.wait_finished(timeout_s=600) == 0, batch.log()[-3000:]
        figures["batch_log"] = batch.log()
    finally:
        batch.close()
    expected = compute(pipeline, out / "records.jsonl", truth)
    return {"pipeline": pipeline, "expected": expected, "truth": truth, "figures": figures}


def test_the_job_runs_from_the_deployments_own_spec(upgraded: dict[str, Any]) -> None:
    figures = upgraded["figures"]
    assert figures["simulator_running"], "the first cluster should stop while readings still arrive"
    assert STOP_AFTER <= figures["stopped_at"] < figures["end"]
    assert (
        "Restoring job" in upgraded["figures"]["restore_log"] or "from savepoint" in upgraded["figures"]["restore_log"]
    )


def test_every_record_is_counted_across_the_upgrade(upgraded: dict[str, Any]) -> None:
    checks.every_record_is_counted(upgraded["pipeline"], upgraded["expected"], upgraded["truth"])


def test_the_lake_holds_every_unique_reading_once(upgraded: dict[str, Any]) -> None:
    checks.lake_holds_every_unique_reading_once(upgraded["pipeline"], upgraded["expected"])


def test_every_window_matches_an_uninterrupted_run(upgraded: dict[str, Any]) -> None:
    """Count, sum, min, max and consumption (register steps across the savepoint included)."""
    pipeline: MeterPipeline = upgraded["pipeline"]
    checks.every_window_matches(pipeline, upgraded["expected"], pipeline.spec.windows.size_ms / 1000)


def test_exactly_the_injected_alerts(upgraded: dict[str, Any]) -> None:
    checks.exactly_the_injected_alerts(upgraded["pipeline"], upgraded["expected"], upgraded["truth"])


def test_the_batch_deployment_recomputes_the_day(upgraded: dict[str, Any]) -> None:
    pipeline: MeterPipeline = upgraded["pipeline"]
    day = upgraded["figures"]["day"]
    zone = ZoneInfo(pipeline.spec.time_zone)
    table = lake(pipeline).to_pylist()
    on_day = [r for r in table if r["event_time"].astimezone(zone).date() == day]
    series = {(r["meter_id"], r["measurement_type"], r["series"]) for r in on_day}
    [(groups, readings)] = rows(
        pipeline, f"SELECT count(), sum(readings) FROM daily_stats WHERE day = toDate('{day.isoformat()}')"
    )
    assert (groups, readings) == (len(series), len(on_day))
