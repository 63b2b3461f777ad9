"""The kopf operator that reconciles MeterPipeline resources.

``kopf run -m meterflow_operator.main`` (or ``python -m meterflow_operator``) registers the
handlers of :mod:`meterflow_operator.handlers`. The objects it owns are rendered by the pure
functions of :mod:`meterflow_operator.render`; :mod:`meterflow_operator.reconcile` applies them.
See docs/operator.md.
"""
