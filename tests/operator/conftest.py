"""Fixtures of the operator tests: the API server with every CRD installed, a namespace and an
operator process per test, and the clean-up order a finalizer needs (pipelines deleted while
the operator still runs, then the operator stopped).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from operator_support import OPERATOR_MODULE, TEST_OPERATOR_ENV, Cluster

from meterflow.spec.crd import crd_yaml
from tests.k8s.apiserver import ApiServer
from tests.k8s.fixtures import apiserver, k8s_namespace, upstream_crds  # noqa: F401 (fixtures)
from tests.k8s.kopf_process import KopfProcess
from tests.k8s.wait import WaitTimeoutError, until

StartOperator = Callable[..., KopfProcess]


@pytest.fixture(scope="session")
def crds(apiserver: ApiServer, upstream_crds: list[Path], tmp_path_factory: pytest.TempPathFactory) -> ApiServer:  # noqa: F811
    """The API server with our generated CRD and the upstream Strimzi and Flink CRDs, Established."""
    ours = tmp_path_factory.mktemp("crds") / "meterpipelines.meterflow.io.yaml"
    ours.write_text(crd_yaml())
    apiserver.install_crds([ours, *upstream_crds])
    return apiserver


@pytest.fixture
def cluster(crds: ApiServer, k8s_namespace: str) -> Cluster:  # noqa: F811
    """The test's namespace on the API server."""
    return Cluster(crds, k8s_namespace)


@pytest.fixture
def start_operator(cluster: Cluster, tmp_path: Path) -> Iterator[StartOperator]:
    """Start the operator (``kopf run --standalone -n <ns>``) with extra settings; cleaned up after the test."""
    started: list[KopfProcess] = []

    def start(**env: str) -> KopfProcess:
        process = KopfProcess(
            module=OPERATOR_MODULE,
            namespace=cluster.namespace,
            kubeconfig=cluster.server.kubeconfig,
            log=tmp_path / "operator.log",
            env=TEST_OPERATOR_ENV | env,
        )
        started.append(process)
        return process.start()

    yield start
    _delete_pipelines_then_stop(cluster, started)


@pytest.fixture
def operator(start_operator: StartOperator) -> KopfProcess:
    """The operator with the test settings."""
    return start_operator()


def _delete_pipelines_then_stop(cluster: Cluster, started: list[KopfProcess]) -> None:
    """Delete the test's MeterPipelines while an operator runs (the finalizer needs it), then stop it."""
    if not started:
        return
    running = next((p for p in reversed(started) if p.alive), None)
    if running is None:
        running = started[-1].start()
    try:
        for item in cluster.objects("meterflow.io", "v1alpha1", "meterpipelines"):
            if not item["metadata"].get("deletionTimestamp"):
                cluster.delete_pipeline(item["metadata"]["name"])
        until(
            lambda: not cluster.objects("meterflow.io", "v1alpha1", "meterpipelines"),
            timeout=60,
            what="the test's MeterPipelines to be finalized",
        )
    except WaitTimeoutError as exc:
        raise AssertionError(f"{exc}\noperator log:\n{running.log_tail()}") from None
    finally:
        for process in started:
            process.stop()
