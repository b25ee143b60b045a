"""Concept drift on streams: change detectors over the per-prediction error stream.

When labels arrive, each prediction's error (0/1 misclassification, or a regressor's
absolute error) joins a stream; a rise in its mean while the inputs look the same is
concept drift (P(y|x) changed). :class:`ErrorStreamMonitor` runs :class:`ADWIN` and a
:class:`PageHinkley` whose allowance and threshold are in units of the reference's
error spread, both tuned to a false-alarm budget (at most one false alarm per ``N``
stable labelled predictions)::

    >>> import numpy as np
    >>> from inferwatch import concept
    >>> rng = np.random.default_rng(0)
    >>> monitor = concept.ErrorStreamMonitor.from_reference((rng.random(5_000) < 0.1) * 1.0)
    >>> monitor.update_many((rng.random(20_000) < 0.1) * 1.0)
    []
    >>> first = monitor.update_many((rng.random(2_000) < 0.4) * 1.0)[0]
    >>> first.index - 20_000 < 100
    True

Pure core: numpy and scipy only, no I/O; every state is plain JSON (``to_dict``).
Bad input (NaN, infinity, a reference without spread) raises ``ValueError``.
"""

from __future__ import annotations

from inferwatch.concept._adwin import ADWIN, AdwinCut
from inferwatch.concept._monitor import (
    Detection,
    ErrorStreamMonitor,
    lundberg_exponent,
    per_prediction_errors,
)
from inferwatch.concept._page_hinkley import PageHinkley, PageHinkleyAlarm

__all__ = [
    "ADWIN",
    "AdwinCut",
    "Detection",
    "ErrorStreamMonitor",
    "PageHinkley",
    "PageHinkleyAlarm",
    "lundberg_exponent",
    "per_prediction_errors",
]
