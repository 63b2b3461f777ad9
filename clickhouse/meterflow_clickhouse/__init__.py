"""ClickHouse: the client factory, the versioned schema and the serving sink.

One factory (:func:`~meterflow_clickhouse.client.session`) for every caller; the DSN picks the
transport — ``chdb:///path`` is ClickHouse's engine in this process, ``http(s)://`` a server.
"""
