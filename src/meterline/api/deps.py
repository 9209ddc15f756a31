"""Request dependencies: the services, and who is calling with which scopes."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from meterline.api.services import Services
from meterline.auth import Principal, is_ingest_key
from meterline.errors import AuthError, AuthMissingError


def services(request: Request) -> Services:
    """The server's services."""
    found: Services = request.app.state.services
    return found


def _credentials(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise AuthError(
                "the Authorization header must be 'Bearer <token>'",
                details="Get a token from POST /oauth/token.",
            )
        return value.strip()
    return request.headers.get("x-api-key")


def authenticate(request: Request, *, allow_ingest_key: bool = False) -> Principal:
    """The caller's principal from a bearer token (or an ingest key where allowed)."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    token = _credentials(request)
    if token is None:
        raise AuthMissingError(
            "no credentials were sent",
            details="Send 'Authorization: Bearer <token>' (get one from POST /oauth/token).",
        )
    auth = services(request).auth
    if is_ingest_key(token):
        if not allow_ingest_key:
            raise AuthError(
                "an ingest key can only send events",
                details="Use an access token from POST /oauth/token for this route.",
            )
        principal = auth.principal_from_ingest_key(token)
    else:
        principal = auth.principal_from_token(token)
    request.state.principal = principal
    return principal


def requires(scope: str, *, allow_ingest_key: bool = False) -> Callable[[Request], Principal]:
    """A dependency that authenticates the caller and checks ``scope``."""

    def dependency(request: Request) -> Principal:
        principal = authenticate(request, allow_ingest_key=allow_ingest_key)
        principal.require(scope)
        return principal

    dependency.__name__ = f"requires_{scope.replace(':', '_')}"
    return dependency
