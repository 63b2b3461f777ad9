"""The serving views (``views/serving.sql``), rendered with a pipeline's time zone and re-created.

ClickHouse's date functions need a *constant* time zone, and a migration knows only the database,
so these views are not a migration: :func:`apply_views` renders them with the pipeline's
``spec.timeZone`` and its measurement kinds and runs ``CREATE OR REPLACE VIEW`` — idempotent, and
a changed time zone is picked up on the next run. Called by the batch job, ``meterflow export``
and ``meterflow report`` (after :func:`~meterflow_clickhouse.migrate.apply_with`).
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from typing import Any

from meterflow_clickhouse.migrate import Migration

VIEWS_FILE = "serving.sql"


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def kind_expression(kinds: Iterable[tuple[str, str, str]]) -> str:
    """ClickHouse SQL: the kind of a row's (measurement_type, series); ``''`` when not declared."""
    branches = [
        f"measurement_type = {_literal(name)} AND series = {_literal(series)}, {_literal(kind)}"
        for name, series, kind in kinds
    ]
    if not branches:
        return "''"
    return f"multiIf({', '.join(branches)}, '')"


def view_statements(database: str, time_zone: str, kinds: Iterable[tuple[str, str, str]]) -> list[str]:
    """The rendered ``CREATE OR REPLACE VIEW`` statements, in order."""
    sql = resources.files("meterflow_clickhouse").joinpath("views", VIEWS_FILE).read_text()
    kind = kind_expression(kinds)
    zone = time_zone.replace("'", "")
    return [
        s.replace("{time_zone}", zone).replace("{kind}", kind) for s in Migration(0, "views", sql).statements(database)
    ]


def apply_views(client: Any, database: str, time_zone: str, kinds: Iterable[tuple[str, str, str]]) -> None:
    """(Re-)create the serving views of ``database`` on an open client."""
    for statement in view_statements(database, time_zone, kinds):
        client.command(statement)
