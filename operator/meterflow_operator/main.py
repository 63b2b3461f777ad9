"""Entry point for ``kopf run -m meterflow_operator.main``: kopf's settings and the handlers.

Importing this module registers the handlers of :mod:`meterflow_operator.handlers`; the
start-up handler below configures kopf from :class:`~meterflow_operator.settings.Settings`
(``METERFLOW_OPERATOR_*``) and serves the operator's Prometheus metrics: watch timeouts (server
and client, against stale watch streams),
handler threads, which Events get posted, kopf's own bookkeeping under ``meterflow.io``
annotations (the status subresource stays ours) and the finalizer's name. Run it as::

    kopf run -m meterflow_operator.main --standalone -n NAMESPACE --liveness http://0.0.0.0:8080/healthz

or ``python -m meterflow_operator`` (the same, see :mod:`meterflow_operator.__main__`).
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from meterflow.errors import StackError
from meterflow_operator import handlers, metrics
from meterflow_operator.handlers import SETTINGS

FINALIZER = "meterflow.io/finalizer"
ANNOTATION_PREFIX = "meterflow.io"


def configure(settings: kopf.OperatorSettings) -> None:
    """Apply the operator's settings to kopf's (also used by tests)."""
    ours = SETTINGS
    settings.watching.server_timeout = ours.server_timeout
    settings.watching.client_timeout = ours.client_timeout
    settings.watching.connect_timeout = 10
    settings.execution.max_workers = ours.max_workers
    settings.execution.default_backoff = ours.default_backoff
    settings.posting.level = ours.posting_level_number
    settings.posting.reporting_component = "meterflow-operator"
    settings.peering.standalone = True  # one replica; no KopfPeering objects (also `--standalone`)
    # A deleted pipeline's finalizer goes only once its timer has exited; a timer caught in a
    # (synchronous, uninterruptible) reconcile is polled this often instead of kopf's 60 s.
    settings.background.cancellation_polling = 1.0
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATION_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )


@kopf.on.startup()
def startup(settings: kopf.OperatorSettings, logger: logging.Logger | logging.LoggerAdapter[Any], **_: Any) -> None:
    """Configure kopf, serve the metrics, and say what the operator will do."""
    configure(settings)
    try:
        endpoint = metrics.start(SETTINGS.metrics_port)
    except StackError as exc:  # the operator's work matters more than its metrics
        logger.error("meterflow-operator: no metrics: %s", exc)
        endpoint = None
    logger.info(
        "meterflow-operator: resync every %.0fs, Flink service account %r, state under %s, metrics %s",
        SETTINGS.resync_seconds,
        SETTINGS.flink_service_account,
        SETTINGS.state_uri,
        f"on port {endpoint.port}" if endpoint else "off",
    )


@kopf.on.probe(id="api")
def api_reachable(**_: Any) -> str:
    """Liveness detail: the operator's own API client still answers (/healthz lists probe results)."""
    return handlers.kube().version()
