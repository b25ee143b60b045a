"""Batch drift reports: read files, evaluate, render JSON or a self-contained HTML page."""

from __future__ import annotations

from inferwatch.report._build import build_report, report_dict
from inferwatch.report._html import render_html
from inferwatch.report._load import LazyColumns, LoadedData, arrow_schema, load_pair

__all__ = [
    "LazyColumns",
    "LoadedData",
    "arrow_schema",
    "build_report",
    "load_pair",
    "render_html",
    "report_dict",
]
