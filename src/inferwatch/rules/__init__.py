"""Alert rules as data: one spec for the built-in engine and the generated PromQL."""

from __future__ import annotations

__all__: list[str] = []
