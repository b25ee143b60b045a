"""``python -m inferwatch`` runs the command-line interface."""

from __future__ import annotations

from inferwatch.cli import main

main()
