"""Feature, Target and Schema: what a model expects, learned from a reference, editable.

Frozen dataclasses (core layer): no I/O.  ``to_dict``/``from_dict`` give the plain
structure that the YAML file holds; the file itself is read and written in ``inferwatch.io``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast, get_args

from inferwatch._typing import FeatureKind, Task
from inferwatch.errors import SchemaError

__all__ = ["FEATURE_KINDS", "TASKS", "Feature", "Schema", "Target"]

FEATURE_KINDS: tuple[str, ...] = get_args(FeatureKind)
TASKS: tuple[str, ...] = get_args(Task)
SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class Feature:
    """One input column.

    ``min``/``max`` and ``categories`` are what the reference showed; they drive data-quality
    checks (out of range, unseen category), not request validation: a new category is data
    to monitor, not a bad request.
    """

    name: str
    kind: FeatureKind
    nullable: bool = False
    integer: bool = False
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] | None = None
    dimension: int | None = None
    description: str | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise SchemaError("a feature needs a non-empty name")
        if self.kind not in FEATURE_KINDS:
            raise SchemaError(
                f"feature {self.name!r}: kind must be one of {', '.join(FEATURE_KINDS)}, "
                f"got {self.kind!r}"
            )
        for key, bound in (("min", self.min), ("max", self.max)):
            if bound is not None and not math.isfinite(bound):
                raise SchemaError(
                    f"feature {self.name!r}: {key} must be a finite number, got {bound}"
                )
        if self.min is not None and self.max is not None and self.min > self.max:
            raise SchemaError(f"feature {self.name!r}: min {self.min} is above max {self.max}")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "nullable": self.nullable}
        if self.integer:
            out["integer"] = True
        if self.min is not None:
            out["min"] = self.min
        if self.max is not None:
            out["max"] = self.max
        if self.categories is not None:
            out["categories"] = list(self.categories)
        if self.dimension is not None:
            out["dimension"] = self.dimension
        if self.description:
            out["description"] = self.description
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "features") -> Feature:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise SchemaError(f"{where}: unknown key(s) {', '.join(unknown)}")
        if "name" not in data or "kind" not in data:
            raise SchemaError(f"{where}: a feature needs 'name' and 'kind'")
        cats = data.get("categories")
        if cats is not None and not isinstance(cats, list | tuple):
            raise SchemaError(f"{where}.categories: must be a list, got {type(cats).__name__}")
        low, high = _bound(data, "min", where), _bound(data, "max", where)
        try:
            return cls(
                name=str(data["name"]),
                kind=cast(FeatureKind, data["kind"]),
                nullable=_flag(data, "nullable", where),
                integer=_flag(data, "integer", where),
                min=low,
                max=high,
                categories=None if cats is None else tuple(str(c) for c in cats),
                dimension=None if data.get("dimension") is None else int(data["dimension"]),
                description=data.get("description"),
            )
        except (TypeError, ValueError) as exc:
            if isinstance(exc, SchemaError):
                raise SchemaError(f"{where}: {exc}") from exc
            raise SchemaError(f"{where}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Target:
    """The ground-truth or the prediction column, with its task."""

    name: str
    task: Task
    classes: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise SchemaError(
                f"column {self.name!r}: task must be one of {', '.join(TASKS)}, got {self.task!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "task": self.task}
        if self.classes is not None:
            out["classes"] = list(self.classes)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> Target:
        if not isinstance(data, Mapping):
            raise SchemaError(f"{where}: must be a mapping with 'name' and 'task'")
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise SchemaError(f"{where}: unknown key(s) {', '.join(unknown)}")
        if "name" not in data or "task" not in data:
            raise SchemaError(f"{where}: needs 'name' and 'task'")
        classes = data.get("classes")
        return cls(
            name=str(data["name"]),
            task=cast(Task, data["task"]),
            classes=None if classes is None else tuple(str(c) for c in classes),
        )


@dataclass(frozen=True, slots=True)
class Schema:
    """The features a model takes, plus its target and prediction columns."""

    features: tuple[Feature, ...]
    target: Target | None = None
    prediction: Target | None = None
    _index: Mapping[str, Feature] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.features:
            raise SchemaError("a schema needs at least one feature")
        index: dict[str, Feature] = {}
        for feat in self.features:
            if feat.name in index:
                raise SchemaError(f"feature {feat.name!r} is listed twice")
            index[feat.name] = feat
        for col in (self.target, self.prediction):
            if col is not None and col.name in index:
                raise SchemaError(f"column {col.name!r} is both a feature and a target/prediction")
        object.__setattr__(self, "_index", index)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def task(self) -> Task | None:
        col = self.target or self.prediction
        return None if col is None else col.task

    def with_task(self, task: Task | None) -> Schema:
        """This schema with its target's and prediction's task forced to ``task`` (None:
        unchanged).  A column whose task changes loses its class list, which belonged to
        the other task (a forced classification learns its classes from the outputs)."""
        if task is None:
            return self

        def forced(col: Target | None) -> Target | None:
            if col is None or col.task == task:
                return col
            return Target(col.name, task)

        return Schema(self.features, forced(self.target), forced(self.prediction))

    def __getitem__(self, name: str) -> Feature:
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(f"no feature named {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __iter__(self) -> Iterator[Feature]:
        return iter(self.features)

    def __len__(self) -> int:
        return len(self.features)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": SCHEMA_VERSION,
            "features": [f.to_dict() for f in self.features],
        }
        if self.target is not None:
            out["target"] = self.target.to_dict()
        if self.prediction is not None:
            out["prediction"] = self.prediction.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schema:
        if not isinstance(data, Mapping):
            raise SchemaError("a schema is a mapping with a 'features' list")
        unknown = sorted(set(data) - {"version", "features", "target", "prediction"})
        if unknown:
            raise SchemaError(f"schema: unknown key(s) {', '.join(unknown)}")
        version = data.get("version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise SchemaError(f"schema: version {version!r} is not supported (expected 1)")
        feats = data.get("features")
        if not isinstance(feats, list):
            raise SchemaError("schema: 'features' must be a list")
        features = tuple(
            Feature.from_dict(f, where=f"features[{i}]") if isinstance(f, Mapping) else _bad(i)
            for i, f in enumerate(feats)
        )
        target = data.get("target")
        prediction = data.get("prediction")
        return cls(
            features=features,
            target=None if target is None else Target.from_dict(target, "target"),
            prediction=None if prediction is None else Target.from_dict(prediction, "prediction"),
        )


def _bad(i: int) -> Feature:
    raise SchemaError(f"features[{i}]: must be a mapping with 'name' and 'kind'")


def _flag(data: Mapping[str, Any], key: str, where: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        # a quoted "false" in hand-edited YAML would otherwise read as True
        raise SchemaError(f"{where}.{key}: must be true or false, got {value!r}")
    return value


def _bound(data: Mapping[str, Any], key: str, where: str) -> float | None:
    """``data[key]`` (``min`` or ``max``) as a finite float, or None; a SchemaError naming
    the key and the feature otherwise (YAML's ``.nan`` and ``.inf`` are floats)."""
    value = data.get(key)
    if value is None:
        return None
    name = data.get("name")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        got = f"a {type(value).__name__}"
    else:
        try:
            number = float(value)
        except (ValueError, OverflowError):
            got = repr(value)
        else:
            if math.isfinite(number):
                return number
            raise SchemaError(
                f"{where}.{key} (feature {name!r}): must be a finite number, got {value!r}"
            )
    raise SchemaError(f"{where}.{key} (feature {name!r}): must be a number, got {got}")
