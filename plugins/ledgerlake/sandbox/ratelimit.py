"""The three limiter shapes the venues document: fixed windows, token buckets and rolling credit windows."""

from __future__ import annotations

import time
from collections import deque


class FixedWindow:
    """A budget per fixed window aligned to the clock (Binance's per-minute weight, SunX's 3 s reads)."""

    def __init__(self, budget: float, window_s: float) -> None:
        self.budget = budget
        self.window_s = window_s
        self._window = -1
        self.used = 0.0

    def _roll(self, now: float) -> None:
        window = int(now // self.window_s)
        if window != self._window:
            self._window = window
            self.used = 0.0

    def try_take(self, cost: float, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        self._roll(now)
        if self.used + cost > self.budget:
            return False
        self.used += cost
        return True

    def current(self, now: float | None = None) -> float:
        self._roll(time.time() if now is None else now)
        return self.used

    def retry_after(self, now: float | None = None) -> float:
        now = time.time() if now is None else now
        return (int(now // self.window_s) + 1) * self.window_s - now


class TokenBucket:
    """`rate` tokens per second up to `burst` (Coinbase's 15/s with bursts to 30)."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = time.monotonic()

    def try_take(self, cost: float = 1.0) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False

    def retry_after(self, cost: float = 1.0) -> float:
        return max(0.0, (cost - self.tokens) / self.rate)


class RollingWindow:
    """Credits spent in the last `window_s` seconds (Pacifica's rolling 60 s)."""

    def __init__(self, credits: float, window_s: float) -> None:
        self.credits = credits
        self.window_s = window_s
        self.spent: deque[tuple[float, float]] = deque()
        self.total = 0.0

    def _expire(self, now: float) -> None:
        while self.spent and self.spent[0][0] <= now - self.window_s:
            self.total -= self.spent.popleft()[1]

    def try_take(self, cost: float) -> bool:
        now = time.monotonic()
        self._expire(now)
        if self.total + cost > self.credits:
            return False
        self.spent.append((now, cost))
        self.total += cost
        return True

    def retry_after(self) -> float:
        if not self.spent:
            return 0.0
        return max(0.0, self.spent[0][0] + self.window_s - time.monotonic())
