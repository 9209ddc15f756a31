"""The adaptive factor: shrink limits while the protected service is overloaded."""

from __future__ import annotations

import threading

from meterline.clock import Clock, system_clock


class AdaptiveFactor:
    """A factor in ``[floor, 1]`` that adaptive rules multiply their limits by.

    Feed it every response with :meth:`observe`. Once per ``interval`` seconds it compares
    the smoothed latency (ms) and error rate with their targets: above either, the factor
    is multiplied by ``decrease``; below both, it grows by ``increase`` back towards 1.

    Example:
        >>> factor = AdaptiveFactor(target_latency_ms=250)
        >>> factor.observe(latency_ms=900, error=False)
        >>> factor.value
    """

    def __init__(
        self,
        *,
        target_latency_ms: float | None = None,
        target_error_rate: float | None = None,
        floor: float = 0.25,
        decrease: float = 0.7,
        increase: float = 0.1,
        smoothing: float = 0.2,
        interval: float = 1.0,
        clock: Clock = system_clock,
    ) -> None:
        self.target_latency_ms = target_latency_ms
        self.target_error_rate = target_error_rate
        self.floor = floor
        self.decrease = decrease
        self.increase = increase
        self.smoothing = smoothing
        self.interval = interval
        self.clock = clock
        self.value = 1.0
        self.latency_ms = 0.0
        self.error_rate = 0.0
        self._seen = False
        self._adjusted_at = clock()
        self._lock = threading.Lock()

    @property
    def overloaded(self) -> bool:
        """Whether the smoothed signals are above a target."""
        slow = self.target_latency_ms is not None and self.latency_ms > self.target_latency_ms
        failing = self.target_error_rate is not None and self.error_rate > self.target_error_rate
        return self._seen and (slow or failing)

    def observe(self, latency_ms: float, error: bool) -> None:
        """Record one response of the protected service."""
        a = self.smoothing
        with self._lock:
            if not self._seen:
                self.latency_ms, self.error_rate, self._seen = latency_ms, float(error), True
            else:
                self.latency_ms += a * (latency_ms - self.latency_ms)
                self.error_rate += a * (float(error) - self.error_rate)
            now = self.clock()
            if now - self._adjusted_at < self.interval:
                return
            self._adjusted_at = now
            if self.overloaded:
                self.value = max(self.floor, self.value * self.decrease)
            else:
                self.value = min(1.0, self.value + self.increase)
