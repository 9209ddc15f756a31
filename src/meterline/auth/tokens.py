"""JWT access tokens: HS256 only, signed with a per-deployment key, always expiring.

Only HS256 is accepted on decode, so ``alg: none`` and RS/HS confusion tokens fail; the
signing key is generated on first start and never has a default.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt

from meterline.errors import AuthError

ALGORITHM = "HS256"
ISSUER = "meterline"
TOKEN_LIFETIME = 3600


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a verified token says about its holder."""

    subject: str
    org_id: str
    scopes: tuple[str, ...]
    expires_at: int
    token_id: str


class TokenSigner:
    """Issues and verifies access tokens with one secret key.

    Example:
        >>> signer = TokenSigner("k" * 64)
        >>> token = signer.issue("client", "org", ("analytics:read",), now=1_000)
        >>> signer.verify(token, now=1_001).org_id
        'org'
    """

    def __init__(self, key: str) -> None:
        if len(key) < 32:
            raise ValueError("the token signing key must be at least 32 characters")
        self._key = key

    @staticmethod
    def generate_key() -> str:
        """A fresh random signing key."""
        return secrets.token_urlsafe(48)

    def issue(self, subject: str, org_id: str, scopes: tuple[str, ...], *, now: float) -> str:
        """A signed token for ``subject`` valid for :data:`TOKEN_LIFETIME` seconds."""
        issued = int(now)
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "org": org_id,
            "scope": " ".join(scopes),
            "iat": issued,
            "nbf": issued - 5,
            "exp": issued + TOKEN_LIFETIME,
            "jti": secrets.token_urlsafe(12),
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def verify(self, token: str, *, now: float) -> TokenClaims:
        """Check signature, algorithm, issuer and expiry; raises ``AUTH_TOKEN_INVALID``."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError(
                "the access token is malformed", details="Request a new token."
            ) from None
        if header.get("alg") != ALGORITHM:
            raise AuthError(
                "the access token is not signed the way Meterline signs tokens",
                details="Request a new token from POST /oauth/token.",
            )
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "iss"], "verify_exp": False},
            )
        except jwt.PyJWTError:
            raise AuthError(
                "the access token is invalid", details="Request a new token from POST /oauth/token."
            ) from None
        expires = int(claims["exp"])
        if expires <= now:
            stamp = datetime.fromtimestamp(expires, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            raise AuthError(
                "the access token has expired",
                details=f"Token expired at {stamp}; request a new one from POST /oauth/token.",
            )
        return TokenClaims(
            subject=str(claims["sub"]),
            org_id=str(claims.get("org", "")),
            scopes=tuple(str(claims.get("scope", "")).split()),
            expires_at=expires,
            token_id=str(claims.get("jti", "")),
        )
