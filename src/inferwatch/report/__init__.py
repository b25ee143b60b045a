"""Batch drift reports: read files, evaluate, render JSON or a self-contained HTML page."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from inferwatch.report._build import build_report, report_dict
from inferwatch.report._load import LazyColumns, LoadedData, arrow_schema, load_pair

if TYPE_CHECKING:
    from inferwatch.report._html import render_html

__all__ = [
    "LazyColumns",
    "LoadedData",
    "arrow_schema",
    "build_report",
    "load_pair",
    "render_html",
    "report_dict",
]


def __getattr__(name: str) -> Any:
    # the HTML page's template and code load only for an .html report (start-up)
    if name == "render_html":
        from inferwatch.report._html import render_html

        return render_html
    raise AttributeError(f"module 'inferwatch.report' has no attribute {name!r}")
