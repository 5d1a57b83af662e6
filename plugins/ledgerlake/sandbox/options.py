"""Sandbox options: data size, fault profiles and rate-limit budgets."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class FaultSpec:
    """Probabilities per request (0..1) of each injected fault. All draws come from a seeded generator."""

    burst_429: float = 0.0  # start a burst of over-limit answers (the venue's own 429 body)
    burst_length: int = 3  # requests in one burst
    error_5xx: float = 0.0  # 500 with the venue's body, or a gateway's 502/503 HTML page
    slow: float = 0.0  # answer after `slow_seconds` (meant to be past the client's timeout)
    slow_seconds: float = 3.0
    drop: float = 0.0  # close the connection without an answer
    truncate: float = 0.0  # send a full Content-Length, half the body, then close
    arrivals: float = 0.0  # new entries become visible on the account being paged (times after now)
    arrivals_count: int = 3

    @property
    def active(self) -> bool:
        return any((self.burst_429, self.error_5xx, self.slow, self.drop, self.truncate, self.arrivals))


FAULT_PROFILES: dict[str, FaultSpec] = {
    "none": FaultSpec(),
    "flaky": FaultSpec(
        burst_429=0.03, error_5xx=0.04, slow=0.02, drop=0.02, truncate=0.02, arrivals=0.05, slow_seconds=3.0
    ),
}


def fault_spec(profile: str | FaultSpec) -> FaultSpec:
    if isinstance(profile, FaultSpec):
        return profile
    try:
        return FAULT_PROFILES[profile]
    except KeyError:
        raise ValueError(f"unknown fault profile {profile!r}; known: {', '.join(FAULT_PROFILES)}") from None


@dataclass(frozen=True)
class RateLimitSpec:
    """Budgets per venue. `enabled=False` switches every limit off."""

    enabled: bool = True
    # Binance: IP weight per fixed window. The /sapi IP budget is UNVERIFIED (6000/min is the /api figure and
    # the smaller of the two published numbers, so the safe default); the endpoint weighs 2400.
    binance_weight_budget: int = 6000
    binance_window_s: float = 60.0
    binance_request_weight: int = 2400
    binance_ban_after: int = 3  # over-limit requests in one window before the 418 ban
    binance_ban_s: float = 120.0  # the venue bans "from 2 minutes to 3 days"; we start at the minimum
    # Coinbase Exchange private endpoints: 15 requests/s per profile, bursts to 30 (token bucket).
    coinbase_rate: float = 15.0
    coinbase_burst: float = 30.0
    # Pacifica: credits per rolling window per IP, more with a PF-API-KEY. The cost of the balance-history GET
    # is UNVERIFIED ("a heavy GET costs up to 12 credits"): default the highest cost, the safe side.
    pacifica_credits: float = 125.0
    pacifica_credits_with_key: float = 300.0
    pacifica_window_s: float = 60.0
    pacifica_cost: float = 12.0
    # SunX: 72 read requests per 3 s per UID.
    sunx_reads: int = 72
    sunx_window_s: float = 3.0
    # exchangeHubX publishes no limit (UNVERIFIED): a sane default of 10 requests/s per key, bursts to 20.
    exchangehubx_rate: float = 10.0
    exchangehubx_burst: float = 20.0


RATE_LIMIT_PROFILES: dict[str, RateLimitSpec] = {
    "documented": RateLimitSpec(),
    "off": RateLimitSpec(enabled=False),
    # Small budgets and short windows, so tests meet every limit within a second or two.
    "fast": RateLimitSpec(
        binance_weight_budget=4800,
        binance_window_s=1.0,
        binance_ban_after=2,
        binance_ban_s=1.0,
        coinbase_rate=5.0,
        coinbase_burst=5.0,
        pacifica_credits=36.0,
        pacifica_credits_with_key=60.0,
        pacifica_window_s=1.0,
        sunx_reads=6,
        sunx_window_s=1.0,
        exchangehubx_rate=5.0,
        exchangehubx_burst=5.0,
    ),
}


def rate_limit_spec(profile: str | RateLimitSpec) -> RateLimitSpec:
    if isinstance(profile, RateLimitSpec):
        return profile
    try:
        return RATE_LIMIT_PROFILES[profile]
    except KeyError:
        raise ValueError(f"unknown rate-limit profile {profile!r}; known: {', '.join(RATE_LIMIT_PROFILES)}") from None


@dataclass(frozen=True)
class SandboxOptions:
    seed: int = 7
    accounts_per_venue: int = 2
    days: int = 10  # whole UTC days of history before today's date (today up to now comes on top)
    entries_per_day: int = 500  # per ledger account and UTC day
    faults: str | FaultSpec = "none"
    rate_limits: str | RateLimitSpec = "documented"
    # The instant the sandbox treats as now. None: the wall clock, and today's entries keep arriving as it runs.
    now: datetime | None = None
    host: str = "127.0.0.1"
    port_base: int | None = None  # fixed ports port_base+0..4 in VENUES order; None: free ports
    # Bytes of generated and serialised entries kept for all accounts (least recently used go first); 1200 MB
    # holds one 1M-entry day of each ledger venue (~1.1 GB) with the process under 1.5 GB.
    cache_mb: int = 1200
    # Venue behaviours the documents leave open (each UNVERIFIED; see the venue modules).
    pacifica_paging: str = "offset"  # "offset" (the document here) or "cursor" (the venue's newer docs)
    pacifica_max_limit: int = 1000
    sunx_page_size: int = 100
    sunx_default_direct: str = "next"
    sunx_error_http_status: int = 200  # HTX-family gateways answer errors with HTTP 200 and an error body
    exchangehubx_recv_window_ms: int = 5000
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.now is not None and self.now.tzinfo is None:
            raise ValueError("SandboxOptions.now must be an aware UTC datetime")
        if self.now is not None:
            object.__setattr__(self, "now", self.now.astimezone(UTC))
        if self.entries_per_day < 4:
            raise ValueError("entries_per_day must be at least 4")
        if self.cache_mb < 1:
            raise ValueError("cache_mb must be at least 1")
        if self.accounts_per_venue < 1 or self.days < 0:
            raise ValueError("accounts_per_venue must be >= 1 and days >= 0")
        if self.pacifica_paging not in ("offset", "cursor"):
            raise ValueError("pacifica_paging must be 'offset' or 'cursor'")
        if self.sunx_default_direct not in ("next", "prev"):
            raise ValueError("sunx_default_direct must be 'next' or 'prev'")
        fault_spec(self.faults)
        rate_limit_spec(self.rate_limits)

    def with_(self, **changes: Any) -> SandboxOptions:
        return replace(self, **changes)
