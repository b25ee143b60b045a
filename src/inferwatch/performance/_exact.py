"""Exact sums of floats, so a summary's merge and its label replacement lose nothing.

A window summary is added to (``sign=+1``), taken from (a replaced label, ``sign=-1``) and
merged across workers in any order and batching.  Plain float sums make each of those
steps round, so ``add(x); remove(x)`` leaves a residue and ``merge(A, B)`` differs from
``summary(A + B rows)`` in the last bits.  Two representations avoid it:

* :func:`exact_sum` -- the exact sum of any finite float64 values as one Python ``int`` in
  units of ``2**-EXACT_SHIFT`` (every float64 is an integer multiple of ``2**-1074``; the
  extra 52 bits hold frexp's mantissa).  Each value's 53-bit mantissa is split in two
  halves below ``2**27`` so that ``np.bincount`` over the power of two sums them in float64
  without rounding (fewer than ``2**24`` values a call); only the few distinct powers
  reach Python.  Scale-free: used for regression errors, whose units are the target's.
* :func:`fixed` -- values in a bounded range (scores in [0, 1], log loss <= 37) rounded once
  to multiples of ``2**-FIXED_BITS`` as int64.  Integer sums are exact and associative;
  the rounding is at most ``2**-33`` per value, far below the 1e-9 the metrics promise.
  An int64 bin holds about 2**31 rows of score 1.0.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "EXACT_SHIFT",
    "FIXED_BITS",
    "exact_fraction",
    "exact_sum",
    "exact_sums",
    "exact_to_float",
    "fixed",
    "fixed_to_float",
    "square_parts",
]

#: exact sums count units of 2**-EXACT_SHIFT (covers subnormals' 2**-1074 times 2**-52)
EXACT_SHIFT: Final = 1126
#: fixed-point sums count units of 2**-FIXED_BITS
FIXED_BITS: Final = 32
_SCALE: Final = float(2**FIXED_BITS)
_HALF: Final = 27
_LOW: Final = (1 << _HALF) - 1
_CHUNK: Final = 1 << 24  # 2 halves a value, each < 2**27: bin sums < 2**53


def exact_sum(values: npt.NDArray[np.float64]) -> int:
    """The exact sum of finite ``values`` in units of ``2**-EXACT_SHIFT``."""
    return exact_sums(np.asarray(values, dtype=np.float64).reshape(1, -1))[0]


def exact_sums(rows: npt.NDArray[np.float64]) -> list[int]:
    """The exact sum of each row of a 2-D array of finite floats (one pass for all rows:
    the row number offsets the exponent bins, so q sums cost about one)."""
    q = rows.shape[0]
    totals = [0] * q
    for start in range(0, rows.shape[1], _CHUNK):
        chunk = rows[:, start : start + _CHUNK]
        for i, value in enumerate(_exact_chunk(chunk)):
            totals[i] += value
    return totals


def _exact_chunk(x: npt.NDArray[np.float64]) -> list[int]:
    q = x.shape[0]
    mant, expo = np.frexp(x)  # x = mant * 2**expo, 0.5 <= |mant| < 1 (0 for 0)
    m = (mant * 2.0**53).astype(np.int64)  # exact: 53 significant bits
    if m.size == 0:
        return [0] * q
    # x = m * 2**(expo - 53); bin b of a row holds the power 2**(b + emin - 53), one run of
    # bins per row from the batch's smallest exponent (a batch spans few binades, and a
    # small bincount is cheaper than one over all 2,100 of them)
    emin = int(expo.min())
    stride = int(expo.max()) - emin + _HALF + 1
    shift = expo.astype(np.intp) - emin
    shift += (np.arange(q, dtype=np.intp) * stride)[:, None]
    # m = hi * 2**27 + lo with lo in [0, 2**27) and |hi| <= 2**26 (arithmetic shift): both
    # halves go to the bin of their own power of two, so float64 bin sums stay exact
    flat = shift.ravel()
    idx = np.concatenate([flat, flat + _HALF])
    w = np.concatenate([(m & _LOW).ravel(), (m >> _HALF).ravel()]).astype(np.float64)
    sums = np.bincount(idx, weights=w, minlength=q * stride)
    totals = [0] * q
    base = emin - 53 + EXACT_SHIFT  # >= 0: frexp's smallest exponent is -1073
    for s in np.flatnonzero(sums).tolist():
        row, bit = divmod(s, stride)
        totals[row] += int(sums[s]) << (bit + base)
    return totals


def exact_to_float(total: int) -> float:
    """An exact sum as the nearest float (int true division rounds correctly)."""
    return total / (1 << EXACT_SHIFT)


def exact_fraction(total: int) -> Fraction:
    return Fraction(total, 1 << EXACT_SHIFT)


def square_parts(x: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], ...]:
    """``(hi, lo)`` with ``hi + lo == x * x`` exactly (Dekker's product; |x| < 2**996), so
    a sum of squares is exact too and R²'s total sum of squares does not cancel."""
    hi = x * x
    c = x * 134217729.0  # 2**27 + 1: Veltkamp split
    xh = c - (c - x)
    xl = x - xh
    lo = ((xh * xh - hi) + 2.0 * xh * xl) + xl * xl
    return hi, lo


def fixed(values: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Bounded ``values`` as int64 multiples of ``2**-FIXED_BITS`` (rounded to nearest)."""
    return np.rint(np.asarray(values, dtype=np.float64) * _SCALE).astype(np.int64)


def fixed_to_float(units: npt.ArrayLike) -> npt.NDArray[np.float64]:
    return np.asarray(units, dtype=np.float64) / _SCALE
