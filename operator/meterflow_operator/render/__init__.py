"""Pure render functions: a MeterPipeline (and the operator's settings) in, Kubernetes objects out.

No I/O and no clock here: every function returns plain dicts, unit-tested without a cluster
(tests/operator/test_operator_render.py), and :mod:`meterflow_operator.reconcile` applies them.
"""

from meterflow_operator.render.batch import render_batch
from meterflow_operator.render.bridge import render_bridge_deployment, render_bridge_service_account
from meterflow_operator.render.configmap import render_config_map
from meterflow_operator.render.flink import render_flink_deployment
from meterflow_operator.render.topics import render_topics

__all__ = [
    "render_batch",
    "render_bridge_deployment",
    "render_bridge_service_account",
    "render_config_map",
    "render_flink_deployment",
    "render_topics",
]
