"""Resolve a pipeline's endpoints on the embedded (local) runtime.

A manifest may name a Kafka cluster (``spec.source.bootstrapServers``); otherwise the embedded
broker of ``$METERFLOW_HOME`` is used, started on demand so every command works on its own.
"""

from __future__ import annotations

from meterflow.spec.model import MeterPipeline
from meterflow.stack.broker import EmbeddedBroker


def bootstrap_for(pipeline: MeterPipeline, start: bool = True) -> str:
    """The bootstrap servers of ``pipeline``: its own, or the embedded broker's."""
    if pipeline.spec.source.bootstrap_servers:
        return pipeline.spec.source.bootstrap_servers
    broker = EmbeddedBroker()
    info = broker.up() if start else broker.running()
    if info is None:
        from meterflow.errors import StackError

        raise StackError("no embedded Kafka broker is running; start one with `meterflow up`")
    return info.bootstrap
