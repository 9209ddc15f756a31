"""``python -m meterline`` runs the command-line interface."""

from __future__ import annotations

from meterline.cli import main

main()
