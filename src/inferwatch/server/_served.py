"""A model as the server holds it: adapter, schema, compiled validator and metric children."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from inferwatch._typing import Task
from inferwatch.metrics import Metrics, ModelMetrics
from inferwatch.ports import ModelAdapter
from inferwatch.schema import InstanceValidator, Schema
from inferwatch.server._batching import BatchSettings, InferenceWorker

__all__ = ["ServedModel"]


@dataclass(frozen=True, slots=True)
class ServedModel:
    """One served model version; built once at start, read on every request.

    Use :meth:`build` rather than the constructor: it compiles the validator and
    resolves the metric children (with the model's classes) exactly once.
    """

    name: str
    version: str
    adapter: ModelAdapter
    schema: Schema
    validator: InstanceValidator
    metrics: ModelMetrics
    forced_task: Task | None = None  # models[].task / --task
    #: runs the model off the event loop, batching concurrent requests (server._batching)
    worker: InferenceWorker = field(default=None, compare=False, repr=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.worker is None:
            worker = InferenceWorker(self.name, self.version, self.adapter, metrics=self.metrics)
            object.__setattr__(self, "worker", worker)

    @classmethod
    def build(
        cls,
        name: str,
        version: str,
        adapter: ModelAdapter,
        schema: Schema,
        metrics: Metrics,
        *,
        max_batch: int = 1000,
        allow_extra: bool = False,
        task: Task | None = None,
        batching: BatchSettings | None = None,
    ) -> ServedModel:
        validator = InstanceValidator(schema, max_batch=max_batch, allow_extra=allow_extra)
        # a regressor's outputs are numbers, not classes: predictions_total skips them
        children = metrics.for_model(name, version, adapter.classes, task=task or schema.task)
        worker = InferenceWorker(name, version, adapter, batching, children)
        return cls(name, version, adapter, schema, validator, children, task, worker)

    @property
    def task(self) -> str | None:
        """The forced task, else the schema's, else classification for a model with classes."""
        if self.forced_task is not None:
            return self.forced_task
        if self.schema.task is not None:
            return self.schema.task
        return "classification" if self.adapter.classes else None

    def describe(self) -> dict[str, Any]:
        """The summary ``GET /v1/models`` lists."""
        out: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "flavor": self.adapter.flavor,
            "task": self.task,
            "features": list(self.schema.names),
        }
        classes = self.adapter.classes
        if classes is not None:
            out["classes"] = list(classes)
        return out
