"""Orgs, API clients and ingest keys: creating them and checking credentials.

Used by the HTTP API and by the admin CLI (which may run while the server does: both
only touch the metadata database).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError

from meterline.auth import tables as md
from meterline.auth.scopes import Scope, parse_scopes
from meterline.auth.secrets import hash_secret, new_id, new_secret, secret_matches
from meterline.auth.tokens import TOKEN_LIFETIME, TokenSigner
from meterline.clock import Clock, system_clock
from meterline.errors import AuthError, ConflictError, NotFoundError, ScopeError, ValidationError
from meterline.plans import PlanName, plan_limits

_CACHE_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the org whose data they may see and what they may do."""

    org_id: str
    plan: str
    scopes: tuple[str, ...]
    subject: str
    kind: str  # "client" or "ingest_key"
    operator: bool = False

    @property
    def retention_days(self) -> int:
        """Retention of the caller's plan, stamped on the events it sends."""
        return plan_limits(self.plan).retention_days

    def require(self, scope: str) -> None:
        """Raise ``AUTH_SCOPE_INSUFFICIENT`` unless the principal holds ``scope``."""
        if scope not in self.scopes:
            raise ScopeError(
                f"this operation needs the '{scope}' scope",
                details=f"Your token has: {' '.join(self.scopes) or 'no scopes'}.",
            )


def _now_dt(clock: Clock) -> datetime:
    return datetime.fromtimestamp(clock(), tz=UTC)


def is_ingest_key(credential: str) -> bool:
    """Whether a credential has the shape of an ingest key (``k_<id>.<secret>``) rather
    than an access token; says nothing about whether it is valid."""
    return credential.count(".") == 1 and credential.startswith("k_")


class AuthService:
    """Creates orgs and credentials and turns presented credentials into a :class:`Principal`.

    Example:
        >>> auth = AuthService(engine)  # doctest: +SKIP
        >>> org = auth.create_org("acme")  # doctest: +SKIP
        >>> auth.create_client(org["org_id"], "analytics:read")  # doctest: +SKIP
    """

    def __init__(self, engine: Engine, clock: Clock = system_clock) -> None:
        self.engine = engine
        self.clock = clock
        self._cache: dict[str, tuple[float, Any]] = {}
        self._signer: TokenSigner | None = None

    # -- signing key -----------------------------------------------------------------------

    @property
    def signer(self) -> TokenSigner:
        """The deployment's token signer; its key is created on first use and stored."""
        if self._signer is None:
            with self.engine.begin() as conn:
                row = conn.execute(
                    select(md.server_secrets.c.value).where(md.server_secrets.c.name == "jwt")
                ).first()
                if row is None:
                    key = TokenSigner.generate_key()
                    try:
                        conn.execute(md.server_secrets.insert().values(name="jwt", value=key))
                    except IntegrityError:
                        pass
                    row = conn.execute(
                        select(md.server_secrets.c.value).where(md.server_secrets.c.name == "jwt")
                    ).first()
                assert row is not None
            self._signer = TokenSigner(str(row[0]))
        return self._signer

    # -- creating --------------------------------------------------------------------------

    def create_org(
        self, name: str, plan: str = "basic", *, operator: bool = False
    ) -> dict[str, Any]:
        """Create an org; returns ``{org_id, name, plan}``. Names are unique."""
        name = name.strip()
        if not 1 <= len(name) <= 200:
            raise ValidationError("the org name must be 1 to 200 characters")
        self._check_plan(plan)
        org_id = new_id("org")
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    md.orgs.insert().values(
                        org_id=org_id,
                        name=name,
                        plan=plan,
                        operator=operator,
                        created_at=_now_dt(self.clock),
                    )
                )
        except IntegrityError:
            raise ConflictError(f"an org named {name!r} already exists") from None
        return {"org_id": org_id, "name": name, "plan": plan}

    @staticmethod
    def _check_plan(plan: str) -> None:
        if plan not in {p.value for p in PlanName}:
            raise ValidationError(
                f"unknown plan {plan!r}; use basic, professional or enterprise",
                validation_errors=[{"field": "plan", "message": "unknown plan"}],
            )

    def find_org(self, org: str) -> dict[str, Any]:
        """Look an org up by id or by name; raises ``NOT_FOUND``."""
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    select(md.orgs).where((md.orgs.c.org_id == org) | (md.orgs.c.name == org))
                )
                .mappings()
                .first()
            )
        if row is None:
            raise NotFoundError(
                f"no org {org!r}", details="Create it with 'meterline admin create-org'."
            )
        return dict(row)

    def set_plan(self, org: str, plan: str) -> dict[str, Any]:
        """Move an org to another plan (new events get its retention)."""
        self._check_plan(plan)
        found = self.find_org(org)
        with self.engine.begin() as conn:
            conn.execute(
                update(md.orgs).where(md.orgs.c.org_id == found["org_id"]).values(plan=plan)
            )
        self._cache.clear()
        return {**found, "plan": plan}

    def create_client(
        self, org: str, scopes: str, *, name: str = "api client", plan: str | None = None
    ) -> dict[str, Any]:
        """Create an OAuth2 client in ``org``; the secret is shown once, stored hashed.

        ``plan`` (when given) also moves the org to that plan.
        """
        try:
            parsed = parse_scopes(scopes)
        except ValueError as exc:
            raise ValidationError(
                str(exc), validation_errors=[{"field": "scopes", "message": str(exc)}]
            ) from None
        if not parsed:
            raise ValidationError(
                "give at least one scope",
                validation_errors=[{"field": "scopes", "message": "empty"}],
            )
        found = self.set_plan(org, plan) if plan else self.find_org(org)
        client_id, secret = new_id("mlc", 12), new_secret("mls")
        with self.engine.begin() as conn:
            conn.execute(
                md.clients.insert().values(
                    client_id=client_id,
                    org_id=found["org_id"],
                    name=name,
                    secret_hash=hash_secret(secret),
                    scopes=" ".join(parsed),
                    created_at=_now_dt(self.clock),
                )
            )
        return {
            "client_id": client_id,
            "client_secret": secret,
            "org_id": found["org_id"],
            "scopes": " ".join(parsed),
            "plan": found["plan"],
        }

    def create_ingest_key(self, org: str) -> dict[str, Any]:
        """Create a write-only ingest key for ``org``; shown once, stored hashed."""
        found = self.find_org(org)
        key_id = new_id("k", 9)
        secret = new_secret("mlk")
        with self.engine.begin() as conn:
            conn.execute(
                md.ingest_keys.insert().values(
                    key_id=key_id,
                    org_id=found["org_id"],
                    key_hash=hash_secret(secret),
                    created_at=_now_dt(self.clock),
                )
            )
        return {"key": f"{key_id}.{secret}", "key_id": key_id, "org_id": found["org_id"]}

    def revoke_client(self, client_id: str) -> None:
        """Revoke a client: its secret and every token issued to it stop working."""
        with self.engine.begin() as conn:
            conn.execute(
                update(md.clients)
                .where(md.clients.c.client_id == client_id)
                .values(revoked_at=_now_dt(self.clock))
            )
        self._cache.clear()

    # -- checking --------------------------------------------------------------------------

    def client_org(self, client_id: str) -> str | None:
        """The org a client belongs to, or ``None`` when there is no such client."""
        client = self._client(client_id)
        return None if client is None else str(client["org_id"])

    def client_revoked(self, client_id: str) -> bool:
        """True when the client is revoked or gone (read from the database, not cached:
        another process, such as the admin CLI, may have revoked it)."""
        client = self._client(client_id)
        return client is None or client["revoked_at"] is not None

    def issue_token(
        self,
        client_id: str,
        client_secret: str,
        requested: str | None,
        *,
        at_most: tuple[str, ...] | None = None,
    ) -> dict[str, Any]:
        """Client-credentials grant: verify the client and issue a token.

        ``requested`` narrows the scopes to a subset of the client's. ``at_most`` instead
        grants whichever of those scopes the client holds (for a sign-in that wants the
        least the user's pages need, not everything the client may do).
        """
        client = self._client(client_id)
        if (
            client is None
            or client["revoked_at"] is not None
            or not secret_matches(client_secret, client["secret_hash"])
        ):
            raise AuthError(
                "invalid client credentials", details="Check client_id and client_secret."
            )
        granted = tuple(client["scopes"].split())
        if requested:
            try:
                wanted = parse_scopes(requested)
            except ValueError as exc:
                raise ScopeError(str(exc)) from None
            missing = [s for s in wanted if s not in granted]
            if missing:
                raise ScopeError(
                    f"this client may not request {' '.join(missing)}",
                    details=f"Allowed: {' '.join(granted)}.",
                )
            granted = wanted
        if at_most is not None:
            granted = tuple(s for s in granted if s in at_most)
        token = self.signer.issue(client_id, client["org_id"], granted, now=self.clock())
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME,
            "scope": " ".join(granted),
        }

    def _client(self, client_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(select(md.clients).where(md.clients.c.client_id == client_id))
                .mappings()
                .first()
            )
        return dict(row) if row else None

    def _cached(self, key: str, load: Any) -> Any:
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[0] < _CACHE_SECONDS:
            return hit[1]
        value = load()
        self._cache[key] = (now, value)
        return value

    def _org(self, org_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(md.orgs).where(md.orgs.c.org_id == org_id)).mappings().first()
        return dict(row) if row else None

    def principal_from_token(self, token: str) -> Principal:
        """Verify a bearer token and return who holds it; revoked clients are refused."""
        claims = self.signer.verify(token, now=self.clock())
        client = self._cached(f"client:{claims.subject}", lambda: self._client(claims.subject))
        if client is None or client["revoked_at"] is not None or client["org_id"] != claims.org_id:
            raise AuthError(
                "the access token's client has been revoked", details="Request a new client."
            )
        org = self._cached(f"org:{claims.org_id}", lambda: self._org(claims.org_id))
        if org is None:
            raise AuthError("the access token's org no longer exists")
        return Principal(
            org_id=claims.org_id,
            plan=org["plan"],
            scopes=claims.scopes,
            subject=claims.subject,
            kind="client",
            operator=bool(org["operator"]),
        )

    def principal_from_ingest_key(self, key: str) -> Principal:
        """Check an ingest key (``<key_id>.<secret>``); it may only write events."""
        key_id, _, secret = key.partition(".")
        record = self._cached(f"key:{key_id}", lambda: self._key(key_id))
        if (
            record is None
            or record["revoked_at"] is not None
            or not secret_matches(secret, record["key_hash"])
        ):
            raise AuthError(
                "invalid ingest key", details="Create one with 'meterline admin create-ingest-key'."
            )
        org = self._cached(f"org:{record['org_id']}", lambda: self._org(record["org_id"]))
        if org is None:
            raise AuthError("the ingest key's org no longer exists")
        return Principal(
            org_id=record["org_id"],
            plan=org["plan"],
            scopes=(Scope.EVENTS_WRITE.value,),
            subject=key_id,
            kind="ingest_key",
        )

    def _key(self, key_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(select(md.ingest_keys).where(md.ingest_keys.c.key_id == key_id))
                .mappings()
                .first()
            )
        return dict(row) if row else None
