"""Route normalisation: raw request paths become templates such as ``/orders/:id``.

Identifiers in paths would otherwise explode the route dimension into millions of
values. User rules run first (full-path regular expressions, first match wins), then the
built-in segment rules replace UUIDs, numbers, hex ids, e-mails and long opaque tokens.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from meterline.errors import ConfigurationError

_UUID = re.compile(
    r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
)
_NUMBER = re.compile(r"^[0-9]+$")
_HEX = re.compile(r"^(?=[^/]*[0-9])(?=[^/]*[a-fA-F])[0-9a-fA-F]{8,}$")
_EMAIL = re.compile(r"^[^@/\s]+@[^@/\s]+\.[^@/\s]+$")
# Long mixed-alphabet segments (base64 ids, ULIDs, API keys) that contain digits.
_TOKEN = re.compile(r"^(?=.*[0-9])(?=.*[A-Za-z])[A-Za-z0-9_\-.~=]{20,}$")

_BUILTIN: tuple[tuple[re.Pattern[str], str], ...] = (
    (_UUID, ":id"),
    (_NUMBER, ":id"),
    (_HEX, ":id"),
    (_EMAIL, ":email"),
    (_TOKEN, ":token"),
)


class RouteNormaliser:
    """Turns raw paths into route templates; results are cached per distinct path.

    ``rules`` are ``(pattern, replacement)`` pairs matched with ``re.fullmatch`` against
    the path (without query string); the first that matches decides the route (its
    replacement may use groups). Paths no rule matches get the built-in segment rules.

    Example:
        >>> RouteNormaliser().normalise("/orders/123/items/9f1c2d3e-aaaa-bbbb-cccc-0123456789ab")
        '/orders/:id/items/:id'
    """

    def __init__(self, rules: Iterable[tuple[str, str]] = ()) -> None:
        compiled = []
        for pattern, replacement in rules:
            try:
                compiled.append((re.compile(pattern), replacement))
            except re.error as exc:
                raise ConfigurationError(
                    f"route rule {pattern!r} is not a valid regular expression: {exc}"
                ) from None
        self._rules = tuple(compiled)
        self.rules: tuple[tuple[str, str], ...] = tuple((p.pattern, r) for p, r in compiled)
        self.normalise = lru_cache(maxsize=100_000)(self._normalise)

    @classmethod
    def from_file(cls, path: Path, extra: Iterable[tuple[str, str]] = ()) -> RouteNormaliser:
        """Rules from ``path`` — a JSON list of ``[pattern, replacement]`` pairs, tried in
        order — followed by ``extra``; no file means built-in rules only."""
        rules: list[tuple[str, str]] = []
        if path.exists():
            try:
                loaded = json.loads(path.read_text())
                rules = [(str(p), str(r)) for p, r in loaded]
            except (ValueError, TypeError) as exc:
                raise ConfigurationError(
                    f"{path} must be a JSON list of [pattern, replacement] pairs: {exc}"
                ) from None
        return cls([*rules, *extra])

    @staticmethod
    @lru_cache(maxsize=100_000)
    def _classify(segment: str) -> str:
        for pattern, replacement in _BUILTIN:
            if pattern.match(segment):
                return replacement
        return segment

    def _segment(self, segment: str) -> str:
        # Plain numbers are the most common id and never worth a cache slot.
        if segment.isdigit():
            return ":id"
        return self._classify(segment) if segment else segment

    def _normalise(self, path: str) -> str:
        path = path.split("?", 1)[0].split("#", 1)[0] or "/"
        if not path.startswith("/"):
            path = "/" + path
        for pattern, replacement in self._rules:
            match = pattern.fullmatch(path)
            if match:
                return match.expand(replacement)
        route = "/".join(map(self._segment, path.split("/")))
        if len(route) > 1 and route.endswith("/"):
            route = route[:-1]
        return route[:512]
