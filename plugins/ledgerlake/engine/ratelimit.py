"""Client-side rate limits: spend request cost within the venue's rolling window, never discover the limit.

A sliding-window log rather than a token bucket: the venues count a rolling window ("72 per 3 s",
"125 credits per 60 s"), and a bucket of capacity C refilled at L/W lets C + L requests through in one
window, which a rolling counter refuses. The log lets exactly L units through any window of W seconds.
Each request is logged at the moment its answer arrives (`settle`), which is no earlier than the venue
counted it, so network latency can never make requests look further apart to us than to the venue. That
also keeps fixed-window counters (Binance's minute, SunX's 3 s) within their budget.

Where the venue documents a burst above its rate (Coinbase: 15/s, bursts to 30), requests are logged when
they are sent instead, with no margin. The venue's bucket then always holds the burst's slack in reserve:
if no W seconds of our sends hold more than L, no T seconds of the venue's arrivals hold more than
L + (T + J) * L / W when the network delays them unevenly by up to J, which its bucket lets through while
J <= (burst - L) * W / L (one second for Coinbase). Counting from the answer would cost every slot the
answer's time: a 1000-entry page's latency, and any wait for the GIL before the answer is seen.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from ledgerlake.venues.base import RateLimit

# Counting requests from their send time needs the venue's burst to absorb uneven network delays of at least
# this much (see above); a smaller burst is treated as no burst.
MIN_JITTER_ALLOWANCE_S = 0.25


def counts_at_send(limit: RateLimit) -> bool:
    """True when the venue's documented burst leaves slack enough to count requests when they are sent."""
    if limit.burst is None or limit.units <= 0:
        return False
    return (limit.burst - limit.units) * limit.per_seconds / limit.units >= MIN_JITTER_ALLOWANCE_S


class SlidingWindowLimiter:
    def __init__(self, limit: RateLimit, margin_s: float = 0.05) -> None:
        self.limit = limit
        self.units = float(limit.units)
        self.at_send = counts_at_send(limit)
        # margin: the venue's clock may see requests later than our log; a burst's slack covers that already
        self.window = float(limit.per_seconds) + (0.0 if self.at_send else margin_s)
        self._log: deque[list[float]] = deque()  # [time, cost]
        self._used = 0.0
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        log = self._log
        while log and log[0][0] <= now - self.window:
            self._used -= log.popleft()[1]

    def acquire(self, cost: float = 1.0) -> tuple[float, list[float]]:
        """Block until `cost` fits in the window; returns (seconds waited, ticket to `settle`)."""
        waited = 0.0
        while True:
            with self._lock:
                now = time.monotonic()
                self._expire(now)
                if self._used + cost <= self.units or not self._log:
                    ticket = [now, cost]
                    self._log.append(ticket)
                    self._used += cost
                    return waited, ticket
                need = self._used + cost - self.units
                freed, until = 0.0, now
                for stamp, spent in self._log:
                    freed += spent
                    until = stamp + self.window
                    if freed >= need:
                        break
                pause = max(until - now, 0.001)
            # Sleep without the lock: another fetcher (a lane) settling its answer meanwhile must not be held
            # back, which would stamp its request later than it was and leave the allowance partly unused.
            time.sleep(pause)
            waited += pause

    def settle(self, ticket: list[float]) -> None:
        """The answer arrived: count the request from now, the latest moment the venue can have seen it
        (unless requests count from their send time: see the module's docstring)."""
        if self.at_send:
            return
        with self._lock:
            ticket[0] = max(ticket[0], time.monotonic())

    def observe_used(self, used: float) -> None:
        """The venue says it has counted `used` units in its window (Binance X-MBX-USED-WEIGHT-1M): never
        believe we have spent less than that."""
        with self._lock:
            now = time.monotonic()
            self._expire(now)
            if used > self._used:
                self._log.append([now, used - self._used])
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
