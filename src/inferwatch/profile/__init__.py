"""Mergeable data profiles: constant-size summaries of rows on bins fixed by a reference.

::

    bins = fit_bins(reference_columns, schema)      # once: quantile edges, categories
    live = profile(batch_columns, bins)             # per batch / worker / window
    live.update(next_batch)                         # streaming
    window = live + other_worker                    # merge: equals profiling both at once
    window["age"].histogram                         # a Binned, for the drift statistics

Each column profile (``NumericProfile``, ``CategoricalProfile``, ``TextProfile``,
``DatetimeProfile``) has ``update``/``update_many``/``merge``/``+``/``get`` and
``to_dict``/``from_dict``; ``==`` compares state exactly and ``isclose`` is the merge
law's equality (counts exact, means and variances to a relative tolerance).
"""

from __future__ import annotations

from inferwatch.profile._bins import (
    BOOLEAN_CATEGORIES,
    DEFAULT_N_BINS,
    DEFAULT_N_COARSE,
    ReferenceBins,
    coarsen,
    fit_bins,
    quantile_edges,
)
from inferwatch.profile._categorical import (
    DEFAULT_MAX_UNSEEN,
    CategoricalProfile,
    CategoricalSummary,
)
from inferwatch.profile._datetime import DatetimeProfile, DatetimeSummary
from inferwatch.profile._frame import ColumnProfile, ColumnSummary, FrameProfile, profile
from inferwatch.profile._numeric import NumericProfile, NumericSummary
from inferwatch.profile._text import CHAR_CLASSES, LENGTH_EDGES, TextProfile, TextSummary

__all__ = [
    "BOOLEAN_CATEGORIES",
    "CHAR_CLASSES",
    "CategoricalProfile",
    "CategoricalSummary",
    "ColumnProfile",
    "ColumnSummary",
    "DEFAULT_MAX_UNSEEN",
    "DEFAULT_N_BINS",
    "DEFAULT_N_COARSE",
    "DatetimeProfile",
    "DatetimeSummary",
    "FrameProfile",
    "LENGTH_EDGES",
    "NumericProfile",
    "NumericSummary",
    "ReferenceBins",
    "TextProfile",
    "TextSummary",
    "coarsen",
    "fit_bins",
    "profile",
    "quantile_edges",
]
