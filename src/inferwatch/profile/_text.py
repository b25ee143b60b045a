"""Text column profile: length statistics and character-class shares, mergeable.

The lengths (in code points) are a :class:`NumericProfile` on the reference's length
quantile edges (or :data:`LENGTH_EDGES` when built alone), so count, missing, mean,
variance, min, max, quantiles and the length histogram all come with it, and the drift
statistics can compare text lengths like any numeric column.

Character classes are disjoint and ASCII-based, so that they cost one table look-up per
code point over the whole batch (the batch is joined, encoded as UTF-32 and classified
with numpy; no Python loop per character): ``letters`` (A-Z, a-z), ``digits`` (0-9),
``whitespace`` (space, \\t \\n \\r \\v \\f), ``punctuation`` (``string.punctuation``),
``control`` (other ASCII) and ``non_ascii`` (code point 128 and above: accented letters,
other scripts, emoji).  The shares are counts over all characters seen.

A value that is not a string (nor None/NaN, which are missing) is counted as invalid.
"""

from __future__ import annotations

import math
import string
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import compress
from typing import Any, Final, Self

import numpy as np
import numpy.typing as npt

from inferwatch.profile._mergeable import Mergeable
from inferwatch.profile._numeric import NumericProfile, NumericSummary
from inferwatch.profile._serial import FORMAT, check_header, read_int, read_list

__all__ = ["CHAR_CLASSES", "LENGTH_EDGES", "TextProfile", "TextSummary"]

CHAR_CLASSES: Final = ("letters", "digits", "whitespace", "punctuation", "control", "non_ascii")
LENGTH_EDGES: Final = (0.0, *(float(2**i) for i in range(17)))  # 0, 1, 2, 4, ..., 65536


def _class_table() -> npt.NDArray[np.intp]:
    table = np.full(129, CHAR_CLASSES.index("control"), dtype=np.intp)
    for chars, name in (
        (string.ascii_letters, "letters"),
        (string.digits, "digits"),
        (string.whitespace, "whitespace"),
        (string.punctuation, "punctuation"),
    ):
        table[[ord(c) for c in chars]] = CHAR_CLASSES.index(name)
    table[128] = CHAR_CLASSES.index("non_ascii")
    return table


_CLASS_OF: Final = _class_table()


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


@dataclass(frozen=True, slots=True)
class TextSummary:
    """A snapshot of a :class:`TextProfile` (what ``get()`` returns)."""

    count: int
    missing: int
    invalid: int
    length: NumericSummary
    char_shares: Mapping[str, float]


class TextProfile(Mergeable):
    """Constant-size, mergeable length and character-class summary of one text column."""

    __slots__ = ("_chars", "_invalid", "_lengths")

    def __init__(self, edges: npt.ArrayLike = LENGTH_EDGES) -> None:
        self._lengths = NumericProfile(edges)
        self._chars = np.zeros(len(CHAR_CLASSES), dtype=np.int64)
        self._invalid = 0

    def update(self, value: object) -> Self:
        return self.update_many(np.array([value], dtype=object))

    def update_many(self, values: npt.ArrayLike) -> Self:
        arr = np.asarray(values, dtype=object)
        if arr.ndim != 1:
            raise ValueError(f"a column is one-dimensional; got shape {arr.shape}")
        items = arr.tolist()
        is_str = [isinstance(v, str) for v in items]
        texts: list[str] = list(compress(items, is_str))
        lengths = np.fromiter(map(len, texts), dtype=np.float64, count=len(texts))
        if len(texts) < len(items):
            rest = [v for v, s in zip(items, is_str, strict=True) if not s]
            missing = sum(map(_is_missing, rest))
            self._invalid += len(rest) - missing
            lengths = np.concatenate((lengths, np.full(missing, np.nan)))
        self._lengths.update_many(lengths)
        if texts:
            joined = "".join(texts).encode("utf-32-le", errors="surrogatepass")
            codes = np.frombuffer(joined, dtype=np.uint32)
            classes = _CLASS_OF[np.minimum(codes, 128)]
            self._chars += np.bincount(classes, minlength=len(CHAR_CLASSES))
        return self

    def add_missing(self, n: int) -> Self:
        """Count ``n`` missing rows (a batch without this column)."""
        self._lengths.add_missing(n)
        return self

    def __iadd__(self, other: TextProfile) -> Self:
        if not isinstance(other, TextProfile):
            raise TypeError(f"cannot merge a TextProfile with {type(other).__name__}")
        self._lengths += other._lengths
        self._chars += other._chars
        self._invalid += other._invalid
        return self

    def copy(self) -> Self:
        out = type(self).__new__(type(self))
        out._lengths = self._lengths.copy()
        out._chars = self._chars.copy()
        out._invalid = self._invalid
        return out

    @property
    def lengths(self) -> NumericProfile:
        """The length profile (a copy: change this profile through ``update_many``)."""
        return self._lengths.copy()

    @property
    def count(self) -> int:
        """Rows seen: missing and invalid included."""
        return self._lengths.count + self._invalid

    @property
    def missing(self) -> int:
        return self._lengths.missing

    @property
    def invalid(self) -> int:
        return self._invalid

    @property
    def char_counts(self) -> dict[str, int]:
        return dict(zip(CHAR_CLASSES, self._chars.tolist(), strict=True))

    @property
    def char_shares(self) -> dict[str, float]:
        """Share of each character class among all characters seen (NaN when none)."""
        total = int(self._chars.sum())
        return {
            name: (c / total if total else math.nan)
            for name, c in zip(CHAR_CLASSES, self._chars.tolist(), strict=True)
        }

    def get(self) -> TextSummary:
        return TextSummary(
            count=self.count,
            missing=self.missing,
            invalid=self._invalid,
            length=self._lengths.get(),
            char_shares=self.char_shares,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TextProfile):
            return NotImplemented
        return (
            self._invalid == other._invalid
            and np.array_equal(self._chars, other._chars)
            and self._lengths == other._lengths
        )

    __hash__ = None  # type: ignore[assignment]

    def isclose(self, other: object, rtol: float = 1e-9) -> bool:
        """Counts exact; length mean and variance within ``rtol`` (see NumericProfile)."""
        if not isinstance(other, TextProfile):
            return False
        return (
            self._invalid == other._invalid
            and np.array_equal(self._chars, other._chars)
            and self._lengths.isclose(other._lengths, rtol)
        )

    def __repr__(self) -> str:
        return (
            f"TextProfile(count={self.count}, missing={self.missing}, "
            f"mean_length={self._lengths.mean:.6g})"
        )

    def to_dict(self, *, edges: bool = True) -> dict[str, Any]:
        return {
            "kind": "text",
            "format": FORMAT,
            "lengths": self._lengths.to_dict(edges=edges),
            "chars": self._chars.tolist(),
            "invalid": self._invalid,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], edges: npt.ArrayLike | None = None) -> Self:
        check_header(data, "text")
        lengths = data.get("lengths")
        if not isinstance(lengths, Mapping):
            raise ValueError("text profile: 'lengths' must be a numeric profile")
        out = cls.__new__(cls)
        out._lengths = NumericProfile.from_dict(lengths, edges)
        chars = np.asarray(read_list(data, "chars"), dtype=np.int64)
        if chars.shape != (len(CHAR_CLASSES),) or np.any(chars < 0):
            raise ValueError(f"text profile: 'chars' needs {len(CHAR_CLASSES)} counts >= 0")
        out._chars = chars
        out._invalid = read_int(data, "invalid")
        return out
