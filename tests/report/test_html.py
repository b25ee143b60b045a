"""The HTML report: a well-formed, offline, escaped page from a real engine run, at speed."""

from __future__ import annotations

import copy
import html
import re
import time
from html.parser import HTMLParser
from typing import Any

import numpy as np
import pytest

from inferwatch.evaluate import CategoricalColumn, NumericColumn, evaluate_batch
from inferwatch.report._html import render_html
from inferwatch.schema import Feature, Schema, Target
from inferwatch.stats import counts_from_values

EVIL_NAME = "<img src=x onerror=alert(1)>"
EVIL_CATEGORY = "<script>alert(1)</script>"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
EXTERNAL = re.compile(
    r"""(?:\b(?:src|href)\s*=\s*["']?|url\(\s*["']?)\s*(?:[a-z][a-z0-9+.-]*:)?//""", re.I
)


class Page(HTMLParser):
    """Collects start tags and text, and records every end tag that does not close its start."""

    def __init__(self, document: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.errors: list[str] = []
        self._open: list[str] = []
        self.feed(document)
        self.close()
        self.errors += [f"unclosed <{t}>" for t in self._open]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self._open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1] == tag:
            self._open.pop()
        else:
            self.errors.append(f"</{tag}> closes {self._open[-1:] or 'nothing'}")

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def count(self, tag: str, **attrs: str) -> int:
        return sum(t == tag and all(a.get(k) == v for k, v in attrs.items()) for t, a in self.tags)

    def statuses(self) -> dict[str, str]:
        """Feature name (as the filter attribute holds it) to its verdict-table row class."""
        return {
            str(a["data-feature"]): str(a["class"])
            for t, a in self.tags
            if t == "tr" and "data-feature" in a and "class" in a
        }


def parse(document: str) -> Page:
    page = Page(document)
    assert page.errors == []
    return page


def engine_report(rng: np.random.Generator, n: int = 2000) -> dict[str, Any]:
    """A real evaluation: ``age`` shifted by one standard deviation, the rest unchanged."""
    schema = Schema(
        (
            Feature("age", "numeric"),
            Feature("income", "numeric"),
            Feature("score", "numeric"),
            Feature(EVIL_NAME, "numeric"),
            Feature("city", "categorical"),
            Feature("gone", "numeric"),
        ),
        prediction=Target("pred", "classification"),
    )
    cities = ["paris", "lyon", "nice", EVIL_CATEGORY]

    def side(shift: float) -> dict[str, NumericColumn | CategoricalColumn]:
        return {
            "age": NumericColumn(rng.normal(40 + shift, 10, n)),
            "income": NumericColumn(rng.lognormal(10, 1, n)),
            "score": NumericColumn(rng.uniform(0, 1, n)),
            EVIL_NAME: NumericColumn(rng.normal(0, 1, n)),
            "city": CategoricalColumn(counts_from_values(rng.choice(cities, n))),
            "pred": CategoricalColumn(counts_from_values(rng.choice(["no", "yes"], n))),
        }

    reference, current = side(0.0), side(10.0)
    reference["gone"] = NumericColumn(rng.normal(0, 1, n))  # absent from the current data
    report = evaluate_batch(schema, reference, current, n_reference=n, n_current=n)
    return report.to_dict()


@pytest.fixture
def report(rng: np.random.Generator) -> dict[str, Any]:
    return engine_report(rng)


def test_the_engine_report_renders_a_well_formed_document(report: dict[str, Any]) -> None:
    document = render_html(report)
    assert document.startswith("<!DOCTYPE html>")
    page = parse(document)
    for tag in ("html", "head", "body", "style", "main"):
        assert page.count(tag) == 1, tag
    assert "<title>inferwatch drift report</title>" in document[: document.index("</head>")]


def test_every_feature_is_named_with_its_verdict(report: dict[str, Any]) -> None:
    page = parse(render_html(report))
    text = "".join(page.text)
    for feature in report["features"]:
        assert feature["name"] in text
    assert page.statuses() == {
        "age": "drift",
        "income": "ok",
        "score": "ok",
        EVIL_NAME: "ok",
        "city": "ok",
        "gone": "error",
        "pred": "ok",
    }
    assert "1 of 5 evaluated features drifted" in text
    assert "1 could not be evaluated" in text
    assert "column 'gone' is missing from the current data" in text
    assert "Dataset drift detected" not in text  # 1 of 5 is below the 50% threshold
    assert "No dataset drift" in text


def test_drifted_first_then_unevaluated_then_by_name(report: dict[str, Any]) -> None:
    page = parse(render_html(report))
    rows = [a["data-feature"] for t, a in page.tags if t == "tr" and "data-feature" in a]
    table = rows[: len(report["features"])]
    assert table == ["age", "gone", EVIL_NAME, "city", "income", "score"]


def test_one_accessible_chart_per_plotted_column(report: dict[str, Any]) -> None:
    page = parse(render_html(report))
    plotted = [f for f in report["features"] if f["distribution"]]
    assert len(plotted) == 5  # "gone" has none
    charts = [a for t, a in page.tags if t == "svg"]
    assert len(charts) == len(plotted) + 1  # and the prediction's
    assert all(a.get("role") == "img" and a.get("aria-label") for a in charts)
    labels = [str(a["aria-label"]) for a in charts]
    assert sum(label.startswith("Histogram of ") for label in labels) == 4
    assert sum(label.startswith("Bar chart of ") for label in labels) == 2
    assert "No distribution to plot." in "".join(page.text)


def test_histogram_has_both_series_a_legend_and_edge_labels(report: dict[str, Any]) -> None:
    age = next(f for f in report["features"] if f["name"] == "age")
    document = render_html({"features": [age]})
    svg = document[document.index("<svg") : document.index("</svg>")]
    assert svg.count("<path") == 2
    assert "Reference</text>" in svg and "Current</text>" in svg
    assert svg.count("<title>[") == len(age["distribution"]["reference"])  # a hover per bin
    first = float(age["distribution"]["edges"][0])
    assert f">{first:.3g}</text>" in svg


def test_categories_are_grouped_bars_with_long_labels_truncated() -> None:
    label = "a very long category label that will not fit"
    feature = {
        "name": "colour",
        "distribution": {
            "type": "bars",
            "categories": ["red", label, "(missing)"],
            "reference": [0.5, 0.5, 0.0],
            "current": [0.25, 0.75, 0.0],
        },
    }
    document = render_html({"features": [feature]})
    svg = document[document.index("<svg") : document.index("</svg>")]
    assert svg.count('class="rb"') == 3 and svg.count('class="cb"') == 3  # 2 bars + legend
    assert f"<title>{label}: reference 50.0%, current 75.0%</title>" in svg
    assert ">a very long c\u2026</text>" in svg
    assert "(missing)" not in svg  # empty on both sides


def test_nothing_is_loaded_from_outside(report: dict[str, Any]) -> None:
    report["meta"] = {"reference": "ref.csv", "current": "cur.csv", "inferwatch_version": "0.1"}
    document = render_html(report)
    assert not EXTERNAL.findall(document)
    assert "http://" not in document and "https://" not in document
    page = parse(document)
    assert page.count("link") == page.count("img") == page.count("iframe") == 0
    assert [a for t, a in page.tags if t == "script"] == [{}]  # one inline script, no src


def test_user_data_is_escaped(report: dict[str, Any]) -> None:
    document = render_html(report, title="</title><script>alert(2)</script>")
    assert EVIL_CATEGORY not in document
    assert EVIL_NAME not in document
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in document
    assert "&lt;img src=x onerror=alert(1)&gt;" in document
    page = parse(document)
    assert page.count("img") == 0
    assert page.count("script") == 1
    assert "<title>&lt;/title&gt;&lt;script&gt;alert(2)&lt;/script&gt;</title>" in document
    text = "".join(page.text)
    assert EVIL_CATEGORY in text and EVIL_NAME in text  # shown, as inert text


def test_numbers_are_formatted_for_reading() -> None:
    feature = {
        "name": "x",
        "kind": "numeric",
        "test": "ks",
        "statistic": 0.123456,
        "p_value": 1.234e-12,
        "threshold": 0.05,
        "effect_size": 123456.7,
        "drift_detected": True,
        "quality": {"missing_share": 0.25, "missing_share_change": 0.2, "problems": []},
    }
    report = {"features": [feature], "drift_share": 1.0, "drift_share_threshold": 0.5}
    text = "".join(parse(render_html(report)).text)
    assert "1.23e-12" in text
    assert "0.1235" in text
    assert "123,457" in text
    assert "25.0%" in text and "+20.0%" in text
    assert "share 100.0%, threshold 50.0%" in text


def test_a_corrected_p_value_keeps_the_raw_one_in_a_tooltip() -> None:
    feature = {
        "name": "x",
        "test": "ks",
        "p_value": 0.04,
        "details": {"p_value_raw": 0.01, "correction": "bonferroni"},
    }
    page = parse(render_html({"features": [feature], "correction": "bonferroni"}))
    titles = [a.get("title") for t, a in page.tags if t == "td"]
    assert "raw p-value 0.0100 (bonferroni)" in titles


@pytest.mark.parametrize(
    "report",
    [
        {},
        {"features": []},
        {"features": None, "quality": None, "meta": None, "multivariate": None},
        {
            "features": [
                {"name": None, "distribution": None, "quality": None, "details": None},
                {"name": "e", "error": "no data", "test": None, "statistic": None},
                {"name": "h", "distribution": {"type": "histogram", "edges": [], "current": []}},
                {"name": "n", "distribution": {"type": "histogram", "edges": [0, None, 2]}},
                {"name": "b", "distribution": {"type": "bars", "categories": ["a"]}},
                {"name": "q", "quality": {"summary": None, "problems": None, "n": None}},
                "not a feature",
            ],
            "quality": {"n_rows": None, "problems": None, "missing_columns": None},
            "prediction_drift": {"name": None},
            "target_drift": None,
            "multivariate": {"pca": None},
            "meta": {"generated_at": None},
            "drift_share": None,
        },
    ],
    ids=["empty", "no-features", "nulls", "null-fields"],
)
def test_nulls_and_missing_fields_render(report: dict[str, Any]) -> None:
    page = parse(render_html(report))
    text = "".join(page.text)
    assert "No feature could be evaluated" in text
    assert page.count("svg") == 0
    if not report.get("features"):
        assert "The report has no features." in text


def test_prediction_target_and_multivariate_sections(report: dict[str, Any]) -> None:
    assert "Target drift" not in "".join(parse(render_html(report)).text)
    report["target_drift"] = {**report["prediction_drift"], "name": "label", "role": "target"}
    report["multivariate"] = {
        "domain_classifier": {
            "method": "domain_classifier",
            "statistic": 0.81,
            "threshold": 0.55,
            "drift_detected": True,
            "details": {"top_features": ["age", "income"], "folds": 5},
        }
    }
    page = parse(render_html(report))
    ids = {a.get("id") for _, a in page.tags}
    assert {"prediction-drift", "target-drift", "multivariate"} <= ids
    links = {str(a["href"]) for t, a in page.tags if t == "a"}
    assert {"#prediction-drift", "#target-drift", "#multivariate"} <= links
    assert {link.removeprefix("#") for link in links} <= ids  # every in-page link lands
    text = "".join(page.text)
    assert "domain_classifier" in text and "age, income" in text and "0.81" in text


def test_rendering_is_pure(report: dict[str, Any]) -> None:
    before = copy.deepcopy(report)
    assert render_html(report) == render_html(report)
    assert report == before


def synthetic(n: int, rng: np.random.Generator) -> dict[str, Any]:
    """``n`` features, a quarter of them categorical, every one with a distribution."""
    features = []
    edges = np.linspace(-3, 3, 31).tolist()
    for i in range(n):
        ref = rng.dirichlet(np.ones(30)).tolist()
        cur = rng.dirichlet(np.ones(30)).tolist()
        dist: dict[str, Any] = {
            "type": "histogram",
            "edges": edges,
            "reference": ref,
            "current": cur,
        }
        if i % 4 == 0:
            cats = [f"category_{j}" for j in range(20)] + ["(missing)"]
            dist = {
                "type": "bars",
                "categories": cats,
                "reference": rng.dirichlet(np.ones(21)).tolist(),
                "current": rng.dirichlet(np.ones(21)).tolist(),
            }
        features.append(
            {
                "name": f"feature_{i:04d}",
                "kind": "categorical" if i % 4 == 0 else "numeric",
                "test": "psi",
                "statistic": float(rng.random()),
                "p_value": float(rng.random()) if i % 2 else None,
                "threshold": 0.1,
                "effect_size": float(rng.random()),
                "drift_detected": bool(i % 7 == 0),
                "error": None,
                "details": {"bins": 10, "epsilon": 1e-4, "formula": "sum((c - r) * ln(c / r))"},
                "quality": {
                    "n": 10_000,
                    "missing_share": 0.01,
                    "missing_share_change": 0.001,
                    "out_of_range_share": 0.0,
                    "outlier_share": 0.02,
                    "unseen_categories": {"new": 3} if i % 4 == 0 else {},
                    "n_unique": 20,
                    "summary": {"mean": 0.1, "std": 1.0, "min": -3.0, "median": 0.0, "max": 3.0},
                    "problems": ["outliers"] if i % 5 == 0 else [],
                },
                "distribution": dist,
            }
        )
    return {
        "features": features,
        "n_features": n,
        "drift_share": 0.14,
        "drift_share_threshold": 0.5,
    }


def test_a_thousand_features_render_fast(rng: np.random.Generator) -> None:
    report = synthetic(1000, rng)
    render_html(report)  # warm up
    started = time.perf_counter()
    document = render_html(report)
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0, f"1,000 features took {elapsed:.2f} s"
    assert document.count("<svg ") == 1000
    assert document.count('<article class="card ') == 1000
    assert len(document) < 8_000_000  # about 6 kB a feature


def test_each_quality_share_shows_the_limit_it_was_judged_against(
    report: dict[str, Any],
) -> None:
    """The limits come from the reference (quality/_limits.py), so a reader must see them
    beside the shares to tell why 7% outliers is fine in one column and not in another."""
    page = render_html(report)
    section = page[page.index('<section id="quality">') :]
    shown = 0
    for f in report["features"]:
        limits = (f.get("quality") or {}).get("limits") or {}
        name = re.escape(html.escape(f["name"]))
        row = re.search(rf"<tr [^>]*>\s*<th scope=row><a [^>]*>{name}</a>.*?</tr>", section, re.S)
        assert row is not None, f["name"]
        for value in limits.values():
            pct = f"{value * 100:.1f}%" if value >= 0.001 else "&lt;0.1%"
            assert f"\u2264 {pct}" in row.group(0), (f["name"], value)
            shown += 1
    assert shown >= 4  # the fixture has numeric and categorical features with limits
