"""The MeterPipeline spec: model, loading, derived names and the generated CRD."""

from meterflow.spec.loader import load_manifest, parse_manifest
from meterflow.spec.model import (
    API_GROUP,
    API_VERSION,
    KIND,
    MeasurementKind,
    MeasurementSpec,
    MeterKind,
    MeterPipeline,
    MeterPipelineSpec,
    RuleSpec,
)
from meterflow.spec.names import PipelineNames, Topics, names_for

__all__ = [
    "API_GROUP",
    "API_VERSION",
    "KIND",
    "MeasurementKind",
    "MeasurementSpec",
    "MeterKind",
    "MeterPipeline",
    "MeterPipelineSpec",
    "PipelineNames",
    "RuleSpec",
    "Topics",
    "load_manifest",
    "names_for",
    "parse_manifest",
]
