"""The built-in alert engine: pending, firing, resolved; grouping, inhibition, silences."""

from __future__ import annotations

__all__: list[str] = []
