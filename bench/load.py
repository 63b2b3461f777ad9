"""Pre-load the readings topic: simulated water readings, cached on disk, produced with confluent-kafka.

The simulator's own sender (kafka-python) manages about 27-30k readings/s, which would make a
5M-reading load take minutes; here the simulation is run in-process once per (meters, days,
seed, and a digest of the simulator's code and the manifest's spec: a cache made by an older
simulator would not match the truth the phases check against), written to
``$METERFLOW_CACHE/bench/`` as ``key<TAB>payload`` lines, and produced with confluent-kafka
(librdkafka batches), whose rate is measured and reported.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import simulator
from bench.common import Phase
from bench.stack import BenchPipeline
from meterflow.paths import cache_home
from simulator.engine import Settings, Simulation

DAY_MS = 86_400_000
START = datetime(2024, 4, 30, 14, 0, tzinfo=UTC)
"""2024-05-01 00:00 in Australia/Brisbane (the manifest's time zone): whole local days."""


@dataclass(frozen=True)
class Dataset:
    """A cached simulation: where it is, how many records, the meter metadata."""

    path: Path
    records: int
    meters: list[tuple[bytes, bytes]]
    counts: dict[str, int]


def producer_config(bootstrap: str, linger_ms: int = 50) -> dict[str, Any]:
    """A throughput producer; murmur2 partitions keys as Java clients and kafka-python do."""
    return {
        "bootstrap.servers": bootstrap,
        "linger.ms": linger_ms,
        "batch.size": 1_048_576,
        "queue.buffering.max.messages": 1_000_000,
        "queue.buffering.max.kbytes": 1_048_576,
        "acks": 1,
        "partitioner": "murmur2_random",
        "enable.idempotence": False,
    }


def dataset(pipeline: BenchPipeline, meters: int, days: int, seed: int) -> Dataset:
    """The cached records of ``meters`` water meters over ``days`` days (generated when missing)."""
    folder = cache_home() / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"water-{meters}m-{days}d-seed{seed}-{START:%Y%m%d}-{_generation_digest(pipeline)}.tsv"
    simulation = Simulation(
        pipeline.spec,
        Settings(meters=meters, duration_ms=days * DAY_MS, start=START, seed=seed, inject=True),
    )
    if not path.exists():
        for stale in folder.glob(f"water-{meters}m-{days}d-seed{seed}-{START:%Y%m%d}*"):
            stale.unlink()  # made by an older simulator or manifest: never read again
        partial = path.with_suffix(".partial")
        with partial.open("wb") as out:
            for record in simulation.records():
                if b"\n" in record.value or b"\t" in record.value:
                    raise ValueError(f"payload with a tab or newline cannot be cached: {record.value[:80]!r}")
                out.write(record.key + b"\t" + record.value + b"\n")
        path.with_suffix(".counts.json").write_text(json.dumps(dict(simulation.truth.counts)))
        partial.rename(path)
    counts_file = path.with_suffix(".counts.json")
    counts = json.loads(counts_file.read_text()) if counts_file.exists() else {}
    with path.open("rb") as handle:
        records = sum(1 for _ in handle)
    return Dataset(path, records, simulation.meter_records(), counts)


def _generation_digest(pipeline: BenchPipeline) -> str:
    """What the cached records depend on besides the scale: the simulator's code and the manifest's spec."""
    digest = hashlib.sha256(pipeline.spec.spec.model_dump_json().encode())
    for source in sorted(Path(simulator.__file__).parent.rglob("*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()[:12]


def publish_meters(bootstrap: str, pipeline: BenchPipeline, meters: list[tuple[bytes, bytes]]) -> None:
    """Meter metadata to the compacted ``<name>.meters`` topic (the job's enrichment)."""
    from confluent_kafka import Producer

    producer = Producer(producer_config(bootstrap, linger_ms=5))
    for key, value in meters:
        producer.produce(pipeline.names.topics.meters, value=value, key=key)
    producer.flush(60)


def produce(bootstrap: str, topic: str, data: Dataset) -> dict[str, Any]:
    """Send every cached record to ``topic``; records, seconds, records/s (flush included)."""
    from confluent_kafka import Producer

    producer = Producer(producer_config(bootstrap))
    errors: list[str] = []

    def failed(err: Any, msg: Any) -> None:
        if err is not None and len(errors) < 5:
            errors.append(str(err))

    sent = 0
    started = time.monotonic()
    with data.path.open("rb") as handle:
        for line in handle:
            key, _, value = line.rstrip(b"\n").partition(b"\t")
            while True:
                try:
                    producer.produce(topic, value=value, key=key, on_delivery=failed)
                    break
                except BufferError:
                    producer.poll(0.05)
            sent += 1
            if sent % 50_000 == 0:
                producer.poll(0)
    producer.flush(300)
    seconds = time.monotonic() - started
    if errors:
        raise RuntimeError(f"delivery failed: {errors[0]}")
    return {"records": sent, "seconds": round(seconds, 2), "records_per_s": round(sent / seconds)}


def load_phase(phase: Phase, bootstrap: str, pipeline: BenchPipeline, meters: int, days: int, seed: int) -> Dataset:
    """Generate (or reuse) the data set and pre-load the readings topic; figures into ``phase``."""
    t0 = time.monotonic()
    data = dataset(pipeline, meters, days, seed)
    phase.figures["generate_s"] = round(time.monotonic() - t0, 2)
    phase.figures["cache_file"] = str(data.path)
    phase.figures["meters"] = meters
    phase.figures["days"] = days
    phase.figures["seed"] = seed
    phase.figures["first_day"] = "2024-05-01"
    if data.counts:
        phase.figures["kinds"] = data.counts
    publish_meters(bootstrap, pipeline, data.meters)
    result = produce(bootstrap, pipeline.names.topics.readings, data)
    phase.figures |= {"producer": "confluent-kafka " + _confluent_version()} | {
        f"produce_{k}": v for k, v in result.items()
    }
    return data


def _confluent_version() -> str:
    import confluent_kafka

    return f"{confluent_kafka.version()[0]} (librdkafka {confluent_kafka.libversion()[0]})"
