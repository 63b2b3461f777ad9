"""The local runtime's defaults: the embedded stack under ``$METERFLOW_HOME``.

Where the manifest names no Kafka (``spec.source.bootstrapServers``) the embedded broker is used,
and it must be running: ``meterflow up`` starts it. Only
``meterflow demo`` (one command for everything) starts it on demand. A command that quietly
started a broker would leave a process behind that nobody asked for, on ports of its choosing.
"""

from __future__ import annotations

from meterflow.errors import StackError
from meterflow.paths import state_home
from meterflow.stack.broker import EmbeddedBroker
from meterflow.stack.endpoints import Defaults


def local_defaults(start_broker: bool = False) -> Defaults:
    """The local runtime's defaults: chDB, a SQLite catalog and a warehouse under the state folder,
    and the running embedded broker (started first with ``start_broker``)."""
    lake = state_home() / "lake"
    return Defaults(
        clickhouse_dsn=f"chdb://{state_home() / 'clickhouse'}",
        iceberg_catalog_uri=f"sqlite:///{lake / 'catalog.db'}",
        iceberg_warehouse=f"file://{lake / 'warehouse'}",
        kafka_bootstrap=lambda: embedded_bootstrap(start_broker),
    )


def embedded_bootstrap(start: bool = False) -> str:
    """The bootstrap servers of the running embedded broker (started first with ``start``)."""
    broker = EmbeddedBroker()
    info = broker.up() if start else broker.running()
    if info is None:
        raise StackError(
            f"no Kafka broker is running for {broker.home.parent}; start it with `meterflow up` "
            "(or set spec.source.bootstrapServers)"
        )
    return info.bootstrap
