"""Safe and trigger values for every rule operator, and the pacer's arithmetic (no services)."""

from __future__ import annotations

import pytest

from meterflow.spec.model import MeasurementSpec, RuleSpec
from simulator.errors import SimulatorError
from simulator.guard import build_guard, fires, trigger_value
from simulator.pacing import Pacer

SPEC = MeasurementSpec.model_validate(
    {"name": "flow", "series": "P1", "unit": "L", "kind": "interval", "min": 0, "max": 1000}
)


def rule(condition: str, threshold: float) -> RuleSpec:
    return RuleSpec.model_validate({"name": "R", "measurement": "flow", "condition": condition, "threshold": threshold})


@pytest.mark.parametrize(
    ("condition", "trigger", "low", "high"),
    [(">", 500.1, 0, 500), (">=", 500.0, 0, 499.9), ("<", 499.9, 500, 1000), ("<=", 500.0, 500.1, 1000)],
)
def test_one_threshold(condition: str, trigger: float, low: float, high: float) -> None:
    r = rule(condition, 500)
    guard = build_guard(SPEC, [r], decimals=1)
    assert (guard.low, guard.high) == (low, high)
    assert trigger_value(guard, r) == trigger and fires(r, trigger)
    for natural in (-5.0, 0.04, 250.0, 499.96, 500.0, 500.04, 750.0, 2000.0):
        safe = guard.safe(natural)
        assert not fires(r, safe) and SPEC.accepts(safe), natural


def test_equality_rules() -> None:
    eq, ne = rule("==", 10), rule("!=", 10)
    guard = build_guard(SPEC, [eq], decimals=0)
    assert guard.safe(10.2) == 11.0 and trigger_value(guard, eq) == 10.0
    guard = build_guard(SPEC, [ne], decimals=0)
    assert guard.safe(123.0) == 10.0 and trigger_value(guard, ne) == 11.0


def test_untriggerable_and_unsatisfiable_rules() -> None:
    at_max = rule(">", 1000)
    assert trigger_value(build_guard(SPEC, [at_max], decimals=0), at_max) is None
    with pytest.raises(SimulatorError, match="no valid flow value avoids the rules"):
        build_guard(SPEC, [rule("<", 600), rule(">", 400)], decimals=0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_rate_cap_spaces_records() -> None:
    clock = FakeClock()
    pacer = Pacer(rate=10, speedup=None, clock=clock, sleep=clock.sleep)
    for _ in range(4):
        pacer.wait(None)
    assert clock.slept == [0.1, 0.1, 0.1]


def test_speedup_follows_event_time() -> None:
    clock = FakeClock()
    pacer = Pacer(rate=None, speedup=60, clock=clock, sleep=clock.sleep)
    for event_ms in (0, 60_000, 60_000, 180_000, None):
        pacer.wait(event_ms)
    assert clock.slept == [1.0, 2.0]
    assert not Pacer(None, None).active
