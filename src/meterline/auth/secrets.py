"""Credential generation and hashing. Secrets are stored only as hashes.

Every secret Meterline issues carries 256 bits of randomness, so a fast keyed-free
SHA-256 is enough to make a leaked database useless; there is nothing to brute-force.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_id(prefix: str, nbytes: int = 9) -> str:
    """A random, URL-safe identifier such as ``org_3kQ…``."""
    return f"{prefix}_{secrets.token_urlsafe(nbytes).replace('-', 'x').replace('_', 'y')}"


def new_secret(prefix: str) -> str:
    """A fresh 256-bit secret with a recognisable prefix (``mls_…``, ``mlk_…``)."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_secret(secret: str) -> str:
    """The stored form of a secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    """Constant-time check of ``secret`` against its stored hash."""
    return hmac.compare_digest(hash_secret(secret), stored_hash)
