"""The speed layer's windows, recomputed from the lake (the anomaly model's training and the
batch's re-scoring read them).

The same windows the streaming job closes (``readings_agg``): tumbling, aligned to the epoch, over
the readings that were on time (``late`` readings never entered a window), the first arrival of an
instant winning. Computed with Arrow's kernels on the scanned columns: no Python loop touches a
reading.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.table import Table

SCANNED = ("meter_id", "measurement_type", "value", "event_time", "late", "kafka_partition", "kafka_offset")


def lake_windows(
    table: Table,
    *,
    start_ms: int,
    end_ms: int,
    window_ms: int,
    measurements: Sequence[str],
    snapshot_id: int | None = None,
) -> pd.DataFrame:
    """The windows of ``measurements`` starting in [``start_ms``, ``end_ms``), as long rows
    (:data:`meterflow.anomaly.features.WINDOW_COLUMNS`, times in epoch ms)."""
    columns = ["meter_id", "measurement_type", "window_start", "window_end", "readings", "avg", "min", "max", "stddev"]
    if table.current_snapshot() is None or end_ms <= start_ms:
        return pd.DataFrame(columns=columns)
    scan = table.scan(
        row_filter=f"event_time >= '{_iso(start_ms)}' and event_time < '{_iso(end_ms + window_ms)}'",
        selected_fields=SCANNED,
        snapshot_id=snapshot_id,
    )
    rows = scan.to_arrow()
    keep = pc.and_(
        pc.is_in(rows["measurement_type"], value_set=pa.array(list(measurements), pa.string())),
        pc.invert(pc.fill_null(rows["late"], False)),
    )
    rows = rows.filter(keep)
    micros = pc.cast(rows["event_time"], pa.int64())
    rows = rows.append_column("t", pc.divide(micros, 1000)).sort_by(
        [("kafka_partition", "ascending"), ("kafka_offset", "ascending")]
    )
    # the first arrival of an instant wins, as in the job's de-duplication
    first = rows.group_by(["meter_id", "measurement_type", "t"], use_threads=False).aggregate([("value", "first")])
    starts = pc.multiply(pc.divide(first["t"], window_ms), window_ms)
    first = first.append_column("window_start", starts)
    windows = first.group_by(["meter_id", "measurement_type", "window_start"]).aggregate(
        [
            ("value_first", "count"),
            ("value_first", "mean"),
            ("value_first", "min"),
            ("value_first", "max"),
            ("value_first", "stddev", pc.VarianceOptions(ddof=0)),
        ]
    )
    frame = windows.to_pandas().rename(
        columns={
            "value_first_count": "readings",
            "value_first_mean": "avg",
            "value_first_min": "min",
            "value_first_max": "max",
            "value_first_stddev": "stddev",
        }
    )
    frame = frame[(frame["window_start"] >= start_ms) & (frame["window_start"] < end_ms)]
    frame["window_end"] = frame["window_start"] + window_ms
    return frame[columns].sort_values(["meter_id", "measurement_type", "window_start"]).reset_index(drop=True)


def _iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="milliseconds")
