"""Fairness across a protected attribute, from mergeable per-group counts."""

from __future__ import annotations

__all__: list[str] = []
