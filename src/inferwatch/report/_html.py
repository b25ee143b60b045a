"""The HTML drift report: one self-contained page rendered from ``DriftReport.to_dict()``.

``render_html`` is a pure function, dict in and string out; the CLI writes the file. The
page opens offline and is read without JavaScript: the style is inline and the charts are
SVG drawn here (one path per series and one hover target per bin or category, so 1,000
features render in a fraction of a second). A few lines of optional script add a name filter.

Everything taken from the report is escaped: feature names, categories, errors and paths
are user data. Any value may be missing or null; such a value shows as a dash. Features are
listed drifted first, then those that could not be evaluated, then the rest, by name in each
group; the plots follow the same order.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["render_html"]

DASH = "\u2014"
DOT = " \u00b7 "
MAX_LABEL = 14
PROBLEM_LABELS = {
    "missing_increase": "missing \u2191",
    "out_of_range": "out of range",
    "unseen_categories": "unseen categories",
    "non_finite": "non-finite",
    "type_violations": "type violations",
    "near_constant": "near constant",
}


def render_html(report: Mapping[str, Any], *, title: str = "inferwatch drift report") -> str:
    """Render a drift report (the ``DriftReport.to_dict()`` form) as one HTML5 document."""
    features = sorted(_features(report.get("features")), key=_order)
    parts = [
        _header(report, title),
        _banner(report, features),
        _summary(report, features),
        _verdicts(features),
        _roles(report),
        _multivariate(report.get("multivariate")),
        _model_quality(report.get("performance")),
        _quality(report, features),
        _distributions(features),
        _footer(report),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(p for p in parts if p)
        + f"\n</main>\n<script>{_JS}</script>\n</body>\n</html>\n"
    )


# --- reading the report: tolerant of nulls and wrong types -----------------------------------


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _seq(value: object) -> Sequence[Any]:
    return value if isinstance(value, list | tuple) else ()


def _float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    x = float(value)
    return x if math.isfinite(x) else None


def _features(value: object) -> list[Mapping[str, Any]]:
    return [f for f in _seq(value) if isinstance(f, Mapping)]


def _name(feature: Mapping[str, Any]) -> str:
    name = feature.get("name")
    return DASH if name is None else str(name)


def _status(feature: Mapping[str, Any]) -> str:
    if feature.get("error") is not None:
        return "error"
    if feature.get("drift_detected") is True:
        return "drift"
    return "ok" if feature.get("test") is not None else "na"


def _order(feature: Mapping[str, Any]) -> tuple[int, str]:
    rank = {"drift": 0, "error": 1}.get(_status(feature), 2)
    return rank, _name(feature)


# --- formatting -----------------------------------------------------------------------------


def _num(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    x = _float(value)
    if x is None:
        return DASH if value is None else _e(value)
    ax = abs(x)
    if ax == 0:
        return "0"
    if ax < 1e-3 or ax >= 1e9:
        return f"{x:.3e}"
    return f"{x:,.0f}" if ax >= 1e4 else f"{x:.4g}"


def _pvalue(value: object) -> str:
    p = _float(value)
    if p is None:
        return DASH
    if p == 0:
        return "&lt; 1e-300"
    return f"{p:.2e}" if p < 1e-3 else f"{p:.4f}"


def _pct(value: object) -> str:
    x = _float(value)
    if x is None:
        return DASH
    if 0 < abs(x) < 0.001:
        return "&lt;0.1%" if x > 0 else "&gt;\u22120.1%"
    return f"{x * 100:.1f}%"


def _short(x: float) -> str:
    """A compact axis label: 3 significant digits, k/M/G for large values."""
    ax = abs(x)
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, "")):
        if ax >= scale:
            v = x / scale
            return f"{v:.0f}{suffix}" if abs(v) >= 100 else f"{v:.3g}{suffix}"
    return f"{x:.1e}" if ax and ax < 1e-3 else f"{x:.3g}"


def _duration(value: object) -> str:
    s = _float(value)
    if s is None:
        return DASH
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if abs(s) >= size:
            return f"{s / size:.1f} {unit}"
    return f"{s:.0f} s"


def _codes(codes: object) -> str:
    items = [str(c) for c in _seq(codes)]
    if not items:
        return '<span class="muted">none</span>'
    return " ".join(
        f'<span class="tag" title="{_e(c)}">{_e(PROBLEM_LABELS.get(c, c.replace("_", " ")))}</span>'
        for c in items
    )


def _badge(status: str, error: object = None) -> str:
    if status == "drift":
        return '<span class="badge drift">\u25b2 drift</span>'
    if status == "ok":
        return '<span class="badge ok">\u2713 no drift</span>'
    if status == "error":
        return f'<span class="badge err" title="{_e(error)}">! not evaluated</span>'
    return '<span class="badge na">\u2013 n/a</span>'


def _attrs(feature: Mapping[str, Any]) -> str:
    drift = "1" if _status(feature) == "drift" else "0"
    return f'data-feature="{_e(_name(feature).lower())}" data-drift="{drift}"'


# --- page sections --------------------------------------------------------------------------


def _header(report: Mapping[str, Any], title: str) -> str:
    meta = _map(report.get("meta"))
    rows = [
        ("Reference", meta.get("reference")),
        ("Current", meta.get("current")),
        ("Generated", meta.get("generated_at")),
        ("inferwatch", meta.get("inferwatch_version")),
    ]
    items = "".join(f"<div><dt>{k}</dt><dd>{_e(v)}</dd></div>" for k, v in rows if v is not None)
    dur = _float(meta.get("duration_seconds"))
    if dur is not None:
        items += f"<div><dt>Computed in</dt><dd>{dur:.2f} s</dd></div>"
    links = [
        ("features", "Features", True),
        ("prediction-drift", "Prediction", isinstance(report.get("prediction_drift"), Mapping)),
        ("target-drift", "Target", isinstance(report.get("target_drift"), Mapping)),
        ("multivariate", "Multivariate", bool(_map(report.get("multivariate")))),
        ("model-quality", "Model quality", bool(_map(report.get("performance")))),
        ("quality", "Data quality", True),
        ("distributions", "Distributions", True),
    ]
    nav = "".join(f'<a href="#{a}">{t}</a>' for a, t, shown in links if shown)
    meta_html = f'<dl class="meta">{items}</dl>' if items else ""
    return f"<header><h1>{_e(title)}</h1>{meta_html}<nav>{nav}</nav></header>"


def _banner(report: Mapping[str, Any], features: Sequence[Mapping[str, Any]]) -> str:
    statuses = [_status(f) for f in features]
    n_eval = sum(s in ("drift", "ok") for s in statuses)
    n_drift = statuses.count("drift")
    n_err = statuses.count("error")
    share, threshold = report.get("drift_share"), report.get("drift_share_threshold")
    if n_eval == 0:
        cls, head = "na", "\u2013 No feature could be evaluated"
    elif report.get("dataset_drift") is True:
        cls, head = "drift", "\u25b2 Dataset drift detected"
    else:
        cls, head = "ok", "\u2713 No dataset drift"
    text = (
        f"{n_drift:,} of {n_eval:,} evaluated features drifted "
        f"(share {_pct(share)}, threshold {_pct(threshold)})"
    )
    if n_err:
        text += f"; {n_err:,} could not be evaluated"
    quality = _map(report.get("quality"))
    failing = sum(bool(_seq(_map(f.get("quality")).get("problems"))) for f in features)
    if quality.get("failed") is True or failing or _seq(quality.get("problems")):
        q = f"\u26a0 Data quality problems: {failing:,} feature(s)"
        if _seq(quality.get("problems")):
            q += f", dataset: {', '.join(_e(p) for p in _seq(quality.get('problems')))}"
        qhtml = f'<p class="qbad">{q}</p>'
    else:
        qhtml = '<p class="qok">\u2713 No data-quality problems</p>'
    return (
        f'<section class="banner {cls}" role="status"><p class="verdict">{head}</p>'
        f"<p>{text}</p>{qhtml}</section>"
    )


def _summary(report: Mapping[str, Any], features: Sequence[Mapping[str, Any]]) -> str:
    correction = report.get("correction")
    n_features = report.get("n_features")
    cards = [
        ("Reference rows", _num(report.get("n_reference"))),
        ("Current rows", _num(report.get("n_current"))),
        ("Features", _num(n_features if isinstance(n_features, int) else len(features))),
        ("Drifted", _num(sum(_status(f) == "drift" for f in features))),
        ("Drift share", _pct(report.get("drift_share"))),
        ("p-value correction", "none" if correction is None else _e(correction)),
    ]
    body = "".join(f'<div class="stat"><span>{k}</span><b>{v}</b></div>' for k, v in cards)
    head = '<section id="summary"><h2>Dataset summary</h2>'
    return f'{head}<div class="stats">{body}</div></section>'


_VERDICT_HEAD = (
    "<tr><th>Feature</th><th>Kind</th><th>Test</th><th class=n>Statistic</th>"
    "<th class=n>p-value</th><th class=n>Threshold</th><th class=n>Effect size</th>"
    "<th>Verdict</th><th>Quality</th></tr>"
)


def _verdict_row(f: Mapping[str, Any], anchor: str | None) -> str:
    status = _status(f)
    name = _e(_name(f))
    link = f'<a href="#{anchor}">{name}</a>' if anchor else name
    kind = _e(f.get("kind") or DASH)
    if f.get("role") not in (None, "feature"):
        kind += f' <span class="muted">({_e(f.get("role"))})</span>'
    if status == "error":
        cells = f'<td colspan="5" class="errmsg">{_e(f.get("error"))}</td>'
    else:
        details = _map(f.get("details"))
        raw = details.get("p_value_raw")
        ptitle = (
            f' title="raw p-value {_pvalue(raw)} ({_e(details.get("correction"))})"'
            if raw is not None
            else ""
        )
        cells = (
            f"<td>{_e(f.get('test') or DASH)}</td><td class=n>{_num(f.get('statistic'))}</td>"
            f"<td class=n{ptitle}>{_pvalue(f.get('p_value'))}</td>"
            f"<td class=n>{_num(f.get('threshold'))}</td>"
            f"<td class=n>{_num(f.get('effect_size'))}</td>"
        )
    quality = _map(f.get("quality"))
    problems = _codes(quality.get("problems")) if quality else DASH
    return (
        f'<tr class="{status}" {_attrs(f)}><th scope="row">{link}</th><td>{kind}</td>{cells}'
        f"<td>{_badge(status, f.get('error'))}</td><td>{problems}</td></tr>"
    )


def _verdicts(features: Sequence[Mapping[str, Any]]) -> str:
    if not features:
        rows = '<tr><td colspan="9" class="muted">The report has no features.</td></tr>'
    else:
        rows = "\n".join(_verdict_row(f, f"f{i}") for i, f in enumerate(features))
    return (
        '<section id="features"><h2>Per-feature drift</h2>'
        '<p class="muted">Drifted features first, then those not evaluated, then the rest; '
        "by name within each group.</p>"
        '<div class="filter" id="iw-filter" hidden><input type="search" '
        'placeholder="Filter features by name" aria-label="Filter features by name">'
        '<label><input type="checkbox"> drifted only</label></div>'
        f'<div class="scroll"><table class="grid"><thead>{_VERDICT_HEAD}</thead>'
        f"<tbody>{rows}</tbody></table></div></section>"
    )


def _roles(report: Mapping[str, Any]) -> str:
    out = []
    for key, label, anchor in (
        ("prediction_drift", "Prediction drift", "prediction"),
        ("target_drift", "Target drift", "target"),
    ):
        f = report.get(key)
        if not isinstance(f, Mapping):
            continue
        out.append(
            f'<section id="{anchor}-drift"><h2>{label}</h2><div class="scroll">'
            f'<table class="grid"><thead>{_VERDICT_HEAD}</thead><tbody>{_verdict_row(f, None)}'
            f'</tbody></table></div><div class="cards">{_card(f, anchor)}</div></section>'
        )
    return "\n".join(out)


def _multivariate(value: object) -> str:
    methods = _map(value)
    if not methods:
        return ""
    rows = []
    for method, raw in methods.items():
        m = _map(raw)
        status = "drift" if m.get("drift_detected") is True else "ok"
        rows.append(
            f"<tr><th scope=row>{_e(m.get('method') or method)}</th>"
            f"<td class=n>{_num(m.get('statistic'))}</td><td class=n>{_num(m.get('threshold'))}"
            f"</td><td>{_badge(status)}</td><td>{_kv(m.get('details'))}</td></tr>"
        )
    return (
        '<section id="multivariate"><h2>Multivariate drift</h2><div class="scroll">'
        '<table class="grid"><thead><tr><th>Method</th><th class=n>Statistic</th>'
        "<th class=n>Threshold</th><th>Verdict</th><th>Details</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def _model_quality(value: object) -> str:
    """The model-quality section (``_quality_section``), when the report has one."""
    if not _map(value):
        return ""
    from inferwatch.report._quality_section import quality_section

    return quality_section(value)


def _value(value: object, depth: int = 0) -> str:
    """A short rendering of a details value: scalars formatted, containers abbreviated."""
    if isinstance(value, Mapping):
        if depth > 0 or len(value) > 12:
            return f'<span class="muted">{len(value)} entries</span>'
        return ", ".join(f"{_e(k)}: {_value(v, depth + 1)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        if depth > 0 or len(value) > 12:
            return f'<span class="muted">{len(value)} values</span>'
        return ", ".join(_value(v, depth + 1) for v in value)
    if isinstance(value, str):
        return _e(value)
    return _num(value)


def _kv(value: object) -> str:
    items = _map(value)
    if not items:
        return DASH
    return "<br>".join(f'<span class="muted">{_e(k)}</span> {_value(v)}' for k, v in items.items())


def _dataset_quality(q: Mapping[str, Any]) -> str:
    def names(value: object) -> str:
        items = [_e(x) for x in _seq(value)]
        return ", ".join(items) if items else '<span class="muted">none</span>'

    dup = f"{_num(q.get('duplicate_rows'))} ({_pct(q.get('duplicate_share'))})"
    failed = q.get("failed")
    rows = [
        ("Rows in current data", _num(q.get("n_rows"))),
        ("Duplicate rows", dup),
        ("Schema columns missing from current", names(q.get("missing_columns"))),
        ("Columns not in the schema", names(q.get("extra_columns"))),
        ("Staleness of newest timestamp", _duration(q.get("staleness_seconds"))),
        ("Dataset problems", _codes(q.get("problems"))),
        ("Quality check", DASH if failed is None else ("failed" if failed else "passed")),
    ]
    body = "".join(f"<tr><th scope=row>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="kv">{body}</table>'


def _unseen(q: Mapping[str, Any]) -> str:
    unseen = _map(q.get("unseen_categories"))
    if not unseen:
        return DASH
    shown = ", ".join(f"{_e(k)} ({_num(v)})" for k, v in list(unseen.items())[:3])
    more = f" +{len(unseen) - 3:,} more" if len(unseen) > 3 else ""
    return f"{_pct(q.get('unseen_share'))}: {shown}{more}"


def _limit(q: Mapping[str, Any], share: str) -> str:
    """`` ≤ limit``: the largest share of ``share`` that sampling explains (its problem
    threshold, learned from the reference), or nothing when the result has none."""
    limit = _float(_map(q.get("limits")).get(share))
    return "" if limit is None else f' <span class="muted">\u2264 {_pct(limit)}</span>'


def _quality_row(f: Mapping[str, Any], anchor: str) -> str:
    q = _map(f.get("quality"))
    if not q:
        cells = '<td colspan="6" class="muted">no quality data</td>'
    else:
        change = _float(q.get("missing_share_change"))
        delta = f' <span class="muted">({"+" if (change or 0) >= 0 else ""}{_pct(change)})</span>'
        flags = [w for w in ("constant", "near_constant") if q.get(w) is True][:1]
        unique = _num(q.get("n_unique")) + (
            f' <span class="tag">{flags[0].replace("_", " ")}</span>' if flags else ""
        )
        cells = (
            f"<td class=n>{_pct(q.get('missing_share'))}{delta if change is not None else ''}"
            f"{_limit(q, 'missing_share')}</td>"
            f"<td class=n>{_pct(q.get('out_of_range_share'))}{_limit(q, 'out_of_range_share')}</td>"
            f"<td class=n>{_pct(q.get('outlier_share'))}{_limit(q, 'outlier_share')}</td>"
            f"<td>{_unseen(q)}{_limit(q, 'unseen_share')}</td>"
            f"<td class=n>{unique}</td><td>{_codes(q.get('problems'))}</td>"
        )
    return f'<tr {_attrs(f)}><th scope=row><a href="#{anchor}">{_e(_name(f))}</a></th>{cells}</tr>'


def _quality(report: Mapping[str, Any], features: Sequence[Mapping[str, Any]]) -> str:
    rows = "\n".join(_quality_row(f, f"f{i}") for i, f in enumerate(features))
    table = (
        '<div class="scroll"><table class="grid"><thead><tr><th>Feature</th>'
        "<th class=n>Missing (change)</th><th class=n>Out of range</th>"
        "<th class=n>Outliers</th><th>Unseen categories</th><th class=n>Unique</th>"
        f"<th>Problems</th></tr></thead><tbody>{rows}</tbody></table></div>"
        if features
        else ""
    )
    return (
        '<section id="quality"><h2>Data quality</h2>'
        f"{_dataset_quality(_map(report.get('quality')))}"
        "<h3>Per feature (current data against the reference)</h3>"
        '<p class="small muted">Each share is followed by its limit (\u2264): the largest share '
        "that sampling from the reference explains; above it the share is a problem.</p>"
        f"{table}</section>"
    )


# --- per-feature cards and their charts ------------------------------------------------------


def _stats_line(f: Mapping[str, Any]) -> str:
    q = _map(f.get("quality"))
    summary = _map(q.get("summary"))
    keys = ("mean", "std", "min", "median", "max", "top", "unseen_total")
    parts = [f"{k} <b>{_value(summary[k])}</b>" for k in keys if summary.get(k) is not None]
    if q.get("n") is not None:
        parts.insert(0, f"n <b>{_num(q.get('n'))}</b>")
    return f'<p class="small">Current: {DOT.join(parts)}</p>' if parts else ""


def _card(f: Mapping[str, Any], anchor: str) -> str:
    status = _status(f)
    name = _name(f)
    if status == "error":
        line = f'<p class="errmsg">{_e(f.get("error"))}</p>'
    else:
        p = f.get("p_value")
        pv = "" if p is None else f"{DOT}p-value <b>{_pvalue(p)}</b>"
        line = (
            f'<p class="small">{_e(f.get("test") or DASH)}{DOT}statistic '
            f"<b>{_num(f.get('statistic'))}</b>{pv}"
            f"{DOT}threshold <b>{_num(f.get('threshold'))}</b></p>"
        )
    details = _map(f.get("details"))
    more = (
        f'<details><summary>Test details</summary><p class="small">{_kv(details)}</p></details>'
        if details
        else ""
    )
    return (
        f'<article class="card {status}" id="{anchor}" {_attrs(f)}>'
        f'<div class="card-head"><h3>{_e(name)}</h3>{_badge(status, f.get("error"))}</div>'
        f"{line}{_chart(f.get('distribution'), name)}{_stats_line(f)}{more}</article>"
    )


def _distributions(features: Sequence[Mapping[str, Any]]) -> str:
    cards = "\n".join(_card(f, f"f{i}") for i, f in enumerate(features))
    return (
        '<section id="distributions"><h2>Distributions: reference against current</h2>'
        f'<div class="cards">{cards}</div></section>'
    )


def _footer(report: Mapping[str, Any]) -> str:
    version = _map(report.get("meta")).get("inferwatch_version")
    by = f"inferwatch {_e(version)}" if version is not None else "inferwatch"
    return f"<footer>Generated by {by}. Shares are of all rows, missing values included.</footer>"


W, H, LEFT, RIGHT, TOP = 380, 200, 44, 10, 26


def _shares(values: object, n: int) -> list[float]:
    out = [_float(v) or 0.0 for v in _seq(values)[:n]]
    return [max(0.0, v) for v in out] + [0.0] * (n - len(out))


def _ceiling(x: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten that is at least ``x``."""
    if x <= 0:
        return 1.0
    base = 10.0 ** math.floor(math.log10(x))
    return next(m * base for m in (1, 2, 2.5, 5, 10) if m * base >= x * (1 - 1e-9))


def _frame(ymax: float, base: float, current_as_line: bool) -> str:
    """The x axis, gridlines at 0, half and top with % labels, and the legend."""
    x1 = W - RIGHT
    out = []
    for frac in (0.0, 0.5, 1.0):
        y = base - frac * (base - TOP)
        out.append(
            f'<line x1="{LEFT}" x2="{x1}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{LEFT - 4}" y="{y + 3:.1f}" class="yl">{frac * ymax * 100:.3g}%</text>'
        )
    swatch = (
        f'<line x1="{LEFT + 88}" x2="{LEFT + 102}" y1="11" y2="11" class="cs"/>'
        if current_as_line
        else f'<rect x="{LEFT + 90}" y="6" width="10" height="10" class="cb"/>'
    )
    out.append(
        f'<rect x="{LEFT}" y="6" width="10" height="10" class="rb"/>'
        f'<text x="{LEFT + 14}" y="15">Reference</text>'
        f'{swatch}<text x="{LEFT + 106}" y="15">Current</text>'
        f'<text x="{x1}" y="15" class="yl">share of rows</text>'
        f'<line x1="{LEFT}" x2="{x1}" y1="{base}" y2="{base}" class="axis"/>'
    )
    return "".join(out)


def _svg(body: str, aria: str, height: int) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {W} {height}" role="img" aria-label="{_e(aria)}" '
        f'preserveAspectRatio="xMidYMid meet"><title>{_e(aria)}</title>{body}</svg>'
    )


def _chart(dist: object, name: str) -> str:
    d = _map(dist)
    chart = ""
    if d.get("type") == "histogram":
        chart = _histogram(d, name)
    elif d.get("type") == "bars":
        chart = _bars(d, name)
    return chart or '<p class="muted nochart">No distribution to plot.</p>'


def _histogram(d: Mapping[str, Any], name: str) -> str:
    raw_edges = [_float(x) for x in _seq(d.get("edges"))]
    edges = [x for x in raw_edges if x is not None]
    k = len(edges) - 1
    if k < 1 or len(edges) != len(raw_edges):
        return ""
    ref, cur = _shares(d.get("reference"), k), _shares(d.get("current"), k)
    ymax = _ceiling(max(ref + cur))
    bottom = 30
    base, lo, hi = H - bottom, edges[0], edges[-1]
    span = (hi - lo) or 1.0

    def x(v: float) -> float:
        return LEFT + (v - lo) / span * (W - RIGHT - LEFT)

    def y(s: float) -> float:
        return base - s / ymax * (base - TOP)

    xs = [x(e) for e in edges]
    ref_path = [f"M{xs[0]:.1f} {base}"]
    cur_path = [f"M{xs[0]:.1f} {y(cur[0]):.1f}"]
    hover = []
    for i in range(k):
        ref_path.append(f"V{y(ref[i]):.1f}H{xs[i + 1]:.1f}")
        cur_path.append(f"V{y(cur[i]):.1f}H{xs[i + 1]:.1f}")
        hover.append(
            f'<rect x="{xs[i]:.1f}" y="{TOP}" width="{xs[i + 1] - xs[i]:.1f}" '
            f'height="{base - TOP}"><title>[{_short(edges[i])}, {_short(edges[i + 1])}): '
            f"reference {_pct(ref[i])}, current {_pct(cur[i])}</title></rect>"
        )
    ref_path.append(f"V{base}Z")
    ticks = sorted({round(j * k / 4) for j in range(5)})
    labels = "".join(
        f'<line x1="{xs[t]:.1f}" x2="{xs[t]:.1f}" y1="{base}" y2="{base + 4}" class="axis"/>'
        f'<text x="{xs[t]:.1f}" y="{base + 15}" class="xl"{_anchor(t, k)}>{_short(edges[t])}</text>'
        for t in ticks
    )
    body = (
        _frame(ymax, base, current_as_line=True)
        + f'<path d="{"".join(ref_path)}" class="rs"/><path d="{"".join(cur_path)}" class="cs"/>'
        f"{labels}"
        f'<g class="hover">{"".join(hover)}</g>'
    )
    aria = (
        f"Histogram of {name}: share of rows in {k} bins from {_short(lo)} to {_short(hi)}, "
        "reference as filled area, current as line"
    )
    return _svg(body, aria, H)


def _anchor(tick: int, last: int) -> str:
    """Keep the first and last axis labels inside the chart."""
    if tick == 0:
        return ' style="text-anchor:start"'
    return ' style="text-anchor:end"' if tick == last else ""


def _label(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "\u2026"


def _bars(d: Mapping[str, Any], name: str) -> str:
    labels = [str(c) for c in _seq(d.get("categories"))]
    ref, cur = _shares(d.get("reference"), len(labels)), _shares(d.get("current"), len(labels))
    keep = [i for i in range(len(labels)) if ref[i] > 0 or cur[i] > 0]
    if not keep:
        return ""
    ymax = _ceiling(max(ref + cur))
    group = (W - RIGHT - LEFT) / len(keep)
    bar = min(group * 0.38, 28.0)
    angle = 35 if group >= 28 else 65 if group >= 12 else 90  # steeper when labels crowd
    base = H - 30
    height = round(base + 14 + 6 * MAX_LABEL * math.sin(math.radians(angle)))

    def y(s: float) -> float:
        return base - s / ymax * (base - TOP)

    groups = []
    for j, i in enumerate(keep):
        gx = LEFT + j * group + group / 2
        ry, cy = y(ref[i]), y(cur[i])
        full = _e(labels[i])
        groups.append(
            f"<g><title>{full}: reference {_pct(ref[i])}, current {_pct(cur[i])}</title>"
            f'<rect x="{gx - bar:.1f}" y="{ry:.1f}" width="{bar:.1f}" height="{base - ry:.1f}" '
            f'class="rb"/><rect x="{gx:.1f}" y="{cy:.1f}" width="{bar:.1f}" '
            f'height="{base - cy:.1f}" class="cb"/><text x="{gx:.1f}" y="{base + 8}" dy=".35em" '
            f'class="cl" transform="rotate(-{angle} {gx:.1f} {base + 8})">{_e(_label(labels[i]))}'
            "</text></g>"
        )
    body = _frame(ymax, base, current_as_line=False) + "".join(groups)
    aria = (
        f"Bar chart of {name}: share of rows in {len(keep)} categories, "
        "reference (left bar) against current (right bar)"
    )
    return _svg(body, aria, height)


# One palette with the dashboard (server/static/ui/theme.css): the same page and status
# colours, reference #4c78a8 filled beside current #e45756; change a colour in both.
_CSS = """
:root{--fg:#1f2933;--muted:#616e7c;--line:#d9e2ec;--bg:#f5f7fa;--card:#fff;
--red:#b42318;--redbg:#fef3f2;--green:#067647;--greenbg:#ecfdf3;--amber:#93370d;--amberbg:#fffaeb}
*{box-sizing:border-box}
[hidden]{display:none!important}
body{margin:0;background:var(--bg);color:var(--fg);
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1280px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 6px} h2{font-size:18px;margin:0 0 12px}
h3{font-size:14px;margin:16px 0 8px}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:16px 20px;
margin:0 0 20px}
header{margin:0 0 16px}
a{color:#1d4ed8;text-decoration:none} a:hover{text-decoration:underline}
nav a{margin-right:16px;font-weight:600}
.meta{display:flex;flex-wrap:wrap;gap:4px 24px;margin:0 0 8px;color:var(--muted)}
.meta div{display:flex;gap:6px} .meta dt{font-weight:600}
.meta dd{margin:0;word-break:break-all}
.muted{color:var(--muted)} .small{font-size:12.5px;margin:4px 0}
.banner p{margin:2px 0} .banner .verdict{font-size:20px;font-weight:700}
.banner.drift{background:var(--redbg);border-color:#fda29b}
.banner.drift .verdict{color:var(--red)}
.banner.ok{background:var(--greenbg);border-color:#abefc6}
.banner.ok .verdict{color:var(--green)}
.qbad{color:var(--amber);font-weight:600} .qok{color:var(--green)}
.stats{display:grid;grid-template-columns:repeat(auto-fill,minmax(160px,1fr));gap:12px}
.stat{border:1px solid var(--line);border-radius:6px;padding:8px 12px}
.stat span{display:block;color:var(--muted);font-size:12px} .stat b{font-size:18px}
.scroll{overflow-x:auto;max-height:80vh;overflow-y:auto}
table{border-collapse:collapse;width:100%}
.grid th,.grid td{padding:5px 10px;border-bottom:1px solid var(--line);text-align:left;
vertical-align:top}
.grid thead th{position:sticky;top:0;background:#eef2f6;font-size:12px;text-transform:uppercase;
letter-spacing:.03em;color:var(--muted);white-space:nowrap}
.grid tbody th{font-weight:600;word-break:break-word;max-width:280px}
.grid tbody tr:nth-child(even){background:#fafbfc}
.grid tr.drift{background:var(--redbg)!important}
.n{text-align:right!important;font-variant-numeric:tabular-nums;white-space:nowrap}
.kv{max-width:760px} .kv th,.kv td{padding:4px 10px;border-bottom:1px solid var(--line);
text-align:left;vertical-align:top} .kv th{font-weight:600;width:300px}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:700;
white-space:nowrap;border:1px solid}
.badge.drift{color:var(--red);background:var(--redbg);border-color:#fda29b}
.badge.ok{color:var(--green);background:var(--greenbg);border-color:#abefc6}
.badge.err{color:var(--amber);background:var(--amberbg);border-color:#fedf89}
.badge.na{color:var(--muted);background:#f2f4f7;border-color:var(--line)}
.tag{display:inline-block;padding:0 6px;margin:1px 2px 1px 0;border-radius:4px;font-size:12px;
background:var(--amberbg);color:var(--amber);border:1px solid #fedf89;white-space:nowrap}
.errmsg{color:var(--amber);font-style:italic}
.filter{display:flex;gap:16px;align-items:center;margin:0 0 10px}
.filter input[type=search]{padding:6px 10px;border:1px solid var(--line);border-radius:6px;
min-width:280px;font:inherit}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:16px}
.card{border:1px solid var(--line);border-radius:8px;padding:10px 14px;min-width:0}
.card.drift{border-color:#fda29b;border-width:2px}
.card-head{display:flex;justify-content:space-between;align-items:baseline;gap:8px}
.card-head h3{margin:0;word-break:break-word}
.chart{width:100%;height:auto;display:block;margin:6px 0}
.chart text{font-size:10px;fill:var(--fg)} .chart .yl{text-anchor:end;fill:var(--muted)}
.chart .xl{text-anchor:middle;fill:var(--muted)} .chart .cl{text-anchor:end}
.chart .grid{stroke:#e4e7eb} .chart .axis{stroke:#9aa5b1}
.chart .rb{fill:#4c78a8;fill-opacity:.4;stroke:#4c78a8}
.chart .cb{fill:#e45756;fill-opacity:.9}
.chart .rs{fill:#4c78a8;fill-opacity:.35;stroke:#4c78a8;stroke-width:1}
.chart .cs{fill:none;stroke:#e45756;stroke-width:2.2}
.chart .open{fill:none} .chart .diag{stroke:#9aa5b1;stroke-dasharray:4 3}
.chart .rp{fill:#4c78a8} .chart .cp{fill:#e45756}
.grid td.diag{font-weight:700;background:var(--greenbg)}
.chart .hover rect{fill:transparent} .chart .hover rect:hover{fill:rgba(0,0,0,.06)}
.chart g:hover .rb,.chart g:hover .cb{opacity:.8}
.nochart{padding:24px 0;text-align:center}
details summary{cursor:pointer;color:var(--muted);font-size:12.5px}
footer{color:var(--muted);font-size:12px;text-align:center;padding:8px}
@media print{.scroll{max-height:none;overflow:visible} .filter{display:none}
section,.card{break-inside:avoid}}
"""

_JS = """
(function(){var b=document.getElementById('iw-filter');if(!b)return;b.hidden=false;
var q=b.querySelector('input[type=search]'),d=b.querySelector('input[type=checkbox]'),
els=document.querySelectorAll('[data-feature]');function f(){var s=q.value.toLowerCase(),
o=d.checked;for(var i=0;i<els.length;i++){var e=els[i];e.hidden=(s&&e.getAttribute(
'data-feature').indexOf(s)<0)||(o&&e.getAttribute('data-drift')!=='1');}}
q.addEventListener('input',f);d.addEventListener('change',f);})();
"""
