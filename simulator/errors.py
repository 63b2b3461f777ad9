"""The error ``meterflow simulate`` and ``meterflow replay`` raise on purpose.

Raised by every module of :mod:`simulator` for a bad option, manifest or data file; the CLI
(:mod:`meterflow_cli.simulate`) lets it through to the app, which prints it as one line.
"""

from __future__ import annotations

from meterflow.errors import MeterflowError


class SimulatorError(MeterflowError):
    """A simulate or replay option, manifest or data file cannot be used; the message says how to fix it."""
