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
    alive: Callable[[], bool] | None = None,
) -> T:
    """Call ``probe`` until it returns something truthy; return that, or raise :class:`WaitTimeoutError`.

    With ``alive`` (is the process that makes it happen still running?) there is no deadline: the
    wait lasts as long as that process does, since a busy machine makes the event later, not false.
    """
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
        gone = alive is not None and not alive()
        if gone or (alive is None and time.monotonic() > deadline):
            detail = describe() if describe else (f"last error: {last_error}" if last_error else "")
            why = "the process that was to do it exited" if gone else f"timed out after {timeout:.0f}s"
            raise WaitTimeoutError(f"{why} waiting for {what}. {detail}".strip())
        time.sleep(interval)
