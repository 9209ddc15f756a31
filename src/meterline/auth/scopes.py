"""OAuth2 scopes and what they allow."""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    """A permission carried by a token."""

    REPORTS_READ = "reports:read"
    REPORTS_WRITE = "reports:write"
    ANALYTICS_READ = "analytics:read"
    ADMIN_MANAGE = "admin:manage"
    EVENTS_WRITE = "events:write"


ALL_SCOPES: tuple[str, ...] = tuple(s.value for s in Scope)


def parse_scopes(text: str) -> tuple[str, ...]:
    """Split a space- or comma-separated scope list; raises ``ValueError`` on an unknown one."""
    scopes = [s for s in text.replace(",", " ").split() if s]
    unknown = [s for s in scopes if s not in ALL_SCOPES]
    if unknown:
        raise ValueError(f"unknown scope(s) {', '.join(unknown)}; allowed: {', '.join(ALL_SCOPES)}")
    return tuple(dict.fromkeys(scopes))
