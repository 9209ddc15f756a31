"""Route templates: framework patterns to Meterline's ``/orders/:id`` form, and a fallback.

Frameworks name path parameters differently (``{id}``, ``<int:id>``, ``{id:int}``);
Meterline's route dimension uses ``:id``. When no framework route matched (a 404, a
mounted app), identifiers in the raw path are replaced by the same segment rules the
server applies, so routes stay few whatever the traffic.
"""

from __future__ import annotations

import re
from functools import lru_cache

_BRACES = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?\}")
_ANGLES = re.compile(r"<(?:[^:<>]+:)?([A-Za-z_][A-Za-z0-9_]*)>")
_DJANGO_REGEX = re.compile(r"\(\?P<([A-Za-z_][A-Za-z0-9_]*)>[^)]*\)")

_SEGMENT_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
        ),
        ":id",
    ),
    (re.compile(r"^[0-9]+$"), ":id"),
    (re.compile(r"^(?=[^/]*[0-9])(?=[^/]*[a-fA-F])[0-9a-fA-F]{8,}$"), ":id"),
    (re.compile(r"^[^@/\s]+@[^@/\s]+\.[^@/\s]+$"), ":email"),
    (re.compile(r"^(?=.*[0-9])(?=.*[A-Za-z])[A-Za-z0-9_\-.~=]{20,}$"), ":token"),
)


@lru_cache(maxsize=4096)
def template(pattern: str) -> str:
    """A framework route pattern in Meterline's form.

    Example:
        >>> template("/orders/{order_id:int}/items/<int:item>")
        '/orders/:order_id/items/:item'
    """
    route = _BRACES.sub(r":\1", pattern)
    route = _DJANGO_REGEX.sub(r":\1", route)
    route = _ANGLES.sub(r":\1", route)
    route = route.lstrip("^").rstrip("$")
    if not route.startswith("/"):
        route = "/" + route
    return route


@lru_cache(maxsize=16_384)
def normalise(path: str) -> str:
    """A raw path with identifiers replaced, for requests no framework route matched.

    Example:
        >>> normalise("/orders/123/items/9f1c2d3e-aaaa-bbbb-cccc-0123456789ab")
        '/orders/:id/items/:id'
    """
    path = path.split("?", 1)[0] or "/"
    out = []
    for segment in path.split("/"):
        for rule, replacement in _SEGMENT_RULES:
            if segment and rule.match(segment):
                out.append(replacement)
                break
        else:
            out.append(segment)
    route = "/".join(out)
    if len(route) > 1 and route.endswith("/"):
        route = route[:-1]
    return route[:512]


__all__ = ["normalise", "template"]
