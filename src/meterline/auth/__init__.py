"""Auth: orgs, OAuth2 client credentials, JWT scopes and ingest keys.

Every request is turned into a :class:`Principal` whose ``org_id`` scopes every query.
"""

from __future__ import annotations

from meterline.auth.scopes import ALL_SCOPES, Scope, parse_scopes
from meterline.auth.service import AuthService, Principal, is_ingest_key
from meterline.auth.tokens import TOKEN_LIFETIME, TokenClaims, TokenSigner

__all__ = [
    "ALL_SCOPES",
    "TOKEN_LIFETIME",
    "AuthService",
    "Principal",
    "Scope",
    "TokenClaims",
    "TokenSigner",
    "is_ingest_key",
    "parse_scopes",
]
