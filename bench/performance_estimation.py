"""``inferwatch performance`` against NannyML's CBPE on NannyML's own synthetic binary dataset.

NannyML's ``load_synthetic_binary_classification_dataset()`` (a work-from-home model: 50k
labelled reference rows, 50k analysis rows whose targets ship separately) is run through
both estimators on the same chunks (``--chunk-size`` rows, in file order).  For each chunk
the realised accuracy, ROC AUC and F1 come from scikit-learn on the analysis targets; the
bench prints each estimator's mean absolute error against them, the ratio (NannyML's MAE
over ours: above 1 means inferwatch is closer), how often the realised value fell inside
each tool's band, and the wall time of each whole process.

NannyML runs from its own virtualenv (``bash bench/setup_anchors.sh nannyml`` builds
bench/.venv-nannyml; NannyML 0.13.1 pins old libraries), inferwatch as a user runs it: the
``inferwatch performance --json`` command on CSV files.

    .venv/bin/python bench/performance_estimation.py
    .venv/bin/python bench/performance_estimation.py --chunk-size 2500
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
NANNYML_PY = HERE / ".venv-nannyml" / "bin" / "python"
METRICS = ("accuracy", "roc_auc", "f1")


def nannyml_side(out: Path, chunk_size: int) -> None:
    """Runs inside bench/.venv-nannyml: write the data files, run NannyML's CBPE, and write
    its per-chunk estimates, bands and the realised values (scikit-learn) as JSON."""
    import nannyml as nml
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    reference, analysis, targets = nml.load_synthetic_binary_classification_dataset()
    analysis = analysis.merge(targets, on="id", how="left")
    assert len(analysis) == len(targets)
    reference.drop(columns=["period"], errors="ignore").to_csv(out / "reference.csv", index=False)
    analysis.drop(columns=["period"], errors="ignore").to_csv(out / "analysis.csv", index=False)
    t0 = time.perf_counter()
    estimator = nml.CBPE(
        y_pred_proba="y_pred_proba",
        y_pred="y_pred",
        y_true="work_home_actual",
        metrics=list(METRICS),
        chunk_size=chunk_size,
        problem_type="classification_binary",
    )
    estimator.fit(reference)
    result = estimator.estimate(analysis.drop(columns=["work_home_actual"]))
    seconds = time.perf_counter() - t0
    df = result.filter(period="analysis").to_df()
    chunks = []
    for _, row in df.iterrows():
        start, end = int(row[("chunk", "start_index")]), int(row[("chunk", "end_index")]) + 1
        part = analysis.iloc[start:end]
        y, p, s = part["work_home_actual"], part["y_pred"], part["y_pred_proba"]
        chunks.append(
            {
                "start": start,
                "end": end,
                "realized": {
                    "accuracy": float(accuracy_score(y, p)),
                    "roc_auc": float(roc_auc_score(y, s)),
                    "f1": float(f1_score(y, p)),
                },
                "estimated": {m: float(row[(m, "value")]) for m in METRICS},
                "lower": {m: float(row[(m, "lower_confidence_boundary")]) for m in METRICS},
                "upper": {m: float(row[(m, "upper_confidence_boundary")]) for m in METRICS},
            }
        )
    alerts = [bool(any(row[(m, "alert")] for m in METRICS)) for _, row in df.iterrows()]
    # concept drift: from the sixth chunk on, the labels of the 20% of employees living
    # farthest from the office are flipped (P(y|x) changes there; the inputs, and so every
    # estimate, do not)
    drifted = analysis.copy()
    far = drifted["distance_from_office"] > drifted["distance_from_office"].quantile(0.8)
    late = drifted.index >= len(drifted) // 2
    drifted.loc[far & late, "work_home_actual"] = 1 - drifted.loc[far & late, "work_home_actual"]
    drifted.drop(columns=["period"], errors="ignore").to_csv(out / "drifted.csv", index=False)
    realised_drifted = [
        float(accuracy_score(part["work_home_actual"], part["y_pred"]))
        for part in (drifted.iloc[c["start"] : c["end"]] for c in chunks)
    ]
    (out / "nannyml.json").write_text(
        json.dumps(
            {
                "seconds": seconds,
                "chunks": chunks,
                "alerts": alerts,
                "drifted_accuracy": realised_drifted,
            }
        )
    )


def _inside(c: dict[str, Any], m: str, realised: float) -> bool:
    lo, hi = c["lower"][m], c["upper"][m]
    return lo is not None and hi is not None and lo <= realised <= hi


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunk-size", type=int, default=5000)
    parser.add_argument("--nannyml-side", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.nannyml_side is not None:
        nannyml_side(args.nannyml_side, args.chunk_size)
        return
    if not NANNYML_PY.exists():
        sys.exit("NannyML's virtualenv is missing: run  bash bench/setup_anchors.sh nannyml")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        t0 = time.perf_counter()
        subprocess.run(
            [
                str(NANNYML_PY),
                __file__,
                "--nannyml-side",
                tmp,
                "--chunk-size",
                str(args.chunk_size),
            ],
            check=True,
            env={**os.environ, "NML_DISABLE_USAGE_LOGGING": "1"},  # no telemetry calls home
        )
        nanny_process = time.perf_counter() - t0
        nanny = json.loads((out / "nannyml.json").read_text())
        t0 = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable, "-m", "inferwatch", "performance",
                "--reference", str(out / "reference.csv"),
                "--current", str(out / "analysis.csv"),
                "--target", "work_home_actual", "--prediction", "y_pred",
                "--score", "y_pred_proba", "--positive", "1",
                "--chunk-size", str(args.chunk_size), "--json",
            ],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        ours_seconds = time.perf_counter() - t0
        ours = json.loads(proc.stdout)
        argv = proc.args[:]
        argv[argv.index(str(out / "analysis.csv"))] = str(out / "drifted.csv")
        drifted = json.loads(
            subprocess.run(argv, check=True, capture_output=True, text=True).stdout
        )
    if [(c["start"], c["end"]) for c in ours["chunks"]] != [
        (c["start"], c["end"]) for c in nanny["chunks"]
    ]:
        sys.exit("the two tools cut different chunks; compare nothing")
    print(
        f"NannyML synthetic binary dataset: {len(ours['chunks'])} chunks of "
        f"{args.chunk_size} rows; inferwatch calibrated: {ours['calibrated']}"
    )
    print(f"{'metric':10} {'MAE nannyml':>12} {'MAE inferwatch':>15} {'ratio':>7} "
          f"{'in band: nannyml':>17} {'inferwatch':>11} {'band width: nannyml':>20} "
          f"{'inferwatch':>11}")  # fmt: skip
    for m in METRICS:
        n_err, o_err, n_in, o_in, n_w, o_w = [], [], 0, 0, 0.0, 0.0
        for n, o in zip(nanny["chunks"], ours["chunks"], strict=True):
            real = n["realized"][m]
            # the realised values are computed by the two tools independently: they must agree
            assert abs(o["realized"][m] - real) < 1e-6, (m, o["realized"][m], real)
            n_err.append(abs(n["estimated"][m] - real))
            o_err.append(abs(o["estimated"][m] - real))
            n_in += _inside(n, m, real)
            o_in += _inside(o, m, real)
            n_w += n["upper"][m] - n["lower"][m]
            o_w += o["upper"][m] - o["lower"][m]
        k = len(n_err)
        n_mae, o_mae = sum(n_err) / k, sum(o_err) / k
        ratio = n_mae / o_mae if o_mae > 0 else float("inf")
        print(
            f"{m:10} {n_mae:12.6f} {o_mae:15.6f} {ratio:7.4f} {n_in:>14}/{k} {o_in:>8}/{k} "
            f"{n_w / k:20.4f} {o_w / k:11.4f}"
        )
    k = len(ours["chunks"])
    half = k // 2
    flagged = [any(f["metric"] == "accuracy" for f in c["findings"]) for c in drifted["chunks"]]
    print(
        "concept drift (labels flipped for the farthest 20% of employees from chunk "
        f"{half + 1} on): realised accuracy "
        + " ".join(f"{a:.3f}" for a in nanny["drifted_accuracy"])
    )
    print(
        "  estimated accuracy (both tools, unchanged): "
        + " ".join(f"{c['estimated']['accuracy']:.3f}" for c in drifted["chunks"])
    )
    print(
        f"  inferwatch concept_drift_suspected on accuracy: {sum(flagged[half:])}/{k - half} "
        f"drifted chunks, {sum(flagged[:half])}/{half} clean ones; NannyML has no "
        f"reconciliation (its estimate alerts fire on {sum(nanny['alerts'])}/{k} chunks, the "
        "same with or without the flip)"
    )
    print(
        f"wall time: nannyml process {nanny_process:.1f} s (CBPE fit+estimate "
        f"{nanny['seconds']:.2f} s); inferwatch performance {ours_seconds:.1f} s"
    )


if __name__ == "__main__":
    main()
