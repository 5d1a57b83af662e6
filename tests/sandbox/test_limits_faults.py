"""Rate limits (with the "fast" budgets), injected faults, and dropped entries."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import urllib3
from sandbox_client import (
    binance_get,
    coinbase_get,
    collect_coinbase,
    collect_exchangehubx,
    collect_pacifica,
    collect_sunx,
    pacifica_get,
    sunx_post,
    xhx_get,
)

from ledgerlake.interval import Interval
from ledgerlake.sandbox import FaultSpec, Sandbox

DAY = datetime(2026, 11, 18, tzinfo=UTC)


def burst(n: int, fn: Any) -> list[Any]:
    return [fn() for _ in range(n)]


def test_binance_weight_429_then_418_ban(sandbox_factory: Any) -> None:
    sb = sandbox_factory(rate_limits="fast")  # 4800 weight per 1 s window: two requests of 2400
    base, acc = sb.base_url("binance"), sb.accounts("binance")[0]
    # start at the beginning of a window so the burst stays inside one
    time.sleep(1 - time.time() % 1 + 0.01)
    answers = burst(6, lambda: binance_get(base, acc, {"type": "SPOT"}))
    statuses = [a.status for a in answers]
    assert statuses[:2] == [200, 200], statuses
    assert answers[0].headers["x-mbx-used-weight-1m"] == "2400"
    assert answers[1].headers["x-mbx-used-weight-1m"] == "4800"
    assert statuses[2] == 429 and "retry-after" in answers[2].headers
    assert answers[2].json()["code"] == -1003
    assert 418 in statuses, statuses  # a client that keeps going is banned
    ban = answers[statuses.index(418)].json()
    until = int(ban["msg"].split("banned until ")[1].split(".")[0])
    assert ban["code"] == -1003 and until > time.time() * 1000
    stats = sb.stats()["binance"]
    assert stats["429s"] >= 1 and stats["418s"] >= 1


def test_coinbase_burst_limit(sandbox_factory: Any) -> None:
    sb = sandbox_factory(rate_limits="fast")  # 5/s, burst 5
    base, acc = sb.base_url("coinbase"), sb.accounts("coinbase")[0]
    answers = burst(12, lambda: coinbase_get(base, acc, {"limit": 1}))
    limited = [a for a in answers if a.status == 429]
    assert limited and limited[0].json() == {"message": "Private rate limit exceeded"}
    assert answers[0].status == 200


def test_pacifica_credits_and_api_key(sandbox_factory: Any) -> None:
    sb = sandbox_factory(rate_limits="fast")  # 36 credits/s per IP (60 with a key), 12 per request
    base, acc = sb.base_url("pacifica"), sb.accounts("pacifica")[0]
    plain = [pacifica_get(base, {"account": acc.account, "limit": 1}).status for _ in range(6)]
    assert plain[:3] == [200] * 3 and 429 in plain
    keyed = [pacifica_get(base, {"account": acc.account, "limit": 1}, key=acc.api_key).status for _ in range(8)]
    assert keyed[:5] == [200] * 5 and 429 in keyed
    r = pacifica_get(base, {"account": acc.account, "limit": 1}, key=acc.api_key)
    assert r.json() == {"success": False, "data": None, "error": "Rate limit exceeded", "code": 429}


def test_sunx_per_uid_limit(sandbox_factory: Any) -> None:
    sb = sandbox_factory(rate_limits="fast")  # 6 reads per 1 s window per UID
    base = sb.base_url("sunx")
    a, b = sb.accounts("sunx")
    time.sleep(1 - time.time() % 1 + 0.01)
    pages = [sunx_post(base, a, {"mar_acct": "USDT", "direct": "next"}).json() for _ in range(8)]
    assert [p.get("code") for p in pages[:6]] == [200] * 6
    assert pages[7]["err-code"] == "base-request-exceed-frequency-limit"
    assert sunx_post(base, b, {"mar_acct": "USDT", "direct": "next"}).json()["code"] == 200  # per UID


def test_exchangehubx_default_limit(sandbox_factory: Any) -> None:
    sb = sandbox_factory(rate_limits="fast")
    base, acc = sb.base_url("exchangehubx"), sb.accounts("exchangehubx")[0]
    statuses = [xhx_get(base, acc, {"limit": 1}).status for _ in range(10)]
    assert statuses[0] == 200 and 429 in statuses


def test_limits_switch_off_at_run_time(sandbox_factory: Any) -> None:
    sb = sandbox_factory(rate_limits="fast")
    sb.set_rate_limits("off")
    base, acc = sb.base_url("coinbase"), sb.accounts("coinbase")[0]
    assert {coinbase_get(base, acc, {"limit": 1}).status for _ in range(15)} == {200}


@pytest.mark.parametrize(
    ("spec", "expect"),
    [
        (FaultSpec(error_5xx=1.0), "5xx"),
        (FaultSpec(burst_429=1.0), "429"),
        (FaultSpec(drop=1.0), "drop"),
        (FaultSpec(truncate=1.0), "truncate"),
        (FaultSpec(slow=1.0, slow_seconds=0.6), "slow"),
    ],
)
def test_faults_appear_when_switched_on(sandbox: Sandbox, spec: FaultSpec, expect: str) -> None:
    base, acc = sandbox.base_url("pacifica"), sandbox.accounts("pacifica")[0]
    url = f"{base}/api/v1/account/balance/history?account={acc.account}&limit=50"
    pool = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=1.0, read=0.3))
    assert pool.request("GET", url).status == 200
    sandbox.set_faults(spec)
    if expect in ("5xx", "429"):
        r = pool.request("GET", url)
        assert (r.status >= 500) if expect == "5xx" else (r.status == 429)
    elif expect == "slow":
        with pytest.raises(urllib3.exceptions.ReadTimeoutError):
            pool.request("GET", url)
    else:
        with pytest.raises(urllib3.exceptions.ProtocolError):
            pool.request("GET", url)
    sandbox.set_faults("none")
    time.sleep(0.4 if expect == "slow" else 0)
    assert pool.request("GET", url).status == 200
    if expect == "5xx":
        assert sandbox.stats()["pacifica"]["5xx_injected"] == 1


def test_flaky_profile_is_seeded(sandbox_factory: Any) -> None:
    def run() -> list[int]:
        sb = sandbox_factory(faults=FaultSpec(error_5xx=0.3, burst_429=0.1))
        base, acc = sb.base_url("pacifica"), sb.accounts("pacifica")[0]
        return [pacifica_get(base, {"account": acc.account, "limit": 1}).status for _ in range(30)]

    first = run()
    assert first == run() and set(first) - {200}


COLLECTORS = {
    "exchangehubx": collect_exchangehubx,
    "coinbase": collect_coinbase,
    "pacifica": collect_pacifica,
    "sunx": collect_sunx,
}


@pytest.mark.parametrize("venue", sorted(COLLECTORS))
def test_dropped_entries_are_missing_from_the_api_but_not_from_truth(sandbox: Sandbox, venue: str) -> None:
    base, acc = sandbox.base_url(venue), sandbox.accounts(venue)[0]
    day = Interval(DAY, DAY + timedelta(days=1))
    truth = sandbox.truth(venue, acc.account, day).to_pylist()
    lost = Interval(DAY + timedelta(hours=5), DAY + timedelta(hours=6))
    hidden = sandbox.drop_entries(venue, acc.account, lost)
    victim = truth[-1]["entry_id"]
    assert sandbox.drop_entries(venue, acc.account, [victim]) == 1
    got = COLLECTORS[venue](base, acc, DAY, DAY + timedelta(days=1))
    got_ids = {r["entry_id"] for r in got}
    assert hidden > 0 and len(got) == len(truth) - hidden - 1 and victim not in got_ids
    assert got_ids < {r["entry_id"] for r in truth}
    assert sandbox.truth(venue, acc.account, day).to_pylist() == truth
