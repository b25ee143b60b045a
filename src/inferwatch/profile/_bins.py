"""Reference bins: the fine and coarse bin edges (and categories) a reference fixes once.

Profiles of live data are only comparable with the reference, and mergeable with one
another, when they share the same bins; :class:`ReferenceBins` learns them once from the
reference columns under a :class:`~inferwatch.schema.Schema` and never changes them.

Numeric features (and the *length* of text features) get quantile edges: ``n_bins + 1``
empirical reference quantiles (``method="inverted_cdf"``: actual reference values, so a
discrete column gets its own values as edges and no reference bin is empty), made unique.

Why 500 fine bins (``n_bins``, the default): each holds 0.2 % of the reference, which
bounds what the histogram loses, with ``p_j``/``q_j`` the reference/current shares of bin
``j`` and ``w_j`` its width (the outer bins end at the kept ``min``/``max``):

* quantiles: within the bin the exact quantile falls in (``NumericProfile.quantile_interval``);
* KS: both CDFs are exact at every edge and monotone between, so
  ``D_edges <= D <= D_edges + max_j min(p_j, q_j)``: within one reference bin's share,
  about 0.002 (the two-sample critical value at 5 % is 0.014 for 100k reference and 10k
  current rows);
* Wasserstein-1: within ``sum_j w_j (p_j + q_j)`` (each CDF is off by at most its bin's
  share inside a bin).

More bins tighten these at a linear cost in profile size (8 bytes a bin a column, 4 KiB a
numeric column at 500) and a small one in ingestion speed; fewer save both.

The coarse edges (``n_coarse = 10`` by default, the usual PSI binning) are the reference
quantiles at every ``n_bins / n_coarse``-th position of the *same* quantile run, so they are
a subset of the fine edges with the same first and last edge: a coarse histogram is an
exact sum of fine bins (:func:`coarsen`), and live data never has to be binned twice.

Degenerate references (recorded in ``degenerate_``, feature → reason):

* a single-valued column with value ``v`` gets one bin ``[v - eps, v + eps]`` with
  ``eps = 1e-9 * max(1, |v|)``;
* a column with no finite value (all missing, all infinite, absent or empty) gets the
  fallback edges ``[0, 1]``: live values still count as missing, under, in or over, and a
  change in missingness still moves the binned drift statistics.

Categorical features keep the schema's categories; when the schema has none they are
learned from the reference (its distinct strings, sorted).  Boolean features have the two
categories ``"False"`` and ``"True"``.  Embeddings are not profiled (``skipped_``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final, Self

import numpy as np
import numpy.typing as npt

from inferwatch._binned import Binned
from inferwatch._typing import Columns, FloatArray
from inferwatch.profile._numeric import NumericProfile, as_float, check_edges
from inferwatch.schema import Feature, Schema

__all__ = [
    "BOOLEAN_CATEGORIES",
    "DEFAULT_N_BINS",
    "DEFAULT_N_COARSE",
    "ReferenceBins",
    "coarsen",
    "fit_bins",
    "quantile_edges",
    "text_lengths",
]

DEFAULT_N_BINS: Final = 500
DEFAULT_N_COARSE: Final = 10
BOOLEAN_CATEGORIES: Final = ("False", "True")
FALLBACK_EDGES: Final = (0.0, 1.0)
_FORMAT: Final = 1


def quantile_edges(
    values: npt.ArrayLike, n_bins: int = DEFAULT_N_BINS, n_coarse: int = DEFAULT_N_COARSE
) -> tuple[FloatArray, FloatArray, str | None]:
    """Fine and coarse quantile edges of the finite ``values``, and why they are degenerate.

    The coarse edges are a subset of the fine ones with the same ends (see the module
    docstring); the reason is None for an ordinary column.
    """
    _check_counts(n_bins, n_coarse)
    arr, _ = as_float(values)
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        edges = check_edges(FALLBACK_EDGES)
        return edges, edges, "no finite value in the reference: fallback edges [0, 1]"
    raw = np.quantile(finite, np.linspace(0.0, 1.0, n_bins + 1), method="inverted_cdf")
    fine = np.unique(raw)
    if len(fine) < 2:
        v = float(fine[0])
        eps = 1e-9 * max(1.0, abs(v))
        edges = check_edges([v - eps, v + eps])
        return edges, edges, f"single value {v!r} in the reference: one bin [v - eps, v + eps]"
    coarse = np.unique(raw[:: n_bins // n_coarse])
    return check_edges(fine), check_edges(coarse), None


def text_lengths(values: npt.ArrayLike) -> FloatArray:
    """Lengths of the string values, NaN for anything else (the reference side of text)."""
    items = np.asarray(values, dtype=object).tolist()
    return np.array([len(v) if isinstance(v, str) else np.nan for v in items], dtype=np.float64)


def coarsen(binned: Binned, edges: npt.ArrayLike) -> Binned:
    """Sum a fine histogram onto coarser ``edges`` that are a subset of its own.

    The coarse edges must start and end on the fine ones (as :class:`ReferenceBins`
    guarantees); under/overflow and missing carry over unchanged.
    """
    coarse = check_edges(edges)
    fine = binned.edges
    pos = np.searchsorted(fine, coarse)
    if (
        np.any(pos >= len(fine))
        or not np.array_equal(fine[np.minimum(pos, len(fine) - 1)], coarse)
        or pos[0] != 0
        or pos[-1] != len(fine) - 1
    ):
        raise ValueError("coarse edges must be fine edges, with the same first and last edge")
    cum = np.concatenate(([0], np.cumsum(binned.counts[1:-1])))
    inner = np.diff(cum[pos])
    counts = np.concatenate(([binned.counts[0]], inner, [binned.counts[-1]])).astype(np.int64)
    return Binned(coarse, counts, binned.missing)


def _check_counts(n_bins: int, n_coarse: int) -> None:
    if not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"n_bins must be an integer >= 1, got {n_bins!r}")
    if not isinstance(n_coarse, int) or n_coarse < 1 or n_bins % n_coarse:
        raise ValueError(f"n_coarse must be a divisor of n_bins ({n_bins}), got {n_coarse!r}")


class ReferenceBins:
    """Bin edges and categories learned once from a reference, shared by every profile.

    Parameters are stored as given; :meth:`fit` validates them and learns the attributes
    ending in ``_`` (scikit-learn's convention):

    * ``schema_``: the schema the bins were fitted under;
    * ``edges_`` / ``coarse_edges_``: feature → fine / coarse edges (numeric features, and
      the length of text features);
    * ``categories_``: feature → reference categories (categorical and boolean features);
    * ``degenerate_``: feature → why its edges are a fallback (see the module docstring);
    * ``skipped_``: features that are not profiled (embeddings);
    * ``n_rows_``: reference rows; ``fingerprint_``: a short hash identifying all of the above.
    """

    schema_: Schema
    edges_: dict[str, FloatArray]
    coarse_edges_: dict[str, FloatArray]
    categories_: dict[str, tuple[str, ...]]
    degenerate_: dict[str, str]
    skipped_: tuple[str, ...]
    n_rows_: int
    fingerprint_: str

    def __init__(self, n_bins: int = DEFAULT_N_BINS, n_coarse: int = DEFAULT_N_COARSE) -> None:
        self.n_bins = n_bins
        self.n_coarse = n_coarse

    def fit(self, columns: Columns, schema: Schema) -> Self:
        """Learn the edges and categories of every feature in ``schema`` from ``columns``.

        A feature absent from ``columns`` is treated as an all-missing column.
        """
        _check_counts(self.n_bins, self.n_coarse)
        lengths = {len(np.asarray(columns[f.name])) for f in schema if f.name in columns}
        if len(lengths) > 1:
            raise ValueError(f"reference columns differ in length: {sorted(lengths)}")
        edges: dict[str, FloatArray] = {}
        coarse: dict[str, FloatArray] = {}
        categories: dict[str, tuple[str, ...]] = {}
        degenerate: dict[str, str] = {}
        skipped: list[str] = []
        for feat in schema:
            col = columns.get(feat.name)
            values: npt.NDArray[Any] = np.empty(0) if col is None else np.asarray(col)
            if feat.kind in ("numeric", "text"):
                numbers = values if feat.kind == "numeric" else text_lengths(values)
                fine, crs, why = quantile_edges(numbers, self.n_bins, self.n_coarse)
                edges[feat.name], coarse[feat.name] = fine, crs
                if why is not None:
                    degenerate[feat.name] = why
            elif feat.kind == "categorical":
                categories[feat.name] = _categories(feat, values)
            elif feat.kind == "boolean":
                categories[feat.name] = BOOLEAN_CATEGORIES
            elif feat.kind == "embedding":
                skipped.append(feat.name)
        self.schema_ = schema
        self.edges_, self.coarse_edges_ = edges, coarse
        self.categories_, self.degenerate_ = categories, degenerate
        self.skipped_ = tuple(skipped)
        self.n_rows_ = lengths.pop() if lengths else 0
        self.fingerprint_ = self._fingerprint()
        self.__dict__.pop("_lookups", None)
        return self

    def _lookup(self, name: str) -> NumericProfile:
        """An empty profile on ``name``'s edges, kept to share its bin look-up table."""
        cache: dict[str, NumericProfile] = self.__dict__.setdefault("_lookups", {})
        if name not in cache:
            cache[name] = NumericProfile(self.edges_[name])
        return cache[name]

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_lookups"}  # a cache

    def _check_fitted(self) -> None:
        if not hasattr(self, "fingerprint_"):
            raise ValueError("ReferenceBins is not fitted: call fit(columns, schema) first")

    def _fingerprint(self) -> str:
        body = json.dumps(self._body(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(body.encode()).hexdigest()[:16]

    def _body(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "n_bins": self.n_bins,
            "n_coarse": self.n_coarse,
            "schema": self.schema_.to_dict(),
            "edges": {k: v.tolist() for k, v in self.edges_.items()},
            "coarse_edges": {k: v.tolist() for k, v in self.coarse_edges_.items()},
            "categories": {k: list(v) for k, v in self.categories_.items()},
            "degenerate": dict(self.degenerate_),
            "skipped": list(self.skipped_),
            "n_rows": self.n_rows_,
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (with the schema), for the store's references table."""
        self._check_fitted()
        return {**self._body(), "fingerprint": self.fingerprint_}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        if not isinstance(data, Mapping) or data.get("format") != _FORMAT:
            raise ValueError("reference bins: expected a mapping with format 1")
        try:
            out = cls(int(data["n_bins"]), int(data["n_coarse"]))
            out.schema_ = Schema.from_dict(data["schema"])
            out.edges_ = {str(k): check_edges(v) for k, v in data["edges"].items()}
            out.coarse_edges_ = {str(k): check_edges(v) for k, v in data["coarse_edges"].items()}
            out.categories_ = {
                str(k): tuple(str(c) for c in v) for k, v in data["categories"].items()
            }
            out.degenerate_ = {str(k): str(v) for k, v in data["degenerate"].items()}
            out.skipped_ = tuple(str(s) for s in data["skipped"])
            out.n_rows_ = int(data["n_rows"])
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"reference bins: malformed ({exc!r})") from exc
        out.fingerprint_ = out._fingerprint()
        if data.get("fingerprint") not in (None, out.fingerprint_):
            raise ValueError("reference bins: the fingerprint does not match the content")
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ReferenceBins):
            return NotImplemented
        fitted = hasattr(self, "fingerprint_"), hasattr(other, "fingerprint_")
        if fitted == (True, True):
            return self.fingerprint_ == other.fingerprint_
        return fitted == (False, False) and (self.n_bins, self.n_coarse) == (
            other.n_bins,
            other.n_coarse,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ReferenceBins(n_bins={self.n_bins}, n_coarse={self.n_coarse})"


def _categories(feat: Feature, values: npt.NDArray[Any]) -> tuple[str, ...]:
    if feat.categories is not None:
        return feat.categories
    return tuple(sorted({v for v in values.tolist() if isinstance(v, str)}))


def fit_bins(
    columns: Columns,
    schema: Schema,
    n_bins: int = DEFAULT_N_BINS,
    n_coarse: int = DEFAULT_N_COARSE,
) -> ReferenceBins:
    """``ReferenceBins(n_bins, n_coarse).fit(columns, schema)``."""
    return ReferenceBins(n_bins, n_coarse).fit(columns, schema)
