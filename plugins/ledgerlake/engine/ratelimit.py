"""Client-side rate limits: spend request cost within the venue's rolling window, never discover the limit.

A sliding-window log rather than a token bucket: the venues count a rolling window ("72 per 3 s",
"125 credits per 60 s"), and a bucket of capacity C refilled at L/W lets C + L requests through in one
window, which a rolling counter refuses. The log lets exactly L units through any window of W seconds.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from ledgerlake.venues.base import RateLimit


class SlidingWindowLimiter:
    def __init__(self, limit: RateLimit, margin_s: float = 0.05) -> None:
        self.limit = limit
        self.units = float(limit.units)
        self.window = float(limit.per_seconds) + margin_s  # margin: the venue's clock sees requests later
        self._log: deque[tuple[float, float]] = deque()
        self._used = 0.0
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        log = self._log
        while log and log[0][0] <= now - self.window:
            self._used -= log.popleft()[1]

    def acquire(self, cost: float = 1.0) -> float:
        """Block until `cost` fits in the window; returns the seconds waited."""
        waited = 0.0
        with self._lock:
            while True:
                now = time.monotonic()
                self._expire(now)
                if self._used + cost <= self.units or not self._log:
                    self._log.append((now, cost))
                    self._used += cost
                    return waited
                need = self._used + cost - self.units
                freed, until = 0.0, now
                for stamp, spent in self._log:
                    freed += spent
                    until = stamp + self.window
                    if freed >= need:
                        break
                pause = max(until - now, 0.001)
                time.sleep(pause)
                waited += pause

    def observe_used(self, used: float) -> None:
        """The venue says it has counted `used` units in its window (Binance X-MBX-USED-WEIGHT-1M): never
        believe we have spent less than that."""
        with self._lock:
            now = time.monotonic()
            self._expire(now)
            if used > self._used:
                self._log.append((now, used - self._used))
                self._used = used


_LIMITERS: dict[tuple[str, RateLimit], SlidingWindowLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def limiter_for(scope_key: str, limit: RateLimit) -> SlidingWindowLimiter:
    """One limiter per (scope, limit) in this process, so accounts sharing an IP or key share the budget."""
    with _LIMITERS_LOCK:
        key = (scope_key, limit)
        if key not in _LIMITERS:
            _LIMITERS[key] = SlidingWindowLimiter(limit)
        return _LIMITERS[key]
