"""Ownership and server-side apply of a MeterPipeline's children.

Every child carries a controller ownerReference to its MeterPipeline (added here, so the render
functions stay free of server-assigned uids) and is written with server-side apply as field
manager ``meterflow-operator`` with ``force``: applying the same rendered object again is a
no-op, a deleted child is recreated and a field someone edited is set back. Releasing (the
Retain policy) removes only our ownerReference. Called by :mod:`meterflow_operator.reconcile`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from meterflow_operator.kube import Kind, Kube, kind_of

CREATED, UPDATED, UNCHANGED = "Created", "Updated", "Unchanged"


def owner_reference(owner: Mapping[str, Any]) -> dict[str, Any]:
    """A controller ownerReference to ``owner`` (GC deletes the child with it, unless released)."""
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def owned(obj: Mapping[str, Any], owner: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``obj`` with ``owner``'s ownerReference (and namespace)."""
    child = copy.deepcopy(dict(obj))
    meta = child.setdefault("metadata", {})
    meta.setdefault("namespace", owner["metadata"]["namespace"])
    meta["ownerReferences"] = [owner_reference(owner)]
    return child


@dataclass(frozen=True)
class Applied:
    """What applying one child did."""

    kind: str
    name: str
    action: str  # Created, Updated or Unchanged
    object: dict[str, Any]


def apply_child(
    kube: Kube, owner: Mapping[str, Any], obj: Mapping[str, Any], existing: Mapping[str, Any] | None
) -> Applied:
    """Server-side apply ``obj`` owned by ``owner``; ``existing`` is the live object (None if absent)."""
    result = kube.apply(owned(obj, owner))
    return Applied(obj["kind"], obj["metadata"]["name"], _action(existing, result), result)


def _action(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> str:
    """Created, Updated or Unchanged: the generation tells spec changes apart from status writes
    of the child's own operator; kinds without one (ConfigMap) compare the resourceVersion."""
    if before is None:
        return CREATED
    old, new = before.get("metadata", {}), after.get("metadata", {})
    if old.get("generation") is not None and new.get("generation") is not None:
        return UNCHANGED if old["generation"] == new["generation"] else UPDATED
    return UNCHANGED if old.get("resourceVersion") == new.get("resourceVersion") else UPDATED


def is_owned_by(obj: Mapping[str, Any], owner_uid: str) -> bool:
    return any(ref.get("uid") == owner_uid for ref in obj.get("metadata", {}).get("ownerReferences") or ())


def release(kube: Kube, obj: Mapping[str, Any], owner_uid: str) -> bool:
    """Remove ``owner_uid``'s ownerReference from a live child; False when it held none.

    A JSON patch guarded by a ``test`` of the resourceVersion: a concurrent change makes it fail
    (and the caller retry) rather than drop someone else's reference.
    """
    meta = obj["metadata"]
    refs = meta.get("ownerReferences") or []
    keep = [ref for ref in refs if ref.get("uid") != owner_uid]
    if len(keep) == len(refs):
        return False
    kind: Kind = kind_of(obj)
    ops: list[dict[str, Any]] = [{"op": "test", "path": "/metadata/resourceVersion", "value": meta["resourceVersion"]}]
    ops.append({"op": "replace", "path": "/metadata/ownerReferences", "value": keep} if keep else
               {"op": "remove", "path": "/metadata/ownerReferences"})  # fmt: skip
    kube.json_patch(kind, meta["namespace"], meta["name"], ops)
    return True
