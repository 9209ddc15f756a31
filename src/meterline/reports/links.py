"""Download links that expire: an HMAC over the report id and the expiry time."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from meterline.auth.tables import server_secrets

_KEY_NAME = "reports_link_key"


def link_key(engine: Engine) -> bytes:
    """The server's link-signing key, created once and shared by every process."""
    with engine.begin() as conn:
        found = conn.execute(
            select(server_secrets.c.value).where(server_secrets.c.name == _KEY_NAME)
        ).scalar_one_or_none()
        if found is not None:
            return bytes.fromhex(found)
    try:
        with engine.begin() as conn:
            conn.execute(
                server_secrets.insert().values(name=_KEY_NAME, value=secrets.token_hex(32))
            )
    except IntegrityError:
        pass  # another process created it first
    return link_key(engine)


class LinkSigner:
    """Signs and checks ``(report_id, expires)`` pairs.

    Example:
        >>> signer = LinkSigner(b"k" * 32)
        >>> signer.verify("rpt_1", 2000, signer.sign("rpt_1", 2000), now=1000)
        True
    """

    def __init__(self, key: bytes) -> None:
        self._key = key

    def sign(self, report_id: str, expires: int) -> str:
        """The signature of a link to ``report_id`` valid until ``expires`` (Unix seconds)."""
        message = f"{report_id}:{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def verify(self, report_id: str, expires: int, signature: str, *, now: float) -> bool:
        """Whether the signature is right and the link has not expired."""
        good = hmac.compare_digest(self.sign(report_id, expires), signature)
        return good and now < expires
