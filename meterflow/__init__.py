"""meterflow: smart-meter telemetry analytics driven by one ``MeterPipeline`` manifest.

The shared core: the spec model (:mod:`meterflow.spec`), the embedded stack
(:mod:`meterflow.stack`), the reading contract (:mod:`meterflow.reading`) and the CLI
(:mod:`meterflow.cli`). The components (``flink_jobs``, ``simulator``, ``meterflow_operator``,
``meterflow_clickhouse``, ``meterflow_iceberg``) build on it; the core imports none of them,
except the CLI, which is the top layer.
"""

__version__ = "0.1.0"
