"""Multivariate drift: the domain classifier and PCA reconstruction error, on seeded data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.stats import ks_2samp

from inferwatch.io import ColumnSource
from inferwatch.report import load_pair, render_html
from inferwatch.report._multivariate import (
    domain_classifier,
    multivariate,
    pca_reconstruction,
    sample_matrix,
)

Matrix = np.ndarray[Any, np.dtype[np.float64]]


def correlated(rng: np.random.Generator, n: int, rho: float, noise: int = 1) -> Matrix:
    """Two standard normals with correlation ``rho``, then ``noise`` independent ones."""
    x1 = rng.normal(size=n)
    x2 = rho * x1 + np.sqrt(1 - rho**2) * rng.normal(size=n)
    return np.column_stack([x1, x2, rng.normal(size=(n, noise))])


def write(path: Path, columns: dict[str, Any]) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


def test_a_flipped_correlation_is_caught_though_no_marginal_moved() -> None:
    rng = np.random.default_rng(1)
    ref, cur = correlated(rng, 2000, 0.8), correlated(rng, 2000, -0.8)
    names = ["x1", "x2", "x3"]
    for j in range(3):  # what the univariate tests see: nothing
        assert ks_2samp(ref[:, j], cur[:, j]).pvalue > 0.05

    dc = domain_classifier(ref, cur, names)
    assert dc.drift_detected
    assert dc.statistic > 0.75
    assert dc.threshold == 0.55
    assert len(dc.details["auc_folds"]) == 3
    assert dc.details["n_reference_sampled"] == dc.details["n_current_sampled"] == 2000

    pca = pca_reconstruction(ref, cur, names)
    assert pca.drift_detected
    assert pca.statistic > pca.details["upper"] == pca.threshold
    assert pca.details["lower"] <= pca.details["reference_error"] <= pca.details["upper"]
    assert pca.details["n_components"] == 2


@pytest.mark.parametrize("seed", range(5))
def test_same_distribution_raises_no_alarm(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref, cur = correlated(rng, 1500, 0.8, noise=3), correlated(rng, 1000, 0.8, noise=3)
    names = ["a", "b", "c", "d", "e"]

    dc = domain_classifier(ref, cur, names, seed=seed)
    assert not dc.drift_detected
    assert (
        abs(dc.statistic - 0.5) < 0.05
    )  # cross-validated AUC under no drift: 0.46-0.53 over 30 seeds
    assert dc.details["n_reference_sampled"] == 1000  # the larger side was subsampled

    pca = pca_reconstruction(ref, cur, names, seed=seed)
    assert not pca.drift_detected
    assert pca.details["lower"] <= pca.statistic <= pca.details["upper"]


def test_small_samples_raise_the_auc_threshold_above_chance() -> None:
    rng = np.random.default_rng(3)
    ref, cur = correlated(rng, 60, 0.5), correlated(rng, 60, 0.5)
    dc = domain_classifier(ref, cur, ["x1", "x2", "x3"])
    assert dc.threshold == dc.details["chance_bound"] > 0.6  # 0.5 + 3 sd of a random AUC


def test_the_shifted_feature_is_named_first() -> None:
    rng = np.random.default_rng(5)
    names = [f"f{i}" for i in range(8)]
    ref, cur = rng.normal(size=(1000, 8)), rng.normal(size=(1000, 8))
    cur[:, 6] += 0.6
    dc = domain_classifier(ref, cur, names)
    assert dc.drift_detected
    top = dc.details["top_features"]
    assert next(iter(top)) == "f6"
    assert len(top) == 5
    assert list(top.values()) == sorted(top.values(), reverse=True)
    assert 0.1 < top["f6"] <= 0.5  # |AUC - 0.5| of a 0.6 sd shift is about 0.17


def test_a_shift_in_missingness_alone_ranks_its_feature() -> None:
    rng = np.random.default_rng(6)
    ref, cur = rng.normal(size=(1000, 3)), rng.normal(size=(1000, 3))
    cur[rng.random(1000) < 0.3, 1] = np.nan
    dc = domain_classifier(ref, cur, ["a", "b", "c"])
    assert dc.drift_detected
    assert next(iter(dc.details["top_features"])) == "b"


def test_a_categorical_shift_is_picked_up_from_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    cats = np.array(["red", "green", "blue", "grey"])

    def frame(n: int, p: list[float]) -> dict[str, Any]:
        return {
            "x": rng.normal(size=n),
            "y": rng.uniform(size=n),
            "colour": cats[rng.choice(4, n, p=p)],
        }

    ref = write(tmp_path / "ref.parquet", frame(1500, [0.4, 0.3, 0.2, 0.1]))
    cur = write(tmp_path / "cur.parquet", frame(1500, [0.1, 0.2, 0.3, 0.4]))
    dc, pca = multivariate(load_pair(ref, cur))
    assert dc.drift_detected
    assert next(iter(dc.details["top_features"])) == "colour"
    assert pca.method == "pca_reconstruction"


def test_sample_matrix_keeps_rows_aligned_and_codes_shared(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    n = 5000
    a = rng.normal(size=n)
    labels = np.where(a > 0, "pos", "neg").astype(object)
    labels[::7] = None
    ref = write(tmp_path / "ref.parquet", {"a": a, "b": 2 * a, "sign": labels})
    cur_labels = np.where(a[:300] > 1, "new", labels[:300])
    cur = write(tmp_path / "cur.parquet", {"a": a[:300], "b": 2 * a[:300], "sign": cur_labels})
    data = load_pair(ref, cur)
    src_ref, src_cur = ColumnSource(ref), ColumnSource(cur)

    X_ref, X_cur, names = sample_matrix(src_ref, src_cur, data.schema, max_rows=1000, seed=3)
    assert names == ["a", "b", "sign"]
    assert X_ref.shape == (1000, 3)
    assert X_cur.shape == (300, 3)  # fewer rows than max_rows: all of them
    for X in (X_ref, X_cur):
        np.testing.assert_array_equal(X[:, 1], 2 * X[:, 0])  # the same rows in every column

    def codes(X: Matrix, rows: Any) -> set[float]:
        values = X[rows, 2]
        return set(values[~np.isnan(values)].tolist())

    a_ref, a_cur = X_ref[:, 0], X_cur[:, 0]
    pos, neg = codes(X_ref, a_ref > 0), codes(X_ref, a_ref <= 0)
    assert len(pos) == len(neg) == 1
    assert pos | neg == {0.0, 1.0}  # the reference's categories come first
    assert codes(X_cur, (a_cur > 0) & (a_cur <= 1)) == pos  # the same code on both sides
    assert codes(X_cur, a_cur <= 0) == neg
    assert codes(X_cur, a_cur > 1) == {2.0}  # unseen in the reference: after its codes
    assert np.isnan(X_ref[:, 2]).any()  # missing labels stay missing

    again = sample_matrix(src_ref, src_cur, data.schema, max_rows=1000, seed=3)[0]
    np.testing.assert_array_equal(again, X_ref)  # reproducible from the seed


def test_infinities_and_text_in_numeric_columns_become_missing(tmp_path: Path) -> None:
    ref = write(tmp_path / "ref.parquet", {"n": [1.0, np.inf, -np.inf, None], "k": ["a"] * 4})
    cur = write(tmp_path / "cur.parquet", {"n": ["2.5", "oops", None, "1e3"], "k": ["b"] * 4})
    X_ref, X_cur, names = sample_matrix(
        ColumnSource(ref), ColumnSource(cur), load_pair(ref, cur).schema
    )
    assert names == ["n", "k"]
    np.testing.assert_array_equal(X_ref[:, 0], [1.0, np.nan, np.nan, np.nan])
    np.testing.assert_array_equal(X_cur[:, 0], [2.5, np.nan, np.nan, 1000.0])
    np.testing.assert_array_equal(X_cur[:, 1], [1.0] * 4)  # "b", after the reference's "a"


def test_too_little_data_gives_skipped_results(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    one = domain_classifier(rng.normal(size=(500, 1)), rng.normal(size=(500, 1)), ["x"])
    assert not one.drift_detected
    assert "usable features" in one.details["skipped"]

    few = pca_reconstruction(rng.normal(size=(10, 3)), rng.normal(size=(10, 3)), list("abc"))
    assert not few.drift_detected
    assert "rows" in few.details["skipped"]

    constant = np.column_stack([np.ones(200), np.zeros(200), rng.normal(size=200)])
    flat = pca_reconstruction(constant, constant, list("abc"))
    assert "vary" in flat.details["skipped"]

    tiny = {"a": rng.normal(size=10), "b": rng.normal(size=10)}
    ref, cur = write(tmp_path / "r.parquet", tiny), write(tmp_path / "c.parquet", tiny)
    results = multivariate(load_pair(ref, cur))
    assert [m.method for m in results] == ["domain_classifier", "pca_reconstruction"]
    assert all(not m.drift_detected and "rows" in m.details["skipped"] for m in results)

    empty_b = {"a": rng.normal(size=300), "b": pa.nulls(300, pa.float64())}
    ref = write(tmp_path / "r2.parquet", empty_b)
    results = multivariate(load_pair(ref, ref))
    assert all("usable features" in m.details["skipped"] for m in results)
    json.dumps([m.to_dict() for m in results])  # NaN statistics serialise as null


@pytest.mark.slow
def test_20k_rows_of_25_features_in_bounded_time() -> None:
    rng = np.random.default_rng(10)
    names = [f"f{i:02d}" for i in range(25)]
    ref, cur = rng.normal(size=(20_000, 25)), rng.normal(size=(20_000, 25))
    cur[:, 3] += 0.4
    started = time.perf_counter()
    dc = domain_classifier(ref, cur, names)
    pca = pca_reconstruction(ref, cur, names)
    elapsed = time.perf_counter() - started
    assert dc.drift_detected
    assert next(iter(dc.details["top_features"])) == "f03"
    assert not pca.drift_detected  # a mean shift of one feature is not a structural change
    assert elapsed < 60, f"took {elapsed:.1f}s"  # about 2 s (one core, this 2-core VM)


def test_sklearn_is_not_imported_without_multivariate(tmp_path: Path) -> None:
    data = {"a": np.arange(100.0), "b": np.arange(100.0) % 7}
    ref = write(tmp_path / "ref.parquet", data)
    code = (
        "import sys\nfrom pathlib import Path\nfrom inferwatch.report import build_report\n"
        f"build_report(Path({str(ref)!r}), Path({str(ref)!r}))\n"
        "print('sklearn' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_cli_report_and_check_with_multivariate(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    names = ["x1", "x2", "x3"]
    ref = write(
        tmp_path / "ref.parquet", dict(zip(names, correlated(rng, 2000, 0.8).T, strict=True))
    )
    cur = write(
        tmp_path / "cur.parquet", dict(zip(names, correlated(rng, 2000, -0.8).T, strict=True))
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFERWATCH_")}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "inferwatch", *args, "-r", str(ref), "--current", str(cur)]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)

    out = tmp_path / "out.json"
    res = cli("report", "--multivariate", "-o", str(out))
    assert res.returncode == 0, res.stderr
    report = json.loads(out.read_text())
    assert not report["dataset_drift"]  # the marginals did not move
    block = report["multivariate"]
    assert set(block) == {"domain_classifier", "pca_reconstruction"}
    assert all(block[m]["drift_detected"] for m in block)
    assert set(block["domain_classifier"]["details"]["top_features"]) == set(names)

    html = render_html(report)
    section = html[html.index('id="multivariate"') :]
    assert "top_features" in section
    assert "x1:" in section  # the ranking renders as name: score, not "3 entries"

    assert cli("check").returncode == 0  # univariate checks only: nothing to see
    res = cli("check", "--multivariate")
    assert res.returncode == 1, res.stderr
    assert "multivariate domain_classifier: DRIFT" in res.stderr
