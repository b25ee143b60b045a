"""TextProfile: lengths against numpy, character classes against str methods, edge cases."""

from __future__ import annotations

import json
import math
import string

import numpy as np
import pytest

from inferwatch._binned import bin_values
from inferwatch.profile import CHAR_CLASSES, LENGTH_EDGES, TextProfile


def _char_class(ch: str) -> str:
    if ord(ch) >= 128:
        return "non_ascii"
    if ch in string.ascii_letters:
        return "letters"
    if ch in string.digits:
        return "digits"
    if ch in string.whitespace:
        return "whitespace"
    if ch in string.punctuation:
        return "punctuation"
    return "control"


TEXTS = ["Hello, world!", "", "42 is\tthe answer\n", "café ☕", "\x00\x07bell", "a" * 300]


def test_lengths_and_character_classes_match_python(rng: np.random.Generator) -> None:
    batches = [np.array(rng.choice(TEXTS, 50).tolist(), dtype=object) for _ in range(5)]
    prof = TextProfile()
    for b in batches:
        prof.update_many(b)
    texts = [t for b in batches for t in b.tolist()]
    lengths = np.array([len(t) for t in texts], dtype=np.float64)
    assert prof.count == len(texts) and prof.missing == 0 and prof.invalid == 0
    lens = prof.lengths
    assert lens.mean == pytest.approx(lengths.mean(), rel=1e-12)
    assert lens.var() == pytest.approx(lengths.var(), rel=1e-12)
    assert (lens.min, lens.max) == (lengths.min(), lengths.max())
    assert lens.histogram == bin_values(lengths, np.asarray(LENGTH_EDGES))
    expected = dict.fromkeys(CHAR_CLASSES, 0)
    for ch in "".join(texts):
        expected[_char_class(ch)] += 1
    assert prof.char_counts == expected
    total = sum(expected.values())
    assert prof.char_shares == {k: v / total for k, v in expected.items()}


def test_missing_invalid_and_empty() -> None:
    values = np.array(["ab", None, float("nan"), 3, ["x"], "cd"], dtype=object)
    prof = TextProfile().update_many(values)
    assert (prof.count, prof.missing, prof.invalid) == (6, 2, 2)
    assert prof.lengths.n_finite == 2 and prof.char_counts["letters"] == 4
    prof.update_many(np.array([], dtype=object)).add_missing(3)
    assert (prof.count, prof.missing) == (9, 5)
    empty = TextProfile()
    assert all(math.isnan(v) for v in empty.char_shares.values())
    with pytest.raises(ValueError, match="one-dimensional"):
        empty.update_many(np.array([["a"]], dtype=object))


def test_lone_surrogates_do_not_crash() -> None:
    prof = TextProfile().update("a\ud800b")
    assert prof.char_counts["letters"] == 2 and prof.char_counts["non_ascii"] == 1


def test_merge_and_round_trip(rng: np.random.Generator) -> None:
    a_vals = np.array([*rng.choice(TEXTS, 40).tolist(), None], dtype=object)
    b_vals = np.array([*rng.choice(TEXTS, 30).tolist(), 7], dtype=object)
    edges = [0.0, 5.0, 20.0, 400.0]
    a = TextProfile(edges).update_many(a_vals)
    b = TextProfile(edges).update_many(b_vals)
    both = TextProfile(edges).update_many(np.concatenate([a_vals, b_vals]))
    assert (a + b).isclose(both) and (b + a).isclose(both)
    again = TextProfile.from_dict(json.loads(json.dumps(both.to_dict())))
    assert again == both
    assert TextProfile.from_dict(both.to_dict(edges=False), edges) == both
    with pytest.raises(ValueError, match="chars"):
        TextProfile.from_dict({**both.to_dict(), "chars": [1, 2]})
    with pytest.raises(TypeError):
        a += 1  # type: ignore[arg-type]
    summary = both.get()
    assert summary.count == 72 and summary.length.count == 71 and "TextProfile" in repr(both)
