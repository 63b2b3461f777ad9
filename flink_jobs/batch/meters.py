"""Meter metadata for the batch: the compacted ``<name>.meters`` topic copied into ClickHouse ``meters``.

The speed layer's serving sink copies the topic as it arrives (and ClickHouse labels window
results from it); the batch reads it again once per run, so it also works when no streaming job
runs (it is small: one record per meter), keeps the newest value per key (a tombstone deletes the meter), and writes
only the meters that changed into the ``meters`` ReplacingMergeTree — so a re-run writes nothing.
A row's ``version`` is the Kafka offset of its record, the serving sink's convention: whoever
copies a record (the batch, or a sink of the speed layer), the same key gets the same version.
When no broker can be reached the table keeps what the last run saw. Enrichment then labels a
meter without metadata ``unknown``. Called by :mod:`flink_jobs.batch.run`.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pandas as pd

from meterflow import kafka_clients
from meterflow.reading import UNKNOWN

ENRICHMENT = ("meter_type", "suburb", "postcode", "usage_type")


Latest = dict[str, tuple[int, dict[str, str] | None]]
"""Meter id → (Kafka offset, metadata; None for a tombstone)."""


def read_topic(bootstrap: str, topic: str, timeout_s: float = 20.0) -> Latest:
    """The newest record per key of ``topic``, read to the end offsets."""
    from kafka import TopicPartition

    consumer = kafka_clients.consumer(
        bootstrap,
        "batch-meters",
        enable_auto_commit=False,
        group_id=None,
        allow_auto_create_topics=False,  # a missing topic stays missing (the stack creates it compacted)
        request_timeout_ms=int(timeout_s * 1000),
    )
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        if not partitions:
            return {}
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        latest: Latest = {}
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < ends[tp] for tp in partitions) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    if record.key is None:
                        continue
                    key = record.key.decode()
                    latest[key] = (record.offset, _parse(record.value))
        return latest
    finally:
        consumer.close()


def _parse(value: bytes | None) -> dict[str, str] | None:
    if value is None:
        return None
    try:
        data = json.loads(value)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    return {k: str(data.get(k) or UNKNOWN) for k in ENRICHMENT}


def changed_rows(current: pd.DataFrame, latest: Latest) -> list[list[Any]]:
    """Rows for ``meters`` (values, version = offset, is_deleted) where the topic differs from ``current``."""
    known = {row.meter_id: tuple(getattr(row, k) for k in ENRICHMENT) for row in current.itertuples(index=False)}
    rows: list[list[Any]] = []
    for meter_id, (offset, info) in sorted(latest.items()):
        if info is None:
            if meter_id in known:
                rows.append([meter_id, *known[meter_id], offset, 1])
            continue
        values = tuple(info[k] for k in ENRICHMENT)
        if known.get(meter_id) != values:
            rows.append([meter_id, *values, offset, 0])
    return rows


def enrich(frame: pd.DataFrame, meters: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the four metadata columns (``unknown`` for a meter without metadata)."""
    base = frame.drop(columns=[c for c in ENRICHMENT if c in frame.columns])
    if meters.empty:
        out = base.copy()
        for column in ENRICHMENT:
            out[column] = UNKNOWN
        return out
    out = base.merge(meters[["meter_id", *ENRICHMENT]], on="meter_id", how="left")
    for column in ENRICHMENT:
        out[column] = out[column].fillna(UNKNOWN).astype(str)
    return out
