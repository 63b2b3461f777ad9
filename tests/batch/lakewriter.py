"""Write chosen readings into a pipeline's Iceberg table with a Flink batch INSERT (a test helper).

``python -m tests.batch.lakewriter MANIFEST ROWS.json``: each row is ``[meter, measurement, series,
unit, value, event_ms, ingest_ms, partition, offset, late]``. Flink rather than pyiceberg because
pyiceberg appends to a day-partitioned table only with the optional pyiceberg-core package.
"""

from __future__ import annotations

import json
import sys

from flink_jobs.runtime import prepare_local_jvm, table_environment
from meterflow.spec import load_manifest, names_for
from meterflow.stack.endpoints import iceberg_location
from meterflow_iceberg.catalog import flink_catalog_ddl, open_catalog
from meterflow_iceberg.tables import ensure_readings_table


def _literal(row: list[object]) -> str:
    meter, measurement, series, unit, value, event_ms, ingest_ms, partition, offset, late = row
    return (
        f"('{meter}', '{measurement}', '{series}', '{unit}', CAST({value!r} AS DOUBLE), "
        f"CAST(TO_TIMESTAMP_LTZ({event_ms}, 3) AS TIMESTAMP_LTZ(6)), "
        f"CAST(TO_TIMESTAMP_LTZ({ingest_ms}, 3) AS TIMESTAMP_LTZ(6)), {partition}, CAST({offset} AS BIGINT), "
        f"{'TRUE' if late else 'FALSE'})"
    )


def main(manifest: str, rows_file: str) -> None:
    pipeline = load_manifest(manifest)
    names = names_for(pipeline)
    lake = iceberg_location(pipeline)
    ensure_readings_table(open_catalog(lake), names.iceberg_namespace)
    prepare_local_jvm(f"{pipeline.name}-lakewriter")
    t_env = table_environment(streaming=False, config={"parallelism.default": "1"})
    t_env.execute_sql(flink_catalog_ddl(lake))
    with open(rows_file) as handle:
        rows = json.load(handle)
    values = ",\n".join(_literal(r) for r in rows)
    table = f"`{lake.catalog_name}`.`{names.iceberg_namespace}`.`readings`"
    t_env.execute_sql(f"INSERT INTO {table} VALUES\n{values}").wait()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
