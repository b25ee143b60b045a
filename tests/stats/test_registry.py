"""The registry, the default-choice table (row by row) and the facade."""

from __future__ import annotations

import doctest
import subprocess
import sys

import pytest

from inferwatch import stats
from inferwatch.stats import (
    DEFAULT_RULES,
    KIND_RULES,
    DriftInputError,
    NoDefaultTestError,
    Registry,
    UnknownTestError,
    default_test,
)

BUILTIN = {
    "anderson_darling",
    "chi_square",
    "cramer_von_mises",
    "energy_distance",
    "hellinger",
    "jensen_shannon",
    "kl_divergence",
    "ks",
    "psi",
    "wasserstein",
    "z_test",
}


# one case per row of DEFAULT_RULES (and per KIND_RULES row), at both sides of each step
@pytest.mark.parametrize(
    ("kind", "n_reference", "n_unique", "expected"),
    [
        ("numeric", 1000, 500, "ks"),  # numeric, n <= 1000
        ("numeric", 10, 6, "ks"),
        ("numeric", 1001, 500, "wasserstein"),  # numeric, n > 1000
        ("categorical", 1000, 2, "z_test"),  # categorical, n <= 1000, two categories
        ("categorical", 1000, 3, "chi_square"),  # categorical, n <= 1000, otherwise
        ("categorical", 50, 1, "chi_square"),
        ("categorical", 1001, 2, "jensen_shannon"),  # categorical, n > 1000
        ("categorical", 10**6, 40, "jensen_shannon"),
        ("numeric", 1000, 5, "chi_square"),  # KIND_RULES: numeric with <= 5 values
        ("numeric", 1000, 2, "z_test"),
        ("numeric", 5000, 5, "jensen_shannon"),
        ("numeric", 5000, 6, "wasserstein"),
        ("boolean", 200, 2, "z_test"),  # KIND_RULES: boolean is categorical
        ("boolean", 2000, 2, "jensen_shannon"),
    ],
)
def test_default_rule_table(kind: str, n_reference: int, n_unique: int, expected: str) -> None:
    assert default_test(kind, n_reference, n_unique) == expected


def test_every_row_is_exercised_and_names_a_registered_test_for_its_kind() -> None:
    assert len(DEFAULT_RULES) == 5
    assert len(KIND_RULES) == 2
    for rule in DEFAULT_RULES:
        assert rule.kind in stats.get(rule.test).kinds


def test_a_kind_without_a_row_is_a_clear_lookup_error() -> None:
    with pytest.raises(NoDefaultTestError, match="no default drift test for a 'text' column"):
        default_test("text", 100, 10)
    assert issubclass(NoDefaultTestError, LookupError)


def test_the_rule_table_can_be_replaced() -> None:
    rule = stats.DefaultRule("numeric", stats.IntRange(0, None), stats.IntRange(), "psi", "why")
    assert default_test("numeric", 10, 100, rules=[rule]) == "psi"


def test_unknown_names_list_what_is_available() -> None:
    with pytest.raises(UnknownTestError) as info:
        stats.get("kolmogorov")
    assert isinstance(info.value, KeyError)
    assert str(info.value) == (
        "no drift test named 'kolmogorov'; available: " + ", ".join(sorted(BUILTIN))
    )


def test_available_by_kind() -> None:
    assert set(stats.available()) == BUILTIN
    assert stats.available("categorical") == (
        "chi_square",
        "hellinger",
        "jensen_shannon",
        "kl_divergence",
        "psi",
        "z_test",
    )
    assert "ks" in stats.available("numeric")
    assert "chi_square" not in stats.available("numeric")
    assert stats.available("text") == ()


def test_register_refuses_a_taken_name_unless_replacing() -> None:
    registry = Registry([stats.KS])
    with pytest.raises(DriftInputError, match="already registered"):
        registry.register(stats.KS)
    renamed = stats.DriftTest("ks", "KS again", frozenset({"numeric"}), "p_value", 0.01)
    registry.register(renamed, replace=True)
    assert registry.get("ks").default_threshold == 0.01
    assert list(registry) == ["ks"]
    assert "ks" in registry
    assert len(registry) == 1
    assert len(stats.REGISTRY) == len(BUILTIN)  # the default registry is untouched


def test_the_facade_is_sorted_and_resolves() -> None:
    assert stats.__all__ == sorted(stats.__all__)
    assert len(set(stats.__all__)) == len(stats.__all__)
    for name in stats.__all__:
        assert getattr(stats, name) is not None
    assert repr(stats.DriftResult).startswith("<class 'inferwatch.stats.DriftResult'")


def test_the_module_docstring_examples_run() -> None:
    failures, attempted = doctest.testmod(stats, verbose=False)
    assert attempted > 0
    assert failures == 0


def test_importing_stats_pulls_in_no_adapter() -> None:
    code = (
        "import sys, inferwatch.stats\n"
        "bad = [m for m in ('sqlalchemy', 'fastapi', 'starlette', 'prometheus_client',"
        " 'uvicorn', 'pandas', 'logging.config') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
