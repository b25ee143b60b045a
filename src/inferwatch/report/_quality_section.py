"""The HTML report's "Model quality" section, from the report's ``"performance"`` block.

Realised metrics of the reference and the current file side by side, then (classifiers)
each file's confusion matrix and a reliability diagram, drawn as inline SVG like the
report's other charts.  It reads only the aggregates ``report._performance`` computed, and
tolerates missing or null values as the rest of the page does (a dash).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from inferwatch.report._html import DASH, LEFT, RIGHT, TOP, W, _e, _float, _map, _num, _seq, _svg

__all__ = ["quality_section"]

CLASSIFICATION = (
    ("accuracy", "Accuracy"),
    ("balanced_accuracy", "Balanced accuracy"),
    ("precision", "Precision"),
    ("recall", "Recall"),
    ("f1", "F1"),
    ("f1_macro", "F1, macro"),
    ("f1_weighted", "F1, weighted"),
    ("roc_auc", "ROC AUC"),
    ("pr_auc", "PR AUC (average precision)"),
    ("log_loss", "Log loss"),
    ("brier", "Brier score"),
    ("ece", "Expected calibration error"),
    ("label_coverage", "Label coverage"),
    ("labelled", "Labelled rows"),
)
REGRESSION = (
    ("mae", "MAE"),
    ("rmse", "RMSE"),
    ("mape", "MAPE (fraction)"),
    ("r2", "R\u00b2"),
    ("mean_error", "Mean error (prediction \u2212 target)"),
    ("label_coverage", "Label coverage"),
    ("labelled", "Labelled rows"),
)
#: a confusion matrix with more classes is left to the JSON
MAX_MATRIX = 20


def quality_section(value: object) -> str:
    """The section, or nothing when the report has no performance block."""
    perf = _map(value)
    if not perf:
        return ""
    ref, cur = _map(perf.get("reference")), _map(perf.get("current"))
    task = perf.get("task")
    names = REGRESSION if task == "regression" else CLASSIFICATION
    scores = ", ".join(_e(s) for s in _seq(perf.get("scores"))) or "none"
    intro = (
        f'<p class="small muted">{_e(task or DASH)}: target <b>{_e(perf.get("target"))}</b>, '
        f"prediction <b>{_e(perf.get('prediction'))}</b>, scores {scores}"
    )
    if perf.get("positive") is not None:
        intro += f", positive class <b>{_e(perf.get('positive'))}</b>"
    intro += (
        ". Realised metrics from the labelled rows of each file; precision, recall and F1 are "
        "on the positive class for two classes, macro averages otherwise.</p>"
    )
    parts = [intro, _metrics_table(names, ref, cur)]
    if not _map(cur.get("metrics")).get("labelled") and cur:
        parts.append('<p class="small muted">The current file has no labels: no realised '
                     "metrics for it.</p>")  # fmt: skip
    if task != "regression":
        parts.append(_bound_note(ref, cur))
        parts.append(_matrices(perf, ref, cur))
        parts.append(_reliability(ref, cur))
    return '<section id="model-quality"><h2>Model quality</h2>' + "".join(parts) + "</section>"


def _delta(a: object, b: object) -> str:
    x, y = _float(a), _float(b)
    if x is None or y is None:
        return DASH
    d = y - x
    return ("+" if d > 0 else "") + _num(d)


def _metrics_table(
    names: Sequence[tuple[str, str]], ref: Mapping[str, Any], cur: Mapping[str, Any]
) -> str:
    rm, cm = _map(ref.get("metrics")), _map(cur.get("metrics"))
    rows = "".join(
        f"<tr><th scope=row>{label} <span class=muted>({key})</span></th>"
        f"<td class=n>{_num(rm.get(key))}</td><td class=n>{_num(cm.get(key))}</td>"
        f"<td class=n>{_delta(rm.get(key), cm.get(key))}</td></tr>"
        for key, label in names
    )
    return (
        '<div class="scroll"><table class="grid"><thead><tr><th>Metric</th>'
        "<th class=n>Reference</th><th class=n>Current</th><th class=n>Change</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></div>"
    )


def _bound_note(ref: Mapping[str, Any], cur: Mapping[str, Any]) -> str:
    bounds = [(side, _float(m.get("roc_auc_bound"))) for side, m in (("reference", ref),
              ("current", cur))]  # fmt: skip
    shown = [f"{side} \u00b1{b:.2g}" for side, b in bounds if b is not None]
    if not shown:
        return ""
    return (
        '<p class="small muted">ROC AUC and PR AUC come from scores on 200 fixed bins; the '
        f"binned ROC AUC is within {', '.join(shown)} of the exact value.</p>"
    )


def _matrix(classes: Sequence[str], side: Mapping[str, Any], title: str) -> str:
    rows = [_seq(r) for r in _seq(side.get("confusion_matrix"))]
    if not any(isinstance(v, int) and v > 0 for row in rows for v in row):  # no labels
        return ""
    head = "".join(f"<th class=n>{_e(c)}</th>" for c in classes)
    body = []
    for i, (name, row) in enumerate(zip(classes, rows, strict=False)):
        total = sum(v for v in row if isinstance(v, int)) or 1
        cells = "".join(
            f'<td class="n{" diag" if j == i else ""}" title="{_e(name)} predicted as '
            f'{_e(classes[j])}: {v / total:.1%} of the class">{_num(v)}</td>'
            for j, v in enumerate(row)
            if isinstance(v, int)
        )
        body.append(f"<tr><th scope=row>{_e(name)}</th>{cells}</tr>")
    return (
        f'<div class="card"><h3>{title}</h3><div class="scroll"><table class="grid">'
        f"<thead><tr><th>true \u2193 / predicted \u2192</th>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div></div>"
    )


def _matrices(perf: Mapping[str, Any], ref: Mapping[str, Any], cur: Mapping[str, Any]) -> str:
    classes = [str(c) for c in _seq(perf.get("classes"))]
    if len(classes) > MAX_MATRIX:
        return (
            f'<p class="small muted">{len(classes)} classes: the confusion matrices are in the '
            "JSON report.</p>"
        )
    cards = _matrix(classes, ref, "Reference") + _matrix(classes, cur, "Current")
    return f'<h3>Confusion matrix</h3><div class="cards">{cards}</div>' if cards else ""


def _points(side: Mapping[str, Any]) -> list[tuple[float, float, int]]:
    rel = _map(side.get("reliability"))
    conf, acc, count = (_seq(rel.get(k)) for k in ("confidence", "accuracy", "count"))
    out = []
    for c, a, n in zip(conf, acc, count, strict=False):
        x, y = _float(c), _float(a)
        if x is not None and y is not None and isinstance(n, int) and n > 0:
            out.append((x, y, n))
    return out


def _reliability(ref: Mapping[str, Any], cur: Mapping[str, Any]) -> str:
    series = [("reference", _points(ref), "rp", "rs"), ("current", _points(cur), "cp", "cs")]
    if not any(points for _, points, _, _ in series):
        return ""
    height, bottom = 300, 30
    base = height - bottom
    side = min(W - RIGHT - LEFT, base - TOP)

    def x(v: float) -> float:
        return LEFT + v * side

    def y(v: float) -> float:
        return base - v * side

    frame = []
    for t in (0.0, 0.5, 1.0):
        frame.append(
            f'<line x1="{x(0):.1f}" x2="{x(1):.1f}" y1="{y(t):.1f}" y2="{y(t):.1f}" class="grid"/>'
            f'<text x="{LEFT - 4}" y="{y(t) + 3:.1f}" class="yl">{t:g}</text>'
            f'<text x="{x(t):.1f}" y="{base + 15}" class="xl">{t:g}</text>'
        )
    frame.append(
        f'<line x1="{x(0):.1f}" y1="{y(0):.1f}" x2="{x(1):.1f}" y2="{y(1):.1f}" class="diag"/>'
        f'<text x="{x(0.5):.1f}" y="{base + 27}" class="xl">mean confidence</text>'
        f'<text x="{x(0) + 4:.1f}" y="{TOP - 4}">accuracy</text>'
        f'<rect x="{x(1) + 12:.1f}" y="{TOP}" width="10" height="10" class="rb"/>'
        f'<text x="{x(1) + 26:.1f}" y="{TOP + 9}">Reference</text>'
        f'<line x1="{x(1) + 10:.1f}" x2="{x(1) + 24:.1f}" y1="{TOP + 25}" y2="{TOP + 25}" '
        f'class="cs"/><text x="{x(1) + 26:.1f}" y="{TOP + 29}">Current</text>'
    )
    body = "".join(frame)
    for name, points, dot, line in series:
        if not points:
            continue
        path = "M" + "L".join(f"{x(c):.1f} {y(a):.1f}" for c, a, _ in points)
        body += f'<path d="{path}" class="{line} open"/>'
        body += "".join(
            f'<circle cx="{x(c):.1f}" cy="{y(a):.1f}" r="3.5" class="{dot}"><title>{name}: '
            f"mean confidence {c:.3f}, accuracy {a:.3f}, {n:,} rows</title></circle>"
            for c, a, n in points
        )
    aria = (
        "Reliability diagram: accuracy against mean confidence in 10 equal-width confidence "
        "bins, reference and current; the diagonal is perfect calibration"
    )
    note = (
        '<p class="small muted">Confidence is the probability the model gave its predicted '
        "class; a point below the diagonal is over-confident. The expected calibration error "
        "is the row-weighted mean distance to the diagonal.</p>"
    )
    chart = f'<div class="card">{_svg(body, aria, height)}{note}</div>'
    return f'<h3>Reliability</h3><div class="cards">{chart}</div>'
