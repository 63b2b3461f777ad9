"""The one provisioning path: making a pipeline's places exist, and removing them.

Where the places are is :mod:`meterflow.stack.endpoints`' one rule (``resolve`` → ``Endpoints``);
what exists there is decided here, for every caller:

* ``meterflow run`` (the streaming job's local set-up): :func:`provision` — topics, the Iceberg
  table, the ClickHouse schema and serving views, the meters file;
* the operator: :func:`ensure_clickhouse` and :func:`ensure_lake` (apart, so that each failure is
  classified), and :func:`drop_clickhouse` / :func:`drop_lake` for the Delete retention policy —
  Strimzi owns the topics there;
* the FlinkDeployment's job: only :func:`publish_meter_file` (the file is in its image; the
  operator and Strimzi did the rest);
* ``meterflow reset``: :func:`deprovision`.

The batch, ``meterflow report`` and ``export`` need only the served tables and call
:func:`meterflow_clickhouse.schema.ensure_schema` on the session they already hold.
"""

from meterflow_provision.pipeline import (
    deprovision,
    drop_clickhouse,
    drop_lake,
    ensure_clickhouse,
    ensure_lake,
    provision,
    publish_meter_file,
    sink_group,
)

__all__ = [
    "deprovision",
    "drop_clickhouse",
    "drop_lake",
    "ensure_clickhouse",
    "ensure_lake",
    "provision",
    "publish_meter_file",
    "sink_group",
]
