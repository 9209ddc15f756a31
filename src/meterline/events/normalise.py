"""Route normalisation: raw request paths become templates such as ``/orders/:id``.

Identifiers in paths would otherwise explode the route dimension into millions of
values. User rules run first (full-path regular expressions, first match wins), then the
built-in segment rules replace UUIDs, numbers, hex ids, e-mails and long opaque tokens.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

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
        self._rules = tuple((re.compile(p), r) for p, r in rules)
        self.normalise = lru_cache(maxsize=100_000)(self._normalise)

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
