"""Performance estimated before labels arrive (confidence-based and direct loss estimation)."""

from __future__ import annotations

__all__: list[str] = []
