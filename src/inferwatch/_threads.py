"""One thread for the scikit-learn learners the monitor fits for itself.

The drift classifier of ``report --multivariate`` and the nanny models of direct loss
estimation are HistGradientBoosting models: scikit-learn runs them on OpenMP, and BLAS
runs the PCA.  On an idle machine more threads help a little; on a machine whose cores are
busy (a server answering requests, a shared CI runner, pytest-xdist) OpenMP workers spin
while they wait, which scikit-learn#30662 documents for HistGradientBoosting on small and
medium data.  Measured here on 2 cores: one DLE fit of 12 nannies took 3 s idle and 120 s
with the other core busy.  A monitor must not take cores from the model it watches, so
these calls run on one thread.
"""

from __future__ import annotations

from typing import Any


def one_thread(*, blas: bool = False) -> Any:
    """A context manager limiting OpenMP (and BLAS when ``blas``) to one thread.

    OpenMP's thread count is a per-thread setting, so limiting it in the evaluator's thread
    leaves the model's threads alone.  BLAS libraries keep one process-wide count, so only
    the command-line report, which owns its process, limits BLAS too."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api=None if blas else "openmp")
