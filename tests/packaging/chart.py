"""Render the Helm chart (helm/meterflow) with the helm binary of `make k8s-bins`.

``helm template`` needs no cluster; the rendered objects are then applied to the test API server
(dry-run or for real) by the tests in this folder. Used by tests/packaging only.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from tests.k8s.apiserver import bins_dir

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "meterflow"
RELEASE = "meterflow"


def helm_path() -> Path:
    return bins_dir() / "helm"


def missing_helm_reason() -> str | None:
    """Why helm cannot run here (a skip reason), or None."""
    if not os.access(helm_path(), os.X_OK):
        return f"helm not found at {helm_path()}; run `make k8s-bins` or set METERFLOW_K8S_BINS"
    return None


def helm(*args: str, check: bool = True, kubeconfig: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run helm with its caches in a temporary folder (and a cluster only when ``kubeconfig`` is given)."""
    home = Path(tempfile.gettempdir()) / "meterflow-test-helm"
    env = os.environ | {
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    result = subprocess.run(
        [str(helm_path()), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def template_text(
    values: dict[str, Any] | None = None, namespace: str = "default", *extra: str, release: str = RELEASE
) -> str:
    """``helm template`` of the chart as YAML text (CRDs not included: they are installed apart)."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        yaml.safe_dump(values or {}, handle)
    try:
        return helm("template", release, str(CHART), "--namespace", namespace, "-f", handle.name, *extra).stdout
    finally:
        os.unlink(handle.name)


def render(
    values: dict[str, Any] | None = None, namespace: str = "default", *extra: str, release: str = RELEASE
) -> list[dict[str, Any]]:
    """The rendered objects, parsed."""
    return [doc for doc in yaml.safe_load_all(template_text(values, namespace, *extra, release=release)) if doc]


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    """The objects of ``kind`` (and ``name``)."""
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {[o['metadata']['name'] for o in found]}"
    return found[0]
