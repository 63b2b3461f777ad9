"""The Kubernetes API as the operator uses it: plain dicts over the ``kubernetes`` client's REST layer.

A handful of verbs on a handful of kinds — get, list by label, server-side apply, merge/JSON
patch, delete — with the paths built here, so no discovery round-trips happen and every object
stays a dict (what the render functions return). Errors come out as :class:`KubeError` with the
HTTP status and the API server's message. Called by :mod:`meterflow_operator.apply`,
:mod:`meterflow_operator.schema` and :mod:`meterflow_operator.reconcile`;
:func:`connect` is the one client factory (in-cluster, else ``$KUBECONFIG``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

FIELD_MANAGER = "meterflow-operator"
REQUEST_TIMEOUT_S = 30.0


class KubeError(Exception):
    """The API server refused a request (or could not be reached)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409


@dataclass(frozen=True)
class Kind:
    """A resource kind and where it lives in the API."""

    api_version: str
    kind: str
    plural: str

    def path(self, namespace: str, name: str | None = None, subresource: str | None = None) -> str:
        """``/api/v1/namespaces/ns/configmaps/name`` or ``/apis/group/version/...``."""
        root = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        path = f"{root}/namespaces/{quote(namespace, safe='')}/{self.plural}"
        if name is not None:
            path += f"/{quote(name, safe='')}"
        if subresource is not None:
            path += f"/{subresource}"
        return path


CONFIG_MAP = Kind("v1", "ConfigMap", "configmaps")
SECRET = Kind("v1", "Secret", "secrets")
KAFKA_TOPIC = Kind("kafka.strimzi.io/v1", "KafkaTopic", "kafkatopics")
FLINK_DEPLOYMENT = Kind("flink.apache.org/v1beta1", "FlinkDeployment", "flinkdeployments")
METER_PIPELINE = Kind("meterflow.io/v1alpha1", "MeterPipeline", "meterpipelines")
DEPLOYMENT = Kind("apps/v1", "Deployment", "deployments")
SERVICE_ACCOUNT = Kind("v1", "ServiceAccount", "serviceaccounts")

KINDS = {
    k.kind: k for k in (CONFIG_MAP, SECRET, KAFKA_TOPIC, FLINK_DEPLOYMENT, METER_PIPELINE, DEPLOYMENT, SERVICE_ACCOUNT)
}


def kind_of(obj: Mapping[str, Any]) -> Kind:
    """The :class:`Kind` of a rendered object."""
    try:
        return KINDS[obj["kind"]]
    except KeyError:
        raise ValueError(f"the operator does not manage objects of kind {obj.get('kind')!r}") from None


def connect() -> k8s_client.ApiClient:
    """An API client: the pod's service account in a cluster, else ``$KUBECONFIG``/~/.kube/config."""
    configuration = k8s_client.Configuration()
    try:
        k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except k8s_config.ConfigException:
        k8s_config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    return k8s_client.ApiClient(configuration)


class Kube:
    """A few verbs on namespaced objects, as dicts."""

    def __init__(self, api: k8s_client.ApiClient) -> None:
        self.api = api

    # reads

    def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return self._call("GET", kind.path(namespace, name))
        except KubeError as exc:
            if exc.not_found:
                return None
            raise

    def select(self, kind: Kind, namespace: str, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        """Objects of ``kind`` in ``namespace`` carrying every label of ``labels``."""
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        result = self._call("GET", kind.path(namespace), query={"labelSelector": selector})
        items: list[dict[str, Any]] = result.get("items", [])
        return items

    def version(self) -> str:
        """The API server's version (a cheap liveness check of this client)."""
        return str(self._call("GET", "/version").get("gitVersion", "unknown"))

    # writes

    def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply of a whole object as ``meterflow-operator``, taking over conflicting fields."""
        kind = kind_of(obj)
        meta = obj["metadata"]
        return self._call(
            "PATCH",
            kind.path(meta["namespace"], meta["name"]),
            query={"fieldManager": FIELD_MANAGER, "force": "true"},
            body=dict(obj),
            content_type="application/apply-patch+yaml",
        )

    def merge_patch(
        self, kind: Kind, namespace: str, name: str, patch: Mapping[str, Any], subresource: str | None = None
    ) -> dict[str, Any]:
        """An RFC 7386 merge patch (lists are replaced whole; ``None`` removes a key)."""
        return self._call(
            "PATCH",
            kind.path(namespace, name, subresource),
            query={"fieldManager": FIELD_MANAGER},
            body=dict(patch),
            content_type="application/merge-patch+json",
        )

    def json_patch(self, kind: Kind, namespace: str, name: str, ops: list[dict[str, Any]]) -> dict[str, Any]:
        """An RFC 6902 JSON patch (use a ``test`` op to make it conditional)."""
        return self._call(
            "PATCH",
            kind.path(namespace, name),
            query={"fieldManager": FIELD_MANAGER},
            body=ops,
            content_type="application/json-patch+json",
        )

    def delete(self, kind: Kind, namespace: str, name: str) -> bool:
        """Delete (in the background); False when it was already gone."""
        try:
            self._call("DELETE", kind.path(namespace, name), query={"propagationPolicy": "Background"})
        except KubeError as exc:
            if exc.not_found:
                return False
            raise
        return True

    # transport

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str | None = None,
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        try:
            request = self.api.param_serialize(
                method,
                path,
                query_params=list((query or {}).items()),
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            response = self.api.call_api(*request, _request_timeout=REQUEST_TIMEOUT_S)
            data = response.read()  # type: ignore[no-untyped-call]
        except ApiException as exc:
            raise KubeError(exc.status or 0, _message(exc.body) or str(exc.reason)) from None
        except (OSError, urllib3.exceptions.HTTPError) as exc:  # refused, reset, timed out
            raise KubeError(0, f"cannot reach the Kubernetes API: {exc}") from None
        text = data.decode("utf-8", errors="replace") if data else ""
        if not 200 <= response.status <= 299:
            raise KubeError(response.status, _message(text) or f"HTTP {response.status} from {method} {path}")
        parsed: dict[str, Any] = json.loads(text) if text else {}
        return parsed


def _message(body: str | bytes | None) -> str:
    """The ``message`` of a Kubernetes Status body, else the body itself."""
    if not body:
        return ""
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    try:
        status = json.loads(body)
    except ValueError:
        return body.strip()[:500]
    if isinstance(status, dict) and status.get("message"):
        return str(status["message"])
    return body.strip()[:500]
