"""Anomaly model versions, kept beside the lake they were trained on.

``<the namespace's folder>/anomaly-models/``: ``v<N>/model.joblib`` (the fitted forest),
``v<N>/card.json`` (:class:`~meterflow.anomaly.model.ModelCard`) and ``index.json``, the cards of
every version, written last (a crash mid-save leaves an unlisted folder, never a listed half). The
table's own FileIO writes them, so they go wherever the warehouse is: a local folder, or the object
store on Kubernetes (the same credentials as the lake). A model file is a pickle: read only the
pipeline's own.
"""

from __future__ import annotations

import json
import posixpath
import time

from pyiceberg.table import Table

from meterflow.anomaly.model import AnomalyModel, AnomalyModelError, ModelCard

FOLDER = "anomaly-models"
INDEX = "index.json"


class ModelStore:
    """The model versions of one pipeline's lake."""

    def __init__(self, table: Table) -> None:
        self.root = posixpath.join(posixpath.dirname(table.location().rstrip("/")), FOLDER)
        self._io = table.io

    def cards(self) -> list[ModelCard]:
        """Every version's card, oldest first."""
        index = self._io.new_input(posixpath.join(self.root, INDEX))
        if not index.exists():
            return []
        with index.open() as stream:
            return [ModelCard(**card) for card in json.loads(stream.read())]

    def next_version(self) -> int:
        cards = self.cards()
        return cards[-1].version + 1 if cards else 1

    def save(self, model: AnomalyModel) -> str:
        """Write ``model`` as its card's version; the folder it went to."""
        folder = posixpath.join(self.root, f"v{model.card.version}")
        cards = self.cards()
        if any(c.version == model.card.version for c in cards):
            raise AnomalyModelError(f"model v{model.card.version} exists in {self.root}; versions are never rewritten")
        self._write(posixpath.join(folder, "model.joblib"), model.to_bytes())
        self._write(posixpath.join(folder, "card.json"), model.card.to_json().encode())
        index = "[" + ",\n".join(c.to_json() for c in [*cards, model.card]) + "]"
        self._write(posixpath.join(self.root, INDEX), index.encode())
        return folder

    def load(self, version: int | None = None) -> AnomalyModel | None:
        """Version ``version`` (default: the newest); None when no model was trained yet."""
        cards = self.cards()
        if not cards:
            return None
        chosen = cards[-1] if version is None else next((c for c in cards if c.version == version), None)
        if chosen is None:
            known = ", ".join(f"v{c.version}" for c in cards)
            raise AnomalyModelError(f"no model v{version} in {self.root}; there are {known}")
        with self._io.new_input(posixpath.join(self.root, f"v{chosen.version}", "model.joblib")).open() as stream:
            return AnomalyModel.from_bytes(chosen, stream.read())

    def drop(self) -> int:
        """Delete every version and the index (the pipeline's lake is being dropped); the versions deleted."""
        cards = self.cards()
        for card in cards:
            for name in ("model.joblib", "card.json"):
                self._io.delete(posixpath.join(self.root, f"v{card.version}", name))
        if cards:
            self._io.delete(posixpath.join(self.root, INDEX))
        return len(cards)

    def _write(self, location: str, data: bytes) -> None:
        with self._io.new_output(location).create(overwrite=True) as stream:
            stream.write(data)


class NewestModel:
    """The newest model of a store, re-read when a newer version is listed (looked at most every
    ``recheck_s``): a running pipeline picks up ``meterflow anomalies train`` by itself."""

    def __init__(self, store: ModelStore, recheck_s: float = 30.0) -> None:
        self._store = store
        self._recheck_s = recheck_s
        self._checked = -recheck_s
        self._model: AnomalyModel | None = None

    def __call__(self) -> AnomalyModel | None:
        now = time.monotonic()
        if now - self._checked >= self._recheck_s:
            self._checked = now
            cards = self._store.cards()
            if cards and (self._model is None or cards[-1].version != self._model.card.version):
                self._model = self._store.load(cards[-1].version)
        return self._model
