"""The serving views (``views/serving.sql``), rendered with a pipeline's time zone and re-created.

ClickHouse's date functions need a *constant* time zone, and a migration knows only the database,
so these views are not a migration: :func:`apply_views` renders them with the pipeline's
``spec.timeZone``, its measurements' kinds and the units their consumption is served in
(:func:`meterflow.consumption.consumption_unit`: a power's kW is served as kWh), and runs
``CREATE OR REPLACE VIEW`` — idempotent, and a changed time zone is picked up on the next run.
Called by the batch job, ``meterflow export`` and ``meterflow report`` (after
:func:`~meterflow_clickhouse.migrate.apply_with`).
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from typing import Any, NamedTuple

from meterflow.consumption import consumption_unit
from meterflow.spec.model import MeasurementKind, MeasurementSpec
from meterflow_clickhouse.migrate import Migration

VIEWS_FILE = "serving.sql"


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Served(NamedTuple):
    """What the views know of one measurement (measurement_type, series)."""

    name: str
    series: str
    kind: str
    consumption_unit: str | None
    """The unit of its consumption; None for a gauge."""


def served(measurements: Iterable[MeasurementSpec]) -> list[Served]:
    """The views' view of a spec's measurements."""
    return [Served(m.name, m.series, MeasurementKind(m.kind).value, consumption_unit(m)) for m in measurements]


def _per_series(pairs: Iterable[tuple[str, str, str | None]], otherwise: str) -> str:
    """ClickHouse SQL: a value looked up by a row's (measurement_type, series); ``otherwise`` when not declared."""
    branches = [
        f"measurement_type = {_literal(name)} AND series = {_literal(series)}, "
        f"{'NULL' if value is None else _literal(value)}"
        for name, series, value in pairs
    ]
    if not branches:
        return otherwise
    return f"multiIf({', '.join(branches)}, {otherwise})"


def kind_expression(measurements: Iterable[Served]) -> str:
    """ClickHouse SQL: the kind of a row's (measurement_type, series); ``''`` when not declared."""
    return _per_series(((m.name, m.series, m.kind) for m in measurements), "''")


def consumption_unit_expression(measurements: Iterable[Served]) -> str:
    """ClickHouse SQL: the unit of a row's consumption; NULL for a gauge or an undeclared measurement."""
    return _per_series(((m.name, m.series, m.consumption_unit) for m in measurements), "NULL")


def view_statements(database: str, time_zone: str, measurements: Iterable[Served]) -> list[str]:
    """The rendered ``CREATE OR REPLACE VIEW`` statements, in order."""
    sql = resources.files("meterflow_clickhouse").joinpath("views", VIEWS_FILE).read_text()
    measurements = list(measurements)
    kind = kind_expression(measurements)
    unit = consumption_unit_expression(measurements)
    zone = time_zone.replace("'", "")
    return [
        s.replace("{time_zone}", zone).replace("{kind}", kind).replace("{consumption_unit}", unit)
        for s in Migration(0, "views", sql).statements(database)
    ]


def apply_views(client: Any, database: str, time_zone: str, measurements: Iterable[Served]) -> None:
    """(Re-)create the serving views of ``database`` on an open client."""
    for statement in view_statements(database, time_zone, measurements):
        client.command(statement)
