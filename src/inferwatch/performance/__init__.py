"""Model performance as mergeable summaries: classification and regression accumulators."""

from __future__ import annotations

__all__: list[str] = []
