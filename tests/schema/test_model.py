"""Feature, Target and Schema: construction rules and the to_dict/from_dict round trip."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inferwatch.errors import SchemaError
from inferwatch.schema import FEATURE_KINDS, TASKS, Feature, Schema, Target

_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789 -", min_size=1, max_size=12)
_finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@st.composite
def _features(draw: st.DrawFn, name: str) -> Feature:
    kind = draw(st.sampled_from(FEATURE_KINDS))
    lo, hi = sorted((draw(_finite), draw(_finite)))
    ranged = kind == "numeric" and draw(st.booleans())
    cats = draw(st.lists(st.text(max_size=8), unique=True, max_size=6))
    return Feature(
        name,
        kind,  # type: ignore[arg-type]
        nullable=draw(st.booleans()),
        integer=kind == "numeric" and draw(st.booleans()),
        min=lo if ranged else None,
        max=hi if ranged else None,
        categories=tuple(sorted(cats)) if kind == "categorical" else None,
        dimension=draw(st.integers(1, 1024)) if kind == "embedding" else None,
        description=draw(st.none() | st.text(min_size=1, max_size=30)),
    )


@st.composite
def _targets(draw: st.DrawFn, name: str) -> Target:
    task = draw(st.sampled_from(TASKS))
    classes = draw(st.lists(st.text(min_size=1, max_size=5), unique=True, min_size=1))
    return Target(name, task, tuple(classes) if task == "classification" else None)  # type: ignore[arg-type]


@st.composite
def _schemas(draw: st.DrawFn) -> Schema:
    names = draw(st.lists(_names, unique=True, min_size=3, max_size=10))
    features = tuple(draw(_features(n)) for n in names[2:])
    target = draw(st.none() | _targets(names[0]))
    prediction = draw(st.none() | _targets(names[1]))
    return Schema(features, target=target, prediction=prediction)


@given(_schemas())
def test_to_dict_from_dict_round_trips(schema: Schema) -> None:
    data = schema.to_dict()
    assert Schema.from_dict(data) == schema
    assert data["version"] == 1
    assert [f["name"] for f in data["features"]] == list(schema.names)


def test_to_dict_omits_unset_fields() -> None:
    assert Feature("x", "boolean").to_dict() == {"name": "x", "kind": "boolean", "nullable": False}


def _base(**feature: Any) -> dict[str, Any]:
    return {
        "features": [
            {"name": "a", "kind": "numeric"},
            {"name": "b", "kind": "text"},
            {"name": "c", "kind": "categorical", **feature},
        ]
    }


def test_unknown_feature_key_is_rejected_with_its_path() -> None:
    with pytest.raises(SchemaError, match=r"features\[2\]: unknown key\(s\) colour"):
        Schema.from_dict(_base(colour="red"))


@pytest.mark.parametrize("where", ["target", "prediction"])
def test_unknown_target_key_is_rejected_with_its_path(where: str) -> None:
    data = _base()
    data[where] = {"name": "y", "task": "classification", "clases": ["a"]}
    with pytest.raises(SchemaError, match=rf"{where}: unknown key\(s\) clases"):
        Schema.from_dict(data)


def test_target_must_be_a_mapping() -> None:
    data = {**_base(), "target": ["y", "classification"]}
    with pytest.raises(SchemaError, match="target: must be a mapping"):
        Schema.from_dict(data)


def test_unknown_top_level_key_is_rejected() -> None:
    with pytest.raises(SchemaError, match=r"schema: unknown key\(s\) labels"):
        Schema.from_dict({**_base(), "labels": []})


def test_duplicate_feature_names_are_rejected() -> None:
    with pytest.raises(SchemaError, match="feature 'a' is listed twice"):
        Schema((Feature("a", "numeric"), Feature("a", "text")))


def test_feature_that_is_also_the_target_is_rejected() -> None:
    with pytest.raises(SchemaError, match="'a' is both a feature and a target"):
        Schema((Feature("a", "numeric"),), target=Target("a", "regression"))


def test_bad_kind_names_the_feature_and_the_allowed_kinds() -> None:
    with pytest.raises(SchemaError, match=r"features\[2\]: feature 'c': kind must be one of"):
        Schema.from_dict(_base(kind="colour"))
    with pytest.raises(SchemaError, match="numeric, categorical, boolean, text"):
        Feature("x", "number")  # type: ignore[arg-type]


def test_min_above_max_is_rejected() -> None:
    with pytest.raises(SchemaError, match=r"feature 'x': min 2\.0 is above max 1\.0"):
        Feature("x", "numeric", min=2.0, max=1.0)
    with pytest.raises(SchemaError, match=r"features\[2\].*min 5\.0 is above max 1\.0"):
        Schema.from_dict(_base(kind="numeric", min=5, max=1))


def test_non_numeric_bound_names_the_path() -> None:
    with pytest.raises(SchemaError, match=r"features\[2\]\.min.*must be a number"):
        Schema.from_dict(_base(kind="numeric", min="low"))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"features": []}, "at least one feature"),
        ({"features": "a"}, "'features' must be a list"),
        ({"features": [["a"]]}, r"features\[0\]: must be a mapping"),
        ({"features": [{"name": "a"}]}, r"features\[0\]: a feature needs 'name' and 'kind'"),
        ({"version": 2, "features": [{"name": "a", "kind": "text"}]}, "version 2"),
        ({"features": [{"name": "", "kind": "text"}]}, "non-empty name"),
    ],
)
def test_bad_structure_is_rejected(data: dict[str, Any], message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        Schema.from_dict(data)


def test_bad_task_is_rejected() -> None:
    with pytest.raises(SchemaError, match="task must be one of classification, regression"):
        Target("y", "ranking")  # type: ignore[arg-type]


def test_lookup_by_name() -> None:
    schema = Schema(
        (Feature("a", "numeric"), Feature("b", "text")), target=Target("y", "regression")
    )
    assert schema["b"].kind == "text"
    assert "a" in schema and "y" not in schema
    assert [f.name for f in schema] == ["a", "b"] == list(schema.names)
    assert len(schema) == 2
    assert schema.task == "regression"
    with pytest.raises(KeyError, match="no feature named 'z'"):
        schema["z"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"name": "x", "kind": "numeric", "nullable": "false"},
            "features[0].nullable: must be true",
        ),
        ({"name": "x", "kind": "numeric", "integer": 1}, "features[0].integer: must be true"),
        ({"name": "x", "kind": "categorical", "categories": "abc"}, "categories: must be a list"),
    ],
)
def test_hand_edited_values_are_checked_not_coerced(entry: dict[str, object], message: str) -> None:
    with pytest.raises(SchemaError, match=re.escape(message)):
        Schema.from_dict({"features": [entry]})
