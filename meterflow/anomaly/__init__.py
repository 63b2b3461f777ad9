"""Isolation Forest anomaly detection on closed windows (docs/anomalies.md).

The pure half, shared by every layer: which features a pipeline's spec asks for and how window
rows become them (:mod:`.features`), the model and its record (:mod:`.model`), the lifecycle of
the alerts anomalous windows raise (:mod:`.alerts`) and how verdicts compare with a simulation's
truth (:mod:`.evaluate`). Where windows come from (the lake, ClickHouse) and where models are kept
(beside the lake) belong to the layers that own those stores.
"""
