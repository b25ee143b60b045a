"""Feature schemas: inferred from a reference, edited in YAML, compiled into validation."""

from __future__ import annotations

from inferwatch.schema._infer import InferenceRules, infer_feature, infer_schema, infer_task
from inferwatch.schema._types import FEATURE_KINDS, TASKS, Feature, Schema, Target
from inferwatch.schema._validate import InstanceValidator, instance_json_schema

__all__ = [
    "FEATURE_KINDS",
    "Feature",
    "InferenceRules",
    "InstanceValidator",
    "Schema",
    "TASKS",
    "Target",
    "infer_feature",
    "infer_schema",
    "infer_task",
    "instance_json_schema",
]
