"""The naive baseline the issue names: a plain numpy/scipy drift script, as a user would write.

Per numeric column: 10 reference-quantile bins + PSI, two-sample KS, Wasserstein; per
categorical column: chi-square on the category counts.  NaNs are dropped (as such scripts
do).  It prints one JSON object of verdicts, so the runner can compare verdicts.

    .venv/bin/python bench/naive_drift.py REFERENCE.parquet CURRENT.parquet
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
from scipy import stats


def psi(ref: np.ndarray, cur: np.ndarray, bins: int = 10) -> float:
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)))
    edges[0], edges[-1] = -np.inf, np.inf
    p = np.histogram(ref, edges)[0] / len(ref)
    q = np.histogram(cur, edges)[0] / len(cur)
    p, q = np.clip(p, 1e-4, None), np.clip(q, 1e-4, None)
    return float(np.sum((q - p) * np.log(q / p)))


def main() -> None:
    ref = pd.read_parquet(sys.argv[1])
    cur = pd.read_parquet(sys.argv[2])
    out: dict[str, dict[str, float | bool]] = {}
    for col in ref.columns:
        r, c = ref[col], cur[col]
        if pd.api.types.is_numeric_dtype(r):
            a, b = r.dropna().to_numpy(), c.dropna().to_numpy()
            ks = stats.ks_2samp(a, b)
            wd = stats.wasserstein_distance(a, b) / (np.std(a) or 1.0)
            out[col] = {
                "psi": psi(a, b),
                "ks_p": float(ks.pvalue),
                "wasserstein": float(wd),
                "drift": bool(wd >= 0.1),
            }
        else:
            cats = sorted(set(r.dropna()) | set(c.dropna()))
            rc = r.value_counts().reindex(cats, fill_value=0).to_numpy()
            cc = c.value_counts().reindex(cats, fill_value=0).to_numpy()
            chi2, p, _, _ = stats.chi2_contingency(np.vstack([rc, cc]))
            out[col] = {"chi2": float(chi2), "p": float(p), "drift": bool(p < 0.05)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
