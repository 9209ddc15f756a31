"""Meterline: self-hostable API analytics and rate limiting.

The base package is deliberately light: importing :mod:`meterline` (and the capture
SDK in :mod:`meterline.capture`) never pulls in the server's dependencies.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
