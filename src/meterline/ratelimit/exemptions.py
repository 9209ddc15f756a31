"""Signed, scoped, expiring exemptions: the only way past the limiter.

A header that merely claims to be internal (``X-Internal-Service: true``) can be sent by
anyone; an exemption here is an HMAC-SHA256-signed credential naming the rules it skips,
the paths and methods it is good for, and when it expires.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase, translate

from meterline.clock import Clock, system_clock
from meterline.errors import ConfigurationError
from meterline.ratelimit.rules import Identity

PREFIX = "mlx1"
HEADER = "x-ratelimit-exemption"
"""The request header that carries an exemption credential."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Exemption:
    """A verified exemption: who holds it and which rules (name globs) it skips."""

    subject: str
    rules: tuple[str, ...]
    expires_at: float

    def covers(self, rule_name: str) -> bool:
        """Whether this exemption skips the rule named ``rule_name``."""
        return any(fnmatchcase(rule_name, pattern) for pattern in self.rules)


class ExemptionSigner:
    """Issues and verifies exemption credentials with a server-side secret.

    Example:
        >>> signer = ExemptionSigner(b"a long random secret")
        >>> token = signer.issue("billing-batch", rules=("org-*",), match="/v2/reports*")
        >>> signer.verify(token, Identity(endpoint="/v2/reports/x", method="GET"))
    """

    def __init__(self, secret: bytes | str, clock: Clock = system_clock) -> None:
        key = secret.encode() if isinstance(secret, str) else secret
        if len(key) < 16:
            raise ConfigurationError("an exemption secret needs at least 16 bytes")
        self._key = key
        self.clock = clock

    def _sign(self, payload: str) -> str:
        mac = hmac.new(self._key, f"{PREFIX}.{payload}".encode(), hashlib.sha256)
        return _b64(mac.digest())

    def issue(
        self,
        subject: str,
        *,
        rules: tuple[str, ...] = ("*",),
        match: str = "*",
        methods: tuple[str, ...] = (),
        ttl: float = 300.0,
    ) -> str:
        """A credential for ``subject`` skipping ``rules`` on ``match``/``methods`` for
        ``ttl`` seconds."""
        body = {
            "sub": subject,
            "rules": list(rules),
            "match": match,
            "methods": [m.upper() for m in methods],
            "exp": self.clock() + ttl,
        }
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        return f"{PREFIX}.{payload}.{self._sign(payload)}"

    def verify(self, token: str, identity: Identity) -> Exemption | None:
        """The exemption if ``token`` is genuine, unexpired and scoped to this request."""
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != PREFIX:
            return None
        if not hmac.compare_digest(parts[2], self._sign(parts[1])):
            return None
        try:
            body = json.loads(_unb64(parts[1]))
            expires = float(body["exp"])
            match = str(body["match"])
            methods = [str(m) for m in body["methods"]]
            rules = tuple(str(r) for r in body["rules"])
            subject = str(body["sub"])
        except (ValueError, KeyError, TypeError):
            return None
        if expires <= self.clock():
            return None
        if match != "*" and not re.match(translate(match), identity.endpoint or ""):
            return None
        if methods and (identity.method or "").upper() not in methods:
            return None
        return Exemption(subject, rules, expires)
