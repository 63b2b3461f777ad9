"""pytest fixtures for the test API server: one server per session, a fresh namespace per test.

Import them into a conftest (``from tests.k8s.fixtures import apiserver, k8s_namespace  # noqa: F401``);
however many conftests do, the session shares one server (:func:`tests.k8s.apiserver.shared_apiserver`).
Tests that use them skip, with the reason, when the binaries or ../shared/crds are absent.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.k8s.apiserver import ApiServer, missing_bins_reason, shared_apiserver

REPO = Path(__file__).resolve().parents[2]
SHARED_CRDS = REPO.parent / "shared" / "crds"
STRIMZI_CRDS = SHARED_CRDS / "strimzi-1.2.0"
FLINK_CRDS = SHARED_CRDS / "flink-kubernetes-operator-1.15.0"
PROMETHEUS_CRD_FILES = ("monitoring.coreos.com_podmonitors.yaml", "monitoring.coreos.com_servicemonitors.yaml")
MONITORING_API = "monitoring.coreos.com/v1"


def prometheus_operator_crds() -> list[Path] | None:
    """The Prometheus Operator's PodMonitor and ServiceMonitor CRDs, from $METERFLOW_PROMETHEUS_CRDS
    (a folder with the two files of the operator's example/prometheus-operator-crd/) or
    ../shared/crds/prometheus-operator; None when neither has them (not in ../shared/crds today)."""
    folder = Path(os.environ.get("METERFLOW_PROMETHEUS_CRDS") or SHARED_CRDS / "prometheus-operator")
    files = [folder / name for name in PROMETHEUS_CRD_FILES]
    return files if all(f.exists() for f in files) else None


@pytest.fixture(scope="session")
def apiserver(tmp_path_factory: pytest.TempPathFactory) -> ApiServer:
    """A real kube-apiserver + etcd (skips when `make k8s-bins` has not been run)."""
    reason = missing_bins_reason()
    if reason:
        pytest.skip(reason)
    return shared_apiserver(tmp_path_factory.mktemp("apiserver"))


@pytest.fixture(scope="session")
def upstream_crds() -> list[Path]:
    """Strimzi's and the Flink Kubernetes Operator's CRD files from ../shared/crds (skips when absent)."""
    files = sorted(STRIMZI_CRDS.glob("*.yaml")) + sorted(FLINK_CRDS.glob("*.yml"))
    if not STRIMZI_CRDS.is_dir() or not FLINK_CRDS.is_dir() or not files:
        pytest.skip(
            f"the upstream Strimzi and Flink operator CRDs are not in {SHARED_CRDS} (a checkout without ../shared)"
        )
    return files


@pytest.fixture
def k8s_namespace(apiserver: ApiServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace named after the test (never deleted: no namespace controller runs)."""
    yield apiserver.create_namespace(request.node.name.split("[")[0].removeprefix("test_")[:30])
