"""A pipeline's ClickHouse schema, made to exist: the versioned migrations, then the serving views
rendered for its spec (:mod:`.views`).

The one way the served tables come to be, whoever needs them first: the streaming job's set-up,
the operator, the batch, ``meterflow report`` and ``meterflow export``. Idempotent.
"""

from __future__ import annotations

from typing import Any

from meterflow.spec.model import MeterPipeline
from meterflow.spec.names import names_for
from meterflow_clickhouse.migrate import apply_with
from meterflow_clickhouse.views import apply_views, served


def ensure_schema(client: Any, pipeline: MeterPipeline) -> list[str]:
    """Migrations and serving views of ``pipeline`` on an open client; the migrations applied
    (as :func:`~meterflow_clickhouse.migrate.apply_with` names them)."""
    database = names_for(pipeline).clickhouse_database
    applied = apply_with(client, database)
    apply_views(client, database, pipeline.spec.time_zone, served(pipeline.spec.measurements))
    return applied
