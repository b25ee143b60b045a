"""Every performance summary through the same checks (the shape of tests/stats/test_common.py):
repr, pickle, JSON-safe ``to_dict``, NaN-not-error when empty, one rng-seeded batch, and
every metric name documented in the README's Model performance section."""

from __future__ import annotations

import json
import pickle
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from inferwatch.performance import ClassificationSummary, RegressionSummary

README = Path(__file__).resolve().parents[2] / "README.md"

Summary = ClassificationSummary | RegressionSummary


def _binary(rng: np.random.Generator) -> Summary:
    p = rng.random(200)
    yp = (p > 0.5).astype(np.intp)
    yt = (rng.random(200) < p).astype(np.intp)
    return ClassificationSummary(["no", "yes"]).observe(yp, p).add_labels(yt, yp, p)


def _multiclass(rng: np.random.Generator) -> Summary:
    p = rng.dirichlet(np.ones(4), 300)
    yp = p.argmax(axis=1)
    yt = np.array([rng.choice(4, p=row) for row in p])
    return ClassificationSummary(list("abcd")).observe(yp, p).add_labels(yt, yp, p)


def _regression(rng: np.random.Generator) -> Summary:
    yt = rng.normal(10.0, 3.0, 200)
    yp = yt + rng.normal(0.5, 1.0, 200)
    return RegressionSummary().observe(yp).add_labels(yt, yp)


KINDS: dict[str, tuple[Callable[[np.random.Generator], Summary], Callable[[], Summary]]] = {
    "binary": (_binary, lambda: ClassificationSummary(["no", "yes"])),
    "multiclass": (_multiclass, lambda: ClassificationSummary(list("abcd"))),
    "regression": (_regression, RegressionSummary),
}


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(42)


@pytest.mark.parametrize("kind", KINDS)
def test_repr_pickle_and_json(kind: str, rng: np.random.Generator) -> None:
    s = KINDS[kind][0](rng)
    assert " at 0x" not in repr(s) and type(s).__name__ in repr(s)
    assert pickle.loads(pickle.dumps(s)) == s
    text = json.dumps(s.to_dict(), allow_nan=False)
    assert type(s).from_dict(json.loads(text)) == s
    assert all(np.isfinite(v) for v in s.metrics().values())


@pytest.mark.parametrize("kind", KINDS)
def test_empty_is_nan_not_an_error(kind: str) -> None:
    m = KINDS[kind][1]().metrics()
    assert m["labelled"] == 0.0
    assert all(np.isnan(v) for k, v in m.items() if k != "labelled")


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_summary(kind: str) -> None:
    make = KINDS[kind][0]
    assert make(np.random.default_rng(5)) == make(np.random.default_rng(5))


@pytest.mark.parametrize("kind", KINDS)
def test_a_bad_dict_is_a_clear_value_error(kind: str, rng: np.random.Generator) -> None:
    s = KINDS[kind][0](rng)
    data = s.to_dict()
    with pytest.raises(ValueError, match="kind"):
        type(s).from_dict({**data, "kind": "other"})
    broken = {k: v for k, v in data.items() if k not in ("confusion", "sums")}
    with pytest.raises(ValueError, match=r"confusion|sums"):
        type(s).from_dict(broken)


def test_every_metric_name_is_in_the_readme() -> None:
    text = README.read_text()
    section = text[text.index("## Model performance") :]
    section = section[: section.index("\n## ", 1)]
    documented = set(re.findall(r"`([a-z_0-9]+)`", section))
    rng = np.random.default_rng(0)
    names = set(_binary(rng).metrics()) | set(_regression(rng).metrics())
    assert sorted(names - documented) == []
