"""The client-side limiter shared by a run's fetchers (lanes)."""

from __future__ import annotations

import threading
import time

import pytest

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


@pytest.mark.parametrize(
    ("limit", "answer_s"),
    [
        (RateLimit(5, 0.5), 0.0),  # counted from the answer
        (RateLimit(5, 0.5, burst=10), 0.01),  # counted at send: the next request need not wait for answers
    ],
)
def test_two_fetchers_together_stay_within_the_window(limit: RateLimit, answer_s: float) -> None:
    limiter = SlidingWindowLimiter(limit, margin_s=0.0)
    stamps: list[float] = []
    lock = threading.Lock()

    def fetch(n: int) -> None:
        for _ in range(n):
            _, ticket = limiter.acquire()
            time.sleep(answer_s)
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


def test_requests_count_from_their_send_time_only_where_a_documented_burst_covers_uneven_delays() -> None:
    from ledgerlake.engine.ratelimit import counts_at_send
    from ledgerlake.venues.coinbase import Coinbase
    from ledgerlake.venues.exchangehubx import ExchangeHubX
    from ledgerlake.venues.sunx import SunX

    assert counts_at_send(Coinbase.rate_limit)  # 15/s, bursts to 30: one second of slack
    assert not counts_at_send(ExchangeHubX.rate_limit)  # no documented burst
    assert not counts_at_send(SunX.rate_limit)  # a rolling window: nothing in reserve
    assert not counts_at_send(RateLimit(15, 1, burst=15))
    assert not counts_at_send(RateLimit(15, 1, burst=18))  # 0.2 s of slack: too little to rely on
    assert counts_at_send(RateLimit(15, 1, burst=19))


def test_a_limiter_counting_at_send_keeps_the_send_time_and_no_margin() -> None:
    at_send = SlidingWindowLimiter(RateLimit(15, 1, burst=30))
    at_answer = SlidingWindowLimiter(RateLimit(15, 1))
    assert at_send.window == 1.0 and at_answer.window > 1.0
    tickets = []
    for limiter in (at_send, at_answer):
        _, ticket = limiter.acquire()
        sent = ticket[0]
        time.sleep(0.05)  # the answer's latency
        limiter.settle(ticket)
        tickets.append(ticket[0] - sent)
    assert tickets[0] == 0.0
    assert tickets[1] >= 0.05


def test_a_connection_s_rate_limit_extra_may_name_a_burst() -> None:
    from ledgerlake.config import AccountConfig
    from ledgerlake.engine.run import ExtractOptions, resolve_rate_limit
    from ledgerlake.venues.base import VenueCredentials
    from ledgerlake.venues.coinbase import Coinbase

    venue = Coinbase(
        AccountConfig("coinbase", "cb-1", "ledgerlake_coinbase", {"currency": "USD"}), VenueCredentials("http://x")
    )
    extra = {"rate_limit": {"units": 5, "per_seconds": 1, "burst": 10}}
    chosen = resolve_rate_limit(venue, ExtractOptions(), VenueCredentials("http://x", extra=extra))
    assert chosen == RateLimit(5.0, 1.0, "key", 10.0)
    plain = {"rate_limit": {"units": 5, "per_seconds": 1}}
    assert resolve_rate_limit(venue, ExtractOptions(), VenueCredentials("http://x", extra=plain)).burst is None
    assert resolve_rate_limit(venue, ExtractOptions(), VenueCredentials("http://x")) == venue.rate_limit
