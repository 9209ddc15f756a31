"""Single-use stream tickets: a short-lived stand-in for a token in a WebSocket URL."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from meterline.auth import Principal
from meterline.clock import Clock, system_clock

TICKET_SECONDS = 60


@dataclass(frozen=True, slots=True)
class Ticket:
    """Who a ticket stands for and until when the connection it opens may live."""

    principal: Principal
    token_expires_at: float
    expires_at: float


class TicketBook:
    """Issues tickets and redeems each at most once, within :data:`TICKET_SECONDS`.

    Example:
        >>> book = TicketBook()
        >>> ticket = book.issue(principal, token_expires_at=...)  # doctest: +SKIP
        >>> book.redeem(ticket) is not None, book.redeem(ticket)  # doctest: +SKIP
        (True, None)
    """

    def __init__(self, clock: Clock = system_clock) -> None:
        self.clock = clock
        self._tickets: dict[str, Ticket] = {}

    def issue(self, principal: Principal, token_expires_at: float) -> tuple[str, float]:
        """A new ticket for ``principal`` and the moment it stops being redeemable."""
        now = self.clock()
        for stale in [k for k, t in self._tickets.items() if t.expires_at <= now]:
            del self._tickets[stale]
        value = "t_" + secrets.token_urlsafe(24)
        expires = now + TICKET_SECONDS
        self._tickets[value] = Ticket(principal, token_expires_at, expires)
        return value, expires

    def redeem(self, value: str) -> Ticket | None:
        """The ticket's grant, once; ``None`` when unknown, used or expired."""
        ticket = self._tickets.pop(value, None)
        if ticket is None or ticket.expires_at <= self.clock():
            return None
        return ticket
