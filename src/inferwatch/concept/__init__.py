"""Concept drift on streams: change detectors over the per-prediction error stream."""

from __future__ import annotations

__all__: list[str] = []
