"""Receivers: where alerts go (webhook, Alertmanager, Slack, email, PagerDuty)."""

from __future__ import annotations

__all__: list[str] = []
