"""The client-side limiter shared by a run's fetchers (lanes)."""

from __future__ import annotations

import threading
import time

from ledgerlake.engine.ratelimit import SlidingWindowLimiter
from ledgerlake.venues.base import RateLimit


def test_a_fetcher_waiting_for_the_window_does_not_hold_back_another_s_answer() -> None:
    """One lane sleeping in acquire() must not block another lane's settle(): a late settle stamps the request
    later than it was and leaves part of the allowance unused (exchangeHubX fell to 86% of it with two lanes)."""
    limiter = SlidingWindowLimiter(RateLimit(1, 1.0), margin_s=0.0)
    _, first = limiter.acquire()
    waiter = threading.Thread(target=limiter.acquire)  # must wait about a second for the window
    waiter.start()
    time.sleep(0.1)
    assert waiter.is_alive()
    t = time.monotonic()
    limiter.settle(first)
    assert time.monotonic() - t < 0.5
    waiter.join(timeout=5)
    assert not waiter.is_alive()


def test_two_fetchers_together_stay_within_the_window() -> None:
    limiter = SlidingWindowLimiter(RateLimit(5, 0.5), margin_s=0.0)
    stamps: list[float] = []
    lock = threading.Lock()

    def fetch(n: int) -> None:
        for _ in range(n):
            _, ticket = limiter.acquire()
            limiter.settle(ticket)
            with lock:
                stamps.append(ticket[0])

    threads = [threading.Thread(target=fetch, args=(8,)) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=10)
    stamps.sort()
    assert len(stamps) == 16
    # any 0.5 s holds at most 5 of them
    assert all(sum(1 for s in stamps if a <= s < a + 0.5) <= 5 for a in stamps)
