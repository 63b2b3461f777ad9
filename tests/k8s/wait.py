"""Poll until something holds, never sleep blindly: the tests' one way to wait for the cluster.

Used by every test that talks to the API server (nothing here happens instantly: the operator
reacts to watch events and timers).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeoutError(AssertionError):
    """The condition did not hold in time; the message says what was awaited and what was last seen."""


def until(
    probe: Callable[[], T | None],
    *,
    timeout: float = 60.0,
    interval: float = 0.2,
    what: str = "condition",
    describe: Callable[[], str] | None = None,
) -> T:
    """Call ``probe`` until it returns something truthy; return that, or raise :class:`WaitTimeoutError`."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = probe()
            if value:
                return value
        except AssertionError:
            raise
        except Exception as exc:  # a probe may fail while the cluster converges
            last_error = exc
        if time.monotonic() > deadline:
            detail = describe() if describe else (f"last error: {last_error}" if last_error else "")
            raise WaitTimeoutError(f"timed out after {timeout:.0f}s waiting for {what}. {detail}".strip())
        time.sleep(interval)
