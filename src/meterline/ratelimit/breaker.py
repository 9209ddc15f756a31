"""A circuit breaker, so a failing storage costs one timeout, not one per request."""

from __future__ import annotations

import threading
import time

from meterline.clock import Clock


class CircuitBreaker:
    """Opens after ``failures`` consecutive failures; while open, callers skip storage.

    After ``cooldown`` seconds one probe is let through (half open): its success closes
    the breaker, its failure opens it again for another cooldown.

    Example:
        >>> breaker = CircuitBreaker(failures=3, cooldown=2.0)
        >>> if breaker.allow(): ...  # call storage, then success() or failure()
    """

    def __init__(
        self, failures: int = 3, cooldown: float = 2.0, clock: Clock = time.monotonic
    ) -> None:
        self.threshold = failures
        self.cooldown = cooldown
        self.clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False
        self.opened = 0
        self.clean = True
        """True while no failure was seen since the last success: the breaker is closed
        and callers may skip :meth:`allow` and :meth:`success` (the hot path)."""

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half_open``."""
        if self._opened_at is None:
            return "closed"
        if self.clock() - self._opened_at >= self.cooldown:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        """Whether a call may go to storage now (at most one probe while half open)."""
        if self._opened_at is None:
            return True
        with self._lock:
            if self._opened_at is None:
                return True
            if self.clock() - self._opened_at < self.cooldown or self._probing:
                return False
            self._probing = True
            return True

    def success(self) -> None:
        """Record a successful call: closes the breaker."""
        if self._opened_at is None and self._failures == 0:
            return
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._probing = False
            self.clean = True

    def failure(self) -> None:
        """Record a failed call: may open (or re-open) the breaker."""
        with self._lock:
            self.clean = False
            self._failures += 1
            if self._probing or self._failures >= self.threshold:
                if self._opened_at is None or self._probing:
                    self.opened += 1
                self._opened_at = self.clock()
                self._probing = False
