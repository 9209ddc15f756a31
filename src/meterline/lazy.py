"""Lazy package exports: a package's public names are imported on first use.

The metadata migrations import every component's ``tables`` module, which imports its
package first; packages whose modules pull in heavy libraries (statsforecast, report
renderers) would otherwise make every admin command and server start pay for them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` that import ``name`` from the module
    ``exports[name]`` (relative to the package) the first time it is asked for."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
