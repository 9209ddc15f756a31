"""Each subpackage's ``__all__`` is sorted and names only what the package defines."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = [
    "meterline.auth",
    "meterline.events",
    "meterline.ingest",
    "meterline.query",
    "meterline.store",
    "meterline.dashboard",
    "meterline.demo",
    "meterline.planning",
    "meterline.alerts",
    "meterline.insight.anomalies",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_public_surface_is_sorted_and_real(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    # isort style: CONSTANTS, then Classes, then functions, each alphabetical.
    assert exported == sorted(
        exported, key=lambda n: (0 if n.isupper() else 1 if n[0].isupper() else 2, n)
    )
    for item in exported:
        assert hasattr(module, item), f"{name}.{item}"
    assert module.__doc__, f"{name} needs a docstring saying what it is for"
