"""The sandbox: five venue servers on one event loop thread, their accounts, and the ground truth."""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Iterable
from typing import Any

import pyarrow as pa

from ledgerlake.interval import Interval
from ledgerlake.sandbox.binance import Binance
from ledgerlake.sandbox.coinbase import CURRENCIES, Coinbase
from ledgerlake.sandbox.exchangehubx import ExchangeHubX
from ledgerlake.sandbox.http import HttpServer
from ledgerlake.sandbox.ledger import h64
from ledgerlake.sandbox.options import FaultSpec, RateLimitSpec, SandboxOptions, fault_spec, rate_limit_spec
from ledgerlake.sandbox.pacifica import Pacifica, b58
from ledgerlake.sandbox.sunx import SunX
from ledgerlake.sandbox.venue import LedgerVenue, SandboxAccount, State, Venue
from ledgerlake.schema import VENUES

_CLASSES: dict[str, type[Venue]] = {
    "exchangehubx": ExchangeHubX,
    "binance": Binance,
    "pacifica": Pacifica,
    "coinbase": Coinbase,
    "sunx": SunX,
}


def _hex(seed: int, *parts: object, length: int = 32) -> str:
    out = ""
    i = 0
    while len(out) < length:
        out += f"{h64(seed, *parts, i):016x}"
        i += 1
    return out[:length]


def make_accounts(options: SandboxOptions) -> dict[str, list[SandboxAccount]]:
    """Deterministic demo accounts and credentials for every venue (one key per account where the venue
    identifies the account by its key; one Coinbase profile key for all Coinbase accounts)."""
    seed = options.seed
    out: dict[str, list[SandboxAccount]] = {v: [] for v in VENUES}
    cb_key = _hex(seed, "coinbase", "key")
    cb_secret = base64.b64encode(bytes.fromhex(_hex(seed, "coinbase", "secret", length=128))).decode()
    cb_pass = _hex(seed, "coinbase", "pass", length=12)
    for i in range(options.accounts_per_venue):
        out["exchangehubx"].append(
            SandboxAccount(
                account=f"xhx-futures-{i + 1}",
                api_key="ak_" + _hex(seed, "xhx", "key", i),
                api_secret="sk_" + _hex(seed, "xhx", "secret", i, length=64),
            )
        )
        out["binance"].append(
            SandboxAccount(
                account=f"binance-{i + 1}",
                api_key=_hex(seed, "binance", "key", i, length=64),
                api_secret=_hex(seed, "binance", "secret", i, length=64),
                options={"snapshot_types": ["SPOT", "MARGIN", "FUTURES"]},
            )
        )
        wallet = b58(h64(seed, "pacifica", "wallet", i) << 192 | int(_hex(seed, "pacifica", "w", i, length=48), 16))
        out["pacifica"].append(
            SandboxAccount(
                account=wallet,
                api_key="pf_" + _hex(seed, "pacifica", "key", i),
                api_secret="",
                options={"settlement_asset": "USDC"},
            )
        )
        h = _hex(seed, "coinbase", "account", i)
        out["coinbase"].append(
            SandboxAccount(
                account=f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}",
                api_key=cb_key,
                api_secret=cb_secret,
                passphrase=cb_pass,
                options={"currency": CURRENCIES[i % len(CURRENCIES)]},
            )
        )
        uid = 40_000_000 + h64(seed, "sunx", "uid", i) % 10_000_000
        k = _hex(seed, "sunx", "key", i)
        out["sunx"].append(
            SandboxAccount(
                account=f"sunx-uid-{uid}",
                api_key=f"{k[:8]}-{k[8:16]}-{k[16:24]}-{k[24:29]}",
                api_secret=_hex(seed, "sunx", "secret", i),
                options={"mar_acct": "USDT"},
            )
        )
    for venue, accounts in out.items():
        for i, acc in enumerate(accounts):
            acc.conn_id = f"ledgerlake_{venue}_{i}"
    return out


class Sandbox:
    """Local HTTP servers that behave like the five venues, with ground truth. Use as a context manager."""

    def __init__(self, options: SandboxOptions | None = None) -> None:
        self.options = options or SandboxOptions()
        self.state = State(self.options)
        self._accounts = make_accounts(self.options)
        self.venues: dict[str, Venue] = {v: _CLASSES[v](self.state, self._accounts[v]) for v in VENUES}
        self._servers: dict[str, HttpServer] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # --- life cycle -----------------------------------------------------------------------------------
    def start(self) -> Sandbox:
        if self._thread is not None:
            return self
        try:
            import uvloop

            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        except ImportError:  # pragma: no cover - uvloop ships with Airflow's uvicorn[standard]
            loop = asyncio.new_event_loop()
        self._loop = loop
        for i, venue in enumerate(VENUES):
            port = 0 if self.options.port_base is None else self.options.port_base + i
            self._servers[venue] = HttpServer(self.venues[venue].handle, self.options.host, port)
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                for server in self._servers.values():
                    loop.run_until_complete(server.start())
            except BaseException as exc:  # e.g. a fixed port already taken
                failure.append(exc)
                started.set()
                return
            started.set()
            loop.run_forever()
            for server in self._servers.values():
                loop.run_until_complete(server.stop())
            loop.close()

        self._thread = threading.Thread(target=run, name="ledgerlake-sandbox", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise RuntimeError(f"the sandbox could not start its servers: {failure[0]}") from failure[0]
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what clients need ------------------------------------------------------------------------------
    def base_url(self, venue: str) -> str:
        server = self._servers.get(venue)
        if server is None:
            raise RuntimeError(f"the sandbox is not running (or has no venue {venue!r})")
        host = self.options.host if self.options.host not in ("0.0.0.0", "") else "127.0.0.1"
        return f"http://{host}:{server.port}"

    def accounts(self, venue: str) -> list[SandboxAccount]:
        return list(self._accounts[venue])

    def connections(self) -> dict[str, dict[str, Any]]:
        """Airflow connections, one per account: {conn_id: {conn_type, host, login, password, extra}}."""
        out: dict[str, dict[str, Any]] = {}
        for venue in VENUES:
            for acc in self._accounts[venue]:
                extra: dict[str, Any] = {}
                if venue == "coinbase":
                    extra["passphrase"] = acc.passphrase
                out[acc.conn_id] = {
                    "conn_type": "http",
                    "host": self.base_url(venue),
                    "login": acc.api_key,
                    "password": acc.api_secret,
                    "extra": extra,
                }
        return out

    def accounts_config(self) -> dict[str, Any]:
        """The accounts in the include/accounts.yaml format."""
        venues: dict[str, Any] = {}
        for venue in VENUES:
            venues[venue] = {
                "accounts": [
                    {"account": acc.account, "conn_id": acc.conn_id, **acc.options} for acc in self._accounts[venue]
                ]
            }
        return {"venues": venues}

    # --- ground truth -----------------------------------------------------------------------------------
    def _ledger(self, venue: str) -> LedgerVenue:
        v = self.venues.get(venue)
        if not isinstance(v, LedgerVenue):
            raise ValueError(f"{venue!r} has no ledger (ledger venues: exchangehubx, pacifica, coinbase, sunx)")
        return v

    def truth(self, venue: str, account: str, interval: Interval) -> pa.Table:
        """The unified rows a correct pipeline ends with (LEDGER_SCHEMA minus raw_uri/ingested_at)."""
        return self._ledger(venue).truth(account, interval)

    def prepare(self, venue: str, account: str, interval: Interval) -> int:
        """Generate and serialise the account's entries of the interval now, so that serving them later costs
        only slicing (a benchmark calls this before its clock starts); returns how many entries. They stay
        while the cache (SandboxOptions.cache_mb, least recently used first) holds them."""
        return self._ledger(venue).prepare(account, interval)

    def snapshot_truth(self, account: str, interval: Interval) -> dict[str, pa.Table]:
        venue = self.venues["binance"]
        assert isinstance(venue, Binance)
        return venue.snapshot_truth(account, interval)

    # --- knobs ------------------------------------------------------------------------------------------
    def set_faults(self, profile: str | FaultSpec) -> None:
        self.state.faults = fault_spec(profile)

    def set_rate_limits(self, profile: str | RateLimitSpec) -> None:
        self.state.limits = rate_limit_spec(profile)

    def drop_entries(self, venue: str, account: str, target: Interval | Iterable[str]) -> int:
        """Silently leave entries out of what the API serves (truth unchanged); returns how many."""
        return self._ledger(venue).drop(account, target)

    def arrive(self, venue: str, count: int) -> None:
        """Make the next `count` entries of every account of the venue visible now (times after now)."""
        self._ledger(venue).arrive(count)

    def stats(self) -> dict[str, dict[str, int]]:
        keys = ("requests", "429s", "418s", "5xx_injected", "entries_served")
        return {v: {k: venue.stats.get(k, 0) for k in keys} | dict(venue.stats) for v, venue in self.venues.items()}
