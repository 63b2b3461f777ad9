"""Resolve a pipeline's Kafka on the embedded (local) runtime.

A manifest may name a Kafka cluster (``spec.source.bootstrapServers``); otherwise the embedded
broker of ``$METERFLOW_HOME`` is used, and it must be running: ``meterflow up`` starts it. Only
``meterflow demo`` (one command for everything) starts it on demand. A command that quietly
started a broker would leave a process behind that nobody asked for, on ports of its choosing.
"""

from __future__ import annotations

from meterflow.errors import StackError
from meterflow.spec.model import MeterPipeline
from meterflow.stack.broker import EmbeddedBroker


def bootstrap_for(pipeline: MeterPipeline, start: bool = False) -> str:
    """The bootstrap servers of ``pipeline``: its own, or the running embedded broker's (started
    first with ``start``)."""
    if pipeline.spec.source.bootstrap_servers:
        return pipeline.spec.source.bootstrap_servers
    broker = EmbeddedBroker()
    info = broker.up() if start else broker.running()
    if info is None:
        raise StackError(
            f"no Kafka broker is running for {broker.home.parent}; start it with `meterflow up` "
            "(or set spec.source.bootstrapServers)"
        )
    return info.bootstrap
