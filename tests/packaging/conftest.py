"""Fixtures of the packaging tests: the shared test API server with our CRD (the chart's crds/
copy) and the upstream Strimzi and Flink CRDs installed (and the Prometheus Operator's monitors'
when found: tests.k8s.fixtures.prometheus_operator_crds), and a fresh namespace per test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.k8s.apiserver import ApiServer
from tests.k8s.fixtures import apiserver, k8s_namespace, prometheus_operator_crds, upstream_crds  # noqa: F401
from tests.packaging.chart import CHART, missing_helm_reason


@pytest.fixture(scope="session")
def chart_crds(apiserver: ApiServer, upstream_crds: list[Path]) -> ApiServer:  # noqa: F811
    """The API server with the chart's CRD and the upstream ones, Established and discoverable."""
    reason = missing_helm_reason()
    if reason:
        pytest.skip(reason)
    apiserver.install_crds(
        [CHART / "crds" / "meterpipelines.meterflow.io.yaml", *upstream_crds, *(prometheus_operator_crds() or [])]
    )
    return apiserver
