"""Resource files: the Redis Lua scripts."""

from __future__ import annotations

from importlib.resources import files


def lua(name: str) -> str:
    """The text of the Lua script ``name`` (without ``.lua``)."""
    return files(__package__).joinpath(f"{name}.lua").read_text(encoding="utf-8")
