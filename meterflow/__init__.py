"""meterflow: smart-meter telemetry analytics driven by one ``MeterPipeline`` manifest.

The shared core: the spec model (:mod:`meterflow.spec`), the embedded stack
(:mod:`meterflow.stack`), the reading contract (:mod:`meterflow.reading`), the consumption rule
and the Kafka client factory. The components (``flink_jobs``, ``simulator``,
``meterflow_operator``, ``meterflow_clickhouse``, ``meterflow_iceberg``, ``meterflow_bridge``)
build on it, and the command line (``meterflow_cli``) on them; the core imports none of them.
"""

__version__ = "0.1.0"
