"""``inferwatch performance``: a model's performance per chunk of a file, estimated without
labels (CBPE for classifiers, DLE for regressors) and, where the file has them, realised.

The estimator is fitted on the labelled reference; each chunk of the current file gets an
estimate with its band, the realised value when the target column is there, and a finding
when the realised value falls outside the band (P(y|x) changed: concept drift suspected).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from inferwatch.cli._app import app, console, err_console, fail

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["performance"]

PROGRESS_MIN_ROWS = 200_000  # show a progress bar over the chunks from this many rows
DEFAULT_CHUNKS = 10  # chunks when --chunk-size is not given (NannyML's default count)

Reference = Annotated[
    Path,
    typer.Option("--reference", "-r", help="Labelled reference data: CSV, Parquet or JSONL."),
]
Current = Annotated[
    Path, typer.Option("--current", help="Current data (target optional): CSV, Parquet or JSONL.")
]
Target = Annotated[str, typer.Option("--target", help="Target (label) column.")]
Prediction = Annotated[str, typer.Option("--prediction", help="Prediction column.")]
Score = Annotated[
    list[str] | None,
    typer.Option(
        "--score",
        help="Score column (repeatable). Binary: one column, the positive class's probability; "
        "multiclass: one column per class, in the classes' sorted order.",
    ),
]
ScorePrefix = Annotated[
    str | None,
    typer.Option(
        "--score-prefix",
        help="Multiclass: the score columns are PREFIX<class> (e.g. proba_setosa).",
    ),
]
Positive = Annotated[
    str | None,
    typer.Option(help="Binary: the positive class (default: the larger of the two)."),
]
TaskOpt = Annotated[
    str | None,
    typer.Option(
        "--task",
        help="classification or regression (default: classification when scores are given).",
    ),
]
ChunkSize = Annotated[
    int | None,
    typer.Option("--chunk-size", min=1, help="Rows per chunk (default: 10 chunks)."),
]
GapTolerance = Annotated[
    float,
    typer.Option(
        "--gap-tolerance",
        min=0.0,
        max=1.0,
        help="A realised value this close to its estimate is no finding, however narrow the "
        "band (the server's performance.gap_tolerance).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
Output = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Write an HTML report (estimated vs realised)."),
]


@app.command()
def performance(
    reference: Reference,
    current: Current,
    target: Target,
    prediction: Prediction,
    score: Score = None,
    score_prefix: ScorePrefix = None,
    positive: Positive = None,
    task: TaskOpt = None,
    chunk_size: ChunkSize = None,
    gap_tolerance: GapTolerance = 0.02,
    as_json: JsonOpt = False,
    output: Output = None,
) -> None:
    """Estimate performance per chunk of CURRENT (no labels needed) and, when CURRENT has
    the target, set the realised values beside the estimates."""
    from inferwatch.errors import InferwatchError

    scores = list(score or [])
    if task is None:
        task = "classification" if scores or score_prefix else "regression"
    if task not in ("classification", "regression"):
        fail(f"--task must be classification or regression, got {task!r}")
    if task == "regression" and (scores or score_prefix):
        fail("--score/--score-prefix are for classification; a regressor has no class scores")
    if task == "classification" and not (scores or score_prefix):
        fail("--task classification needs the model's scores: --score or --score-prefix")
    if scores and score_prefix:
        fail("give --score or --score-prefix, not both")
    try:
        result = (
            _classification(
                reference, current, target, prediction, scores, score_prefix, positive,
                chunk_size, gap_tolerance,
            )
            if task == "classification"
            else _regression(reference, current, target, prediction, chunk_size, gap_tolerance)
        )  # fmt: skip
    except (InferwatchError, ValueError) as exc:
        fail(str(exc))
    if output is not None:
        output.write_text(render_performance_html(result), encoding="utf-8")
    if as_json:
        print(json.dumps(result, allow_nan=False))
    else:
        _print_table(result)
        if output is not None:
            console.print(f"wrote {output}", highlight=False)


# -- reading -------------------------------------------------------------------------------
def _columns(path: Path, names: list[str] | None = None) -> dict[str, Any]:
    from inferwatch.io import read_columns

    return read_columns(path, names)


def _header(path: Path) -> list[str]:
    from inferwatch.io import read_columns

    return list(read_columns(path, limit=1))


def _class_names(*arrays: npt.NDArray[Any]) -> list[str]:
    """The classes seen in the reference's target and prediction, sorted as numbers when
    they all are (so 2 < 10), else as strings."""

    values = {v for a in arrays for v in a.tolist() if v is not None and v == v}
    try:
        return [_name(v) for v in sorted(values, key=float)]
    except (TypeError, ValueError):
        return sorted(str(v) for v in values)


def _name(v: Any) -> str:
    """1.0 and 1 name the same class: a float target read from CSV matches an int prediction."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _indices(classes: list[str], values: npt.NDArray[Any], what: str) -> npt.NDArray[np.intp]:
    import numpy as np

    lookup = {c: i for i, c in enumerate(classes)}
    out = np.fromiter(
        (-1 if v is None or v != v else lookup.get(_name(v), -1) for v in values.tolist()),
        dtype=np.intp,
        count=len(values),
    )
    return out


def _chunks(n: int, size: int | None) -> list[tuple[int, int]]:
    if n == 0:
        raise ValueError("the current file has no rows")
    size = size or max(1, math.ceil(n / DEFAULT_CHUNKS))
    return [(i, min(i + size, n)) for i in range(0, n, size)]


class _Progress:
    """A rich progress bar over the chunks, on stderr, only for large files."""

    def __init__(self, rows: int, chunks: int) -> None:
        self._bar: Any = None
        if rows >= PROGRESS_MIN_ROWS:
            from rich.progress import Progress

            self._bar = Progress(console=err_console, transient=True)
            self._bar.start()
            self._task = self._bar.add_task(f"{rows:,} rows", total=chunks)

    def advance(self) -> None:
        if self._bar is not None:
            self._bar.advance(self._task)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


# -- classification --------------------------------------------------------------------------
def _score_columns(
    path: Path, classes: list[str], scores: list[str], prefix: str | None
) -> list[str]:
    if prefix is not None:
        return [f"{prefix}{c}" for c in classes]
    if len(classes) > 2 and len(scores) != len(classes):
        fail(
            f"{len(classes)} classes ({', '.join(classes)}) need {len(classes)} --score columns "
            f"in that order (or --score-prefix); got {len(scores)}"
        )
    if len(classes) == 2 and len(scores) not in (1, 2):
        fail(f"a binary model needs one --score column (the positive class), got {len(scores)}")
    return scores


def _score_matrix(
    cols: dict[str, Any], names: list[str], k: int, positive: int
) -> npt.NDArray[np.float64]:
    import numpy as np

    try:
        arrays = [np.asarray(cols[c], dtype=np.float64) for c in names]
    except (TypeError, ValueError):
        bad = [c for c in names if cols[c].dtype.kind not in "biuf"]
        raise ValueError(f"score columns must be numbers: {', '.join(bad)}") from None
    if k == 2 and len(arrays) == 1:
        s = np.empty((len(arrays[0]), 2))
        s[:, positive], s[:, 1 - positive] = arrays[0], 1.0 - arrays[0]
        return s
    return np.column_stack(arrays)


def _classification(
    reference: Path,
    current: Path,
    target: str,
    prediction: str,
    scores: list[str],
    prefix: str | None,
    positive: str | None,
    chunk_size: int | None,
    gap_tolerance: float,
) -> dict[str, Any]:

    from inferwatch.estimate import CBPE
    from inferwatch.performance import ClassificationSummary

    ref = _columns(reference, [target, prediction])
    classes = _class_names(ref[target], ref[prediction])
    if len(classes) < 2:
        raise ValueError(
            f"{reference}: the target and prediction hold one class ({', '.join(classes)}); "
            "a classifier's performance needs at least two"
        )
    if len(classes) > 100 and prefix is None:
        raise ValueError(
            f"{reference}: {target!r} has {len(classes)} distinct values; for a regressor "
            "leave out --score (or pass --task regression)"
        )
    pos = 1
    if positive is not None:
        if positive not in classes:
            raise ValueError(f"--positive {positive!r} is not one of the classes {classes}")
        pos = classes.index(positive)
    names = _score_columns(reference, classes, scores, prefix)
    ref.update(_columns(reference, names))
    ref_scores = _score_matrix(ref, names, len(classes), pos)
    yt, yp = _indices(classes, ref[target], "target"), _indices(classes, ref[prediction], "")
    labelled = (yt >= 0) & (yp >= 0)
    cbpe = CBPE.fit(
        classes,
        yt[labelled],
        yp[labelled],
        ref_scores[labelled],
        positive=classes[pos] if len(classes) == 2 else None,
    )
    has_target = target in _header(current)
    cur = _columns(current, [prediction, *names, *([target] if has_target else [])])
    cur_scores = _score_matrix(cur, names, len(classes), pos)
    cp = _indices(classes, cur[prediction], "prediction")
    unknown = int((cp < 0).sum())
    if unknown:
        raise ValueError(
            f"{current}: {unknown} predictions are not among the reference's classes {classes}"
        )
    ct = _indices(classes, cur[target], "target") if has_target else None
    spans = _chunks(len(cp), chunk_size)
    out_chunks: list[dict[str, Any]] = []
    bar = _Progress(len(cp), len(spans))
    try:
        for start, end in spans:
            est = cbpe.estimate(cp[start:end], cur_scores[start:end])
            realised: dict[str, float] | None = None
            if ct is not None:
                rows = ct[start:end] >= 0
                if rows.any():
                    summary = ClassificationSummary(classes)
                    summary.add_labels(
                        ct[start:end][rows], cp[start:end][rows], cur_scores[start:end][rows]
                    )
                    metrics = summary.metrics(classes[pos] if len(classes) == 2 else None)
                    realised = {m: metrics[m] for m in est}
            out_chunks.append(_chunk(start, end, est, realised, gap_tolerance))
            bar.advance()
    finally:
        bar.close()
    return {
        "task": "classification",
        "method": "cbpe",
        "classes": classes,
        "positive": classes[pos] if len(classes) == 2 else None,
        "coverage": cbpe.coverage,
        "calibrated": [c is not None for c in cbpe.calibrators_],
        "reference_rows": int(labelled.sum()),
        "chunks": out_chunks,
    }


def _chunk(
    start: int,
    end: int,
    est: dict[str, Any],
    realised: dict[str, float] | None,
    gap_tolerance: float,
) -> dict[str, Any]:
    from inferwatch.estimate import reconcile

    def num(x: float) -> float | None:
        return None if math.isnan(x) else round(float(x), 6)

    chunk: dict[str, Any] = {
        "start": start,
        "end": end,
        "rows": end - start,
        "estimated": {m: num(e.value) for m, e in est.items()},
        "lower": {m: num(e.lower) for m, e in est.items()},
        "upper": {m: num(e.upper) for m, e in est.items()},
        "realized": None if realised is None else {m: num(v) for m, v in realised.items()},
        "findings": [],
    }
    if realised is not None:
        for m, e in est.items():
            if (
                reconcile(e, realised[m], tolerance=gap_tolerance).verdict
                == "concept_drift_suspected"
            ):
                chunk["findings"].append(
                    {
                        "metric": m,
                        "finding": "concept_drift_suspected",
                        "gap": num(realised[m] - e.value),
                    }
                )
    return chunk


# -- regression --------------------------------------------------------------------------------
def _features(
    ref: dict[str, Any], cur: dict[str, Any], names: list[str]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Numeric columns as floats; others ordinal-encoded on the reference's categories
    (a category the reference never had is NaN, which the nanny model treats as missing)."""
    import numpy as np

    ref_cols, cur_cols = [], []
    for name in names:
        r, c = ref[name], cur[name]
        if r.dtype.kind in "biuf" and c.dtype.kind in "biuf":
            ref_cols.append(r.astype(np.float64))
            cur_cols.append(c.astype(np.float64))
        elif r.dtype.kind in "mM":
            continue  # timestamps order rows; they are not features
        else:
            cats = {v: float(i) for i, v in enumerate(sorted({str(v) for v in r.tolist()}))}
            for src, dst in ((r, ref_cols), (c, cur_cols)):
                dst.append(np.array([cats.get(str(v), np.nan) for v in src.tolist()]))
    if not ref_cols:
        return np.zeros((len(next(iter(ref.values()))), 0)), np.zeros(
            (len(next(iter(cur.values()))), 0)
        )
    return np.column_stack(ref_cols), np.column_stack(cur_cols)


def _numbers(values: npt.NDArray[Any], path: Path, column: str) -> npt.NDArray[np.float64]:
    import numpy as np

    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"{path}: column {column!r} is not numeric; a regressor's target and prediction "
            "are numbers (for a classifier pass --score)"
        ) from None


def _regression(
    reference: Path,
    current: Path,
    target: str,
    prediction: str,
    chunk_size: int | None,
    gap_tolerance: float,
) -> dict[str, Any]:
    import numpy as np

    from inferwatch.estimate import DLE
    from inferwatch.performance import RegressionSummary

    ref = _columns(reference)
    for col in (target, prediction):
        if col not in ref:
            raise ValueError(f"{reference}: no column {col!r}; the file has: {', '.join(ref)}")
    cur_header = _header(current)
    has_target = target in cur_header
    features = [c for c in ref if c not in (target, prediction) and c in cur_header]
    cur = _columns(current, [prediction, *features, *([target] if has_target else [])])
    yt, yp = (
        _numbers(ref[target], reference, target),
        _numbers(ref[prediction], reference, prediction),
    )
    X_ref, X_cur = _features(ref, cur, features)
    dle = DLE.fit(X_ref, yp, yt)
    cp = _numbers(cur[prediction], current, prediction)
    ct = _numbers(cur[target], current, target) if has_target else None
    abs_loss, sq_loss = dle.predict_losses(X_cur, np.nan_to_num(cp))
    spans = _chunks(len(cp), chunk_size)
    out_chunks: list[dict[str, Any]] = []
    for start, end in spans:
        ok = np.isfinite(cp[start:end])
        est = dle.estimate_sums(
            int(ok.sum()),
            float(abs_loss[start:end][ok].sum()),
            float(sq_loss[start:end][ok].sum()),
        )
        realised: dict[str, float] | None = None
        if ct is not None:
            rows = ok & np.isfinite(ct[start:end])
            if rows.any():
                summary = RegressionSummary()
                summary.add_labels(ct[start:end][rows], cp[start:end][rows])
                metrics = summary.metrics()
                realised = {m: metrics[m] for m in est}
        out_chunks.append(_chunk(start, end, est, realised, gap_tolerance))
    return {
        "task": "regression",
        "method": "dle",
        "coverage": dle.coverage,
        "features": features,
        "reference_rows": len(yt),
        "chunks": out_chunks,
    }


# -- output ------------------------------------------------------------------------------------
def _print_table(result: dict[str, Any]) -> None:
    from rich.table import Table

    chunks = result["chunks"]
    metrics = list(chunks[0]["estimated"]) if chunks else []
    title = f"{result['task']}: estimated ({result['method']}, {result['coverage']:.0%} band)" + (
        " vs realised" if any(c["realized"] for c in chunks) else ""
    )
    table = Table(title=title)
    table.add_column("rows")
    for m in metrics:
        table.add_column(m)
    for c in chunks:
        cells = [f"{c['start']}-{c['end']}"]
        flagged = {f["metric"] for f in c["findings"]}
        for m in metrics:
            cell = f"{_fmt(c['estimated'][m])} [{_fmt(c['lower'][m])}, {_fmt(c['upper'][m])}]"
            if c["realized"] is not None:
                mark = " [bold red]drift?[/]" if m in flagged else ""
                cell += f"\nrealised {_fmt(c['realized'][m])}{mark}"
            cells.append(cell)
        table.add_row(*cells)
    console.print(table)
    n = sum(len(c["findings"]) for c in chunks)
    if n:
        console.print(
            f"[bold red]{n} realised value(s) outside their band[/]: P(y|x) differs from the "
            "reference's (concept drift suspected)",
            highlight=False,
        )


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def render_performance_html(result: dict[str, Any]) -> str:
    """A small self-contained page: per metric, the estimate's band (shaded), the estimate
    (line) and the realised value (dots, red outside the band) over the chunks."""
    from html import escape

    chunks = result["chunks"]
    metrics = list(chunks[0]["estimated"]) if chunks else []
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>inferwatch performance</title>",
        "<style>body{font:14px system-ui,sans-serif;margin:2em;color:#222}svg{display:block;"
        "margin:.5em 0 1.5em}td,th{padding:2px 8px;text-align:right}.bad{color:#c0392b}</style>",
        "</head><body>",
        f"<h1>Model performance: {escape(result['task'])}</h1>",
        f"<p>Estimated by {escape(result['method'].upper())} on {result['reference_rows']:,} "
        f"labelled reference rows; the band holds the realised value with probability "
        f"{result['coverage']:.0%} while P(y|x) is as on the reference. A realised value "
        "outside it (red) suggests concept drift.</p>",
    ]
    for m in metrics:
        parts.append(f"<h2>{escape(m)}</h2>{_svg(chunks, m)}")
    parts.append("<table><tr><th>rows</th>")
    parts.extend(f"<th>{escape(m)} est.</th><th>realised</th>" for m in metrics)
    parts.append("</tr>")
    for c in chunks:
        flagged = {f["metric"] for f in c["findings"]}
        row = [f"<tr><td>{c['start']}-{c['end']}</td>"]
        for m in metrics:
            real = c["realized"][m] if c["realized"] else None
            cls = " class='bad'" if m in flagged else ""
            row.append(f"<td>{_fmt(c['estimated'][m])}</td><td{cls}>{_fmt(real)}</td>")
        parts.append("".join(row) + "</tr>")
    parts.append("</table></body></html>")
    return "\n".join(parts)


def _svg(chunks: list[dict[str, Any]], metric: str) -> str:
    width, height, pad = 640, 180, 30
    values = [
        v
        for c in chunks
        for v in (
            c["lower"][metric],
            c["upper"][metric],
            c["estimated"][metric],
            (c["realized"] or {}).get(metric),
        )
        if v is not None
    ]
    if not values:
        return "<p>no values</p>"
    lo, hi = float(min(values)), float(max(values))
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    n = len(chunks)

    def x(i: int) -> float:
        return pad + (width - 2 * pad) * (i + 0.5) / n

    def y(v: float) -> float:
        return height - pad - (height - 2 * pad) * (v - lo) / (hi - lo)

    pts = [(i, c) for i, c in enumerate(chunks) if c["estimated"][metric] is not None]
    band = [
        f"{x(i):.1f},{y(c['upper'][metric]):.1f}" for i, c in pts if c["upper"][metric] is not None
    ]
    band += [
        f"{x(i):.1f},{y(c['lower'][metric]):.1f}"
        for i, c in reversed(pts)
        if c["lower"][metric] is not None
    ]
    line = " ".join(f"{x(i):.1f},{y(c['estimated'][metric]):.1f}" for i, c in pts)
    dots = []
    for i, c in enumerate(chunks):
        v = (c["realized"] or {}).get(metric)
        if v is not None:
            bad = any(f["metric"] == metric for f in c["findings"])
            fill = "#c0392b" if bad else "#222"
            dots.append(f"<circle cx='{x(i):.1f}' cy='{y(v):.1f}' r='3.5' fill='{fill}'/>")
    return (
        f"<svg width='{width}' height='{height}' role='img' aria-label='{metric} per chunk'>"
        f"<polygon points='{' '.join(band)}' fill='#3b82f6' fill-opacity='.18'/>"
        f"<polyline points='{line}' fill='none' stroke='#3b82f6' stroke-width='2'/>"
        + "".join(dots)
        + f"<text x='2' y='{pad}' font-size='11'>{hi:.3f}</text>"
        f"<text x='2' y='{height - pad}' font-size='11'>{lo:.3f}</text></svg>"
    )
