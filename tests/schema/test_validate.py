"""InstanceValidator: good batches pass unchanged, every failure has its code, field and index."""

from __future__ import annotations

import math
from typing import Any

import pytest

from inferwatch.errors import ValidationError
from inferwatch.schema import Feature, InstanceValidator, Schema, instance_json_schema

SCHEMA = Schema(
    (
        Feature("age", "numeric", integer=True, min=18, max=90),
        Feature("income", "numeric", nullable=True),
        Feature("plan", "categorical", categories=("free", "pro")),
        Feature("active", "boolean"),
        Feature("bio", "text", nullable=True, description="free text"),
        Feature("seen", "datetime"),
        Feature("emb", "embedding", dimension=3),
    )
)


def _good(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "age": 30,
        "income": 1234.5,
        "plan": "pro",
        "active": True,
        "bio": "hello",
        "seen": "2024-05-01T10:00:00",
        "emb": [0.1, 0.2, 0.3],
    }
    row.update(changes)
    return {k: v for k, v in row.items() if v is not _DROP}


_DROP = object()


def _fail(instances: Any, **kwargs: Any) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        InstanceValidator(SCHEMA, **kwargs).validate(instances)
    return info.value


def test_good_batch_is_returned_unchanged() -> None:
    batch = [
        _good(),
        _good(age=18.0, seen=1714557600, income=None, bio=None),
        _good(plan="unseen category", age=1000),  # out of range is data to monitor, not a 4xx
    ]
    assert InstanceValidator(SCHEMA).validate(batch) == batch


def test_missing_nullable_features_are_filled_with_none() -> None:
    out = InstanceValidator(SCHEMA).validate([_good(income=_DROP, bio=_DROP)])
    assert out == [_good(income=None, bio=None)]


def test_nan_in_a_nullable_feature_becomes_none() -> None:
    assert InstanceValidator(SCHEMA).validate([_good(income=math.nan)])[0]["income"] is None


@pytest.mark.parametrize(
    ("row", "code", "field"),
    [
        (_good(age=_DROP), "missing_feature", "age"),
        (_good(colour="red"), "unknown_feature", "colour"),
        (_good(age="30"), "wrong_type", "age"),
        (_good(age=True), "wrong_type", "age"),
        (_good(plan=1.5), "wrong_type", "plan"),
        (_good(plan=3), "wrong_type", "plan"),  # an int code would crash a string encoder
        (_good(active=1), "wrong_type", "active"),
        (_good(bio=3), "wrong_type", "bio"),
        (_good(seen="yesterday"), "wrong_type", "seen"),
        (_good(seen=False), "wrong_type", "seen"),
        (_good(emb=[1.0, 2.0]), "wrong_type", "emb"),
        (_good(emb="0.1,0.2,0.3"), "wrong_type", "emb"),
        (_good(emb=[1.0, math.inf, 2.0]), "non_finite", "emb"),
        (_good(age=math.inf), "non_finite", "age"),
        (_good(income=-math.inf), "non_finite", "income"),
        (_good(age=math.nan), "non_finite", "age"),
        (_good(age=None), "null_not_allowed", "age"),
        (_good(plan=None), "null_not_allowed", "plan"),
    ],
)
def test_each_failure_reason(row: dict[str, Any], code: str, field: str) -> None:
    error = _fail([_good(), row])
    assert error.code == code
    assert [(e.reason, e.field, e.instance) for e in error.errors] == [(code, field, 1)]
    assert error.errors[0].message.startswith("instances[1]:")
    assert f"'{field}'" in str(error)


def test_unknown_key_is_caught_when_a_nullable_feature_is_absent() -> None:
    # the typo replaces a nullable feature: row and key counts match, the key is still unknown
    error = _fail([_good(income=_DROP, incme=5.0)])
    assert [(e.reason, e.field) for e in error.errors] == [("unknown_feature", "incme")]


def test_unknown_key_is_reported_beside_the_missing_feature_it_replaces() -> None:
    error = _fail([_good(age=_DROP, agee=30)])
    assert {(e.reason, e.field) for e in error.errors} == {
        ("missing_feature", "age"),
        ("unknown_feature", "agee"),
    }


def test_errors_from_every_instance_are_collected() -> None:
    batch = [_good(age="x"), _good(), _good(plan=None, active="yes"), 7]
    error = _fail(batch)
    found = [(e.instance, e.field, e.reason) for e in error.errors]
    assert found == [
        (0, "age", "wrong_type"),
        (2, "plan", "null_not_allowed"),
        (2, "active", "wrong_type"),
        (3, "instances[3]", "wrong_type"),
    ]
    assert error.code == "wrong_type"
    assert "(and 3 more)" in error.message
    assert error.errors[0].kind == "numeric"


def test_reported_errors_are_bounded() -> None:
    error = _fail([_good(age="x") for _ in range(50)])
    assert len(error.errors) == 20
    assert "(and 49 more)" in error.message


def test_allow_extra_drops_unknown_features() -> None:
    out = InstanceValidator(SCHEMA, allow_extra=True).validate([_good(colour="red", size=3)])
    assert out == [_good()]


@pytest.mark.parametrize(
    ("instances", "code"),
    [
        ({"age": 3}, "invalid_body"),
        ("[]", "invalid_body"),
        ([], "empty_batch"),
        ([_good()] * 4, "batch_too_large"),
    ],
)
def test_batch_level_failures(instances: Any, code: str) -> None:
    error = _fail(instances, max_batch=3)
    assert error.code == code
    assert [e.field for e in error.errors] == ["instances"]


def test_non_object_instance() -> None:
    error = _fail([_good(), ["age", 30]])
    assert error.code == "wrong_type"
    assert [(e.field, e.instance) for e in error.errors] == [("instances[1]", 1)]


def test_instance_json_schema() -> None:
    doc = instance_json_schema(SCHEMA)
    assert doc["type"] == "object" and doc["additionalProperties"] is False
    assert doc["required"] == ["age", "plan", "active", "seen", "emb"]
    props = doc["properties"]
    assert list(props) == list(SCHEMA.names)
    assert props["age"] == {"type": "integer", "example": 18}
    assert props["income"] == {"anyOf": [{"type": "number"}, {"type": "null"}]}
    assert props["plan"] == {"type": "string", "examples": ["free", "pro"]}
    assert props["active"] == {"type": "boolean"}
    assert props["bio"]["description"] == "free text"
    assert props["seen"] == {"type": "string", "format": "date-time"}
    assert props["emb"] == {"type": "array", "items": {"type": "number"}}


_JSON_TYPES: dict[str, Any] = {
    "integer": int,
    "number": (int, float),
    "string": str,
    "boolean": bool,
    "array": list,
    "null": type(None),
}


def _matches(value: Any, prop: dict[str, Any]) -> bool:
    """The few JSON Schema keywords instance_json_schema uses (jsonschema is not installed)."""
    if "anyOf" in prop:
        return any(_matches(value, p) for p in prop["anyOf"])
    if isinstance(value, bool) and prop["type"] != "boolean":
        return False
    if not isinstance(value, _JSON_TYPES[prop["type"]]):
        return False
    return prop["type"] != "array" or all(_matches(v, prop["items"]) for v in value)


def test_a_good_instance_satisfies_its_json_schema() -> None:
    doc = instance_json_schema(SCHEMA)
    for instance in (_good(), _good(income=None, bio=_DROP)):
        assert set(doc["required"]) <= set(instance) <= set(doc["properties"])
        assert all(_matches(v, doc["properties"][k]) for k, v in instance.items())
    assert not _matches("30", doc["properties"]["age"])
