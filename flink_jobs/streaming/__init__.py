"""The streaming job (speed layer): one per MeterPipeline, the same code locally and on Kubernetes.

``python -m flink_jobs.streaming --manifest PATH`` is the entry point a FlinkDeployment runs;
``meterflow run`` calls :func:`flink_jobs.streaming.runner.run_local`.
"""
