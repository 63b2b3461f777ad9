"""Battery normalisation, consumption factors and units, and the serving views' rendering (pure)."""

from __future__ import annotations

import pytest

from flink_jobs.batch import battery
from meterflow.consumption import consumption_factor, consumption_unit
from meterflow_clickhouse.views import Served, consumption_unit_expression, kind_expression, served, view_statements
from tests.conftest import unique_pipeline


@pytest.mark.parametrize(
    ("raw", "volts"),
    [(64.0, 3.0), (77.0, 3.6), (70.5, 3.3), (3.3, 3.3), (1.6, 1.6), (10.0, 10.0), (10.5, 0.5307692307692307)],
)
def test_battery_readings_on_either_scale_become_volts(raw: float, volts: float) -> None:
    assert battery.normalise(raw) == volts


def test_battery_measurements_are_known_by_name() -> None:
    assert battery.is_battery("Battery") and battery.is_battery("battery_level") and not battery.is_battery("Pulse1")


def test_power_consumes_energy_in_unit_hours_and_gauges_consume_nothing() -> None:
    spec = {m.name: m for m in unique_pipeline("household-power").spec.measurements}
    active, voltage, kitchen = spec["global_active_power"], spec["voltage"], spec["sub_metering_1"]
    assert (active.kind, active.unit, active.interval) == ("power", "kW", "1m")
    assert consumption_factor(active) == 60_000 / 3_600_000  # a minute's mean kW is kW/60 kWh
    assert consumption_unit(active) == "kWh"
    assert (consumption_factor(kitchen), consumption_unit(kitchen)) == (1.0, "Wh")
    assert (consumption_factor(voltage), consumption_unit(voltage)) == (0.0, None)
    water = {m.name: m for m in unique_pipeline("water-meters").spec.measurements}
    assert (consumption_factor(water["Pulse1_Total"]), consumption_unit(water["Pulse1_Total"])) == (0.0, "L")


def test_serving_views_are_rendered_with_the_zone_kinds_and_consumption_units() -> None:
    measurements = [Served("Pulse1", "P1", "interval", "L"), Served("it's", "x", "gauge", None)]
    assert kind_expression(measurements) == (
        "multiIf(measurement_type = 'Pulse1' AND series = 'P1', 'interval', "
        "measurement_type = 'it\\'s' AND series = 'x', 'gauge', '')"
    )
    assert consumption_unit_expression(measurements) == (
        "multiIf(measurement_type = 'Pulse1' AND series = 'P1', 'L', "
        "measurement_type = 'it\\'s' AND series = 'x', NULL, NULL)"
    )
    assert kind_expression([]) == "''" and consumption_unit_expression([]) == "NULL"
    statements = view_statements("db1", "Europe/Madrid", measurements)
    assert [s.split(" AS", 1)[0] for s in statements] == [
        "CREATE OR REPLACE VIEW db1.speed_daily",
        "CREATE OR REPLACE VIEW db1.consumption_daily",
        "CREATE OR REPLACE VIEW db1.speed_vs_batch",
    ]
    assert "toDate(a.window_start, 'Europe/Madrid')" in statements[0]
    assert not any("{" in s for s in statements)


def test_a_spec_is_served_with_its_kinds_and_consumption_units() -> None:
    household = served(unique_pipeline("household-power").spec.measurements)
    assert [(m.name, m.kind, m.consumption_unit) for m in household] == [
        ("global_active_power", "power", "kWh"),
        ("global_reactive_power", "gauge", None),
        ("voltage", "gauge", None),
        ("global_intensity", "gauge", None),
        ("sub_metering_1", "interval", "Wh"),
        ("sub_metering_2", "interval", "Wh"),
        ("sub_metering_3", "interval", "Wh"),
    ]
