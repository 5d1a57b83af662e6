"""What every sandbox venue shares: accounts, the clock, faults, statistics and ground-truth tables."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import numpy as np
import orjson
import pyarrow as pa

from ledgerlake.interval import Interval
from ledgerlake.sandbox.http import Request, Response
from ledgerlake.sandbox.ledger import Chunk, ChunkCache, LedgerModel, Stream, Visibility, h64, to_us
from ledgerlake.sandbox.options import FaultSpec, RateLimitSpec, SandboxOptions, fault_spec, rate_limit_spec
from ledgerlake.schema import DECIMAL, LEDGER_SCHEMA, RUN_COLUMNS, TIMESTAMP

TRUTH_SCHEMA = pa.schema([f for f in LEDGER_SCHEMA if f.name not in RUN_COLUMNS])


@dataclass
class SandboxAccount:
    """One venue account and the demo credentials that reach it."""

    account: str
    api_key: str
    api_secret: str
    passphrase: str = ""
    options: dict[str, Any] = field(default_factory=dict)  # the account's keys in include/accounts.yaml
    conn_id: str = ""


class State:
    """Sandbox-wide settings the venues read on every request (switchable at run time)."""

    def __init__(self, options: SandboxOptions) -> None:
        self.options = options
        self.seed = options.seed
        self.fixed_now = options.now
        start = options.now or datetime.now(UTC)
        self.first_day_ord = start.date().toordinal() - options.days
        self.faults: FaultSpec = fault_spec(options.faults)
        self.limits: RateLimitSpec = rate_limit_spec(options.rate_limits)
        self.limits_version = 0
        self.cache = ChunkCache(options.cache_mb << 20)  # generated and serialised entries of every stream

    def now(self) -> datetime:
        """The data's now: the fixed instant of the options, else the wall clock."""
        return self.fixed_now or datetime.now(UTC)

    def horizon_us(self) -> int:
        return to_us(self.now())

    @staticmethod
    def wall_ms() -> int:
        """Authentication clocks are always the wall clock: clients sign with real time."""
        return time.time_ns() // 1_000_000


def json_bytes(obj: Any) -> bytes:
    return orjson.dumps(obj)


def details_json(obj: dict[str, Any]) -> str:
    """The contract's JSON text rule for `details`."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def query_params(req: Request) -> dict[str, str]:
    """Decoded query parameters (last one wins on repeats)."""
    return dict(parse_qsl(req.query, keep_blank_values=True))


class Venue:
    """A venue's HTTP application. Subclasses implement `serve` and the venue's own error answers."""

    name = ""

    def __init__(self, state: State, accounts: list[SandboxAccount]) -> None:
        self.state = state
        self.accounts = accounts
        self.stats: Counter[str] = Counter()
        self._fault_rng = random.Random(h64(state.seed, self.name, "faults"))
        self._burst_left = 0

    # --- the request pipeline -------------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        self.stats["requests"] += 1
        spec = self.state.faults
        delay, fault = 0.0, None
        if spec.active:
            injected = self._inject(req, spec)
            if injected is not None:
                return self._count(injected)
            r = self._fault_rng.random
            if r() < spec.slow:
                delay = spec.slow_seconds
                self.stats["slow"] += 1
            if r() < spec.truncate:
                fault = "truncate"
                self.stats["truncated"] += 1
            if r() < spec.arrivals:
                self.arrive(spec.arrivals_count)
        resp = self.serve(req)
        resp.delay = max(resp.delay, delay)
        if fault and resp.status == 200:
            resp.fault = fault
        return self._count(resp)

    def _inject(self, req: Request, spec: FaultSpec) -> Response | None:
        r = self._fault_rng.random
        if self._burst_left > 0:
            self._burst_left -= 1
            return self.over_limit(1.0)
        if r() < spec.burst_429:
            self._burst_left = max(0, spec.burst_length - 1)
            return self.over_limit(1.0)
        if r() < spec.drop:
            self.stats["dropped"] += 1
            return Response(0, b"", fault="drop")
        if r() < spec.error_5xx:
            self.stats["5xx_injected"] += 1
            if r() < 0.5:
                return self.server_error()
            status = 502 if r() < 0.5 else 503
            page = f"<html><head><title>{status}</title></head><body><center><h1>{status}</h1></center></body></html>"
            return Response(status, page.encode(), content_type="text/html")
        return None

    def _count(self, resp: Response) -> Response:
        if resp.status == 429:
            self.stats["429s"] += 1
        elif resp.status == 418:
            self.stats["418s"] += 1
        elif resp.status in (401, 403):
            self.stats["auth_refused"] += 1
        return resp

    # --- to implement -----------------------------------------------------------------------------------
    def serve(self, req: Request) -> Response:
        raise NotImplementedError

    def server_error(self) -> Response:
        raise NotImplementedError

    def over_limit(self, retry_after: float) -> Response:
        raise NotImplementedError

    def arrive(self, count: int) -> None:
        """New entries become visible (ledger venues)."""

    def account(self, name: str) -> SandboxAccount:
        for acc in self.accounts:
            if acc.account == name:
                return acc
        known = [a.account for a in self.accounts]
        raise KeyError(f"sandbox venue {self.name} has no account {name!r}; it has {known}")


class LedgerVenue(Venue):
    """A venue whose endpoint lists ledger entries; one lazy stream per account."""

    time_res_us = 1000  # the venue's time stamps are milliseconds (Coinbase: microseconds)
    newest_first = True  # the order pages usually list entries in: serialised items are kept in that order

    def __init__(self, state: State, accounts: list[SandboxAccount]) -> None:
        super().__init__(state, accounts)
        self.streams: dict[str, Stream] = {}
        self.views: dict[str, Visibility] = {}
        for i, acc in enumerate(accounts):
            key = f"{self.name}/{acc.account}"
            stream = Stream(self.model_for(acc), state.seed, key, state.options.entries_per_day, cache=state.cache)
            self.streams[acc.account] = stream
            self.views[acc.account] = Visibility(stream, state.first_day_ord)
            self.setup_account(i, acc)

    def model_for(self, acc: SandboxAccount) -> LedgerModel:
        raise NotImplementedError

    def setup_account(self, index: int, acc: SandboxAccount) -> None:
        """Per-account precomputation (id bases and the like)."""

    def arrive(self, count: int) -> None:
        for view in self.views.values():
            view.arrived += count
        self.stats["arrived"] += count * len(self.views)

    # --- bounds -----------------------------------------------------------------------------------------
    def bounds(self, account: str) -> tuple[int, int]:
        """Positions the API shows now: [first entry of the history, horizon + arrivals)."""
        view = self.views[account]
        return self.retention_lo(account), view.hi(self.state.horizon_us())

    def retention_lo(self, account: str) -> int:
        return self.views[account].lo

    def pos_at(self, account: str, t_us: int) -> int:
        """First position whose venue time stamp (at the venue's resolution) is >= t_us."""
        res = self.time_res_us
        return self.streams[account].pos_ge(-(-t_us // res) * res)

    # --- truth ------------------------------------------------------------------------------------------
    def truth(self, account: str, interval: Interval) -> pa.Table:
        self.account(account)
        lo, hi = self.bounds(account)
        p0 = max(lo, self.pos_at(account, to_us(interval.start)))
        p1 = min(hi, self.pos_at(account, to_us(interval.end)))
        rows = [self.unified(account, pos, blk, j) for pos, blk, j in self.streams[account].walk(p0, max(p0, p1))]
        return truth_table(self.name, account, rows)

    def items_of(self, account: str, chunk: Chunk) -> tuple[bytes, np.ndarray]:
        """The chunk's entries as the venue's JSON text, serialised together once: (rows back to back, each
        followed by a comma, newest first where `newest_first`; the n + 1 offsets of the rows)."""
        items = chunk.items.get(self.name)
        if items is None:
            items = self.chunk_items(account, chunk, slice(None, None, -1) if self.newest_first else slice(None))
            chunk.set_items(self.name, items)
        return items

    def chunk_items(self, account: str, chunk: Chunk, order: slice) -> tuple[bytes, np.ndarray]:
        """Serialise the chunk's entries taken in `order` (text.Rows)."""
        raise NotImplementedError

    def item(self, account: str, pos: int, chunk: Chunk, j: int) -> bytes:
        """One entry as the venue's JSON text."""
        blob, offsets = self.items_of(account, chunk)
        s = chunk.n - 1 - j if self.newest_first else j
        return blob[offsets[s] : offsets[s + 1] - 1]

    def listing(self, account: str, p_from: int, p_to: int, newest_first: bool) -> bytes:
        """The items of every position p_from <= pos < p_to, comma-separated, newest or oldest first: slices of
        the chunks' serialised items, no per-entry work when the order is the one they are kept in."""
        pieces: list[bytes] = []
        for chunk, a, b in self.streams[account].spans(p_from, p_to):
            blob, offsets = self.items_of(account, chunk)
            n = chunk.n
            s0, s1 = (n - b, n - a) if self.newest_first else (a, b)
            if newest_first == self.newest_first:
                pieces.append(blob[offsets[s0] : offsets[s1] - 1])
            else:
                pieces.append(b",".join([blob[offsets[s] : offsets[s + 1] - 1] for s in range(s1 - 1, s0 - 1, -1)]))
        if newest_first:
            pieces.reverse()
        return b",".join(pieces)

    def prepare(self, account: str, interval: Interval) -> int:
        """Generate and serialise the entries of the interval ahead of requests (a benchmark does this before
        its clock starts); returns how many. They stay while the sandbox's cache (cache_mb) holds them."""
        self.account(account)
        p0 = self.pos_at(account, to_us(interval.start))
        p1 = self.pos_at(account, to_us(interval.end))
        for chunk, _, _ in self.streams[account].spans(p0, p1):
            self.items_of(account, chunk)
        return max(0, p1 - p0)

    def unified(self, account: str, pos: int, blk: Chunk, j: int) -> tuple[Any, ...]:
        """(entry_id, occurred_at_us, asset, amount, balance_before, balance_after, entry_type,
        venue_entry_type, reference_id, instrument, details) with decimals as exact text."""
        raise NotImplementedError

    def pos_of_entry_id(self, account: str, entry_id: str) -> int | None:
        """The position of an entry from its contract entry_id, where the id encodes it (None: unknown)."""
        return None

    def drop(self, account: str, target: Interval | Iterable[str]) -> int:
        """Hide entries from the API (the venue "lost" them); returns how many positions were hidden."""
        view = self.views[account]
        if isinstance(target, Interval):
            a = self.pos_at(account, to_us(target.start))
            b = self.pos_at(account, to_us(target.end))
            view.drop(a, b)
            return b - a
        wanted = set(target)
        lo, hi = self.bounds(account)
        hidden = 0
        direct = [self.pos_of_entry_id(account, entry_id) for entry_id in wanted]
        if all(p is not None for p in direct):  # ids that encode their position: no scan
            for p in direct:
                assert p is not None
                if lo <= p < hi:
                    view.drop(p, p + 1)
                    hidden += 1
            return hidden
        for pos, blk, j in self.streams[account].walk(lo, hi):  # id-less venues: scan what the API shows
            if self.unified(account, pos, blk, j)[0] in wanted:
                view.drop(pos, pos + 1)
                hidden += 1
        return hidden


def truth_table(venue: str, account: str, rows: list[tuple[Any, ...]]) -> pa.Table:
    cols: list[Any] = list(zip(*rows, strict=True)) if rows else [[] for _ in range(11)]
    n = len(rows)
    arrays = [
        pa.array([venue] * n, pa.string()),
        pa.array([account] * n, pa.string()),
        pa.array(cols[0], pa.string()),
        pa.array(range(n), pa.int64()),
        pa.array(cols[1], pa.int64()).cast(TIMESTAMP),
        pa.array(cols[2], pa.string()),
        pa.array(cols[3], pa.string()).cast(DECIMAL),
        pa.array(cols[4], pa.string()).cast(DECIMAL),
        pa.array(cols[5], pa.string()).cast(DECIMAL),
        pa.array(cols[6], pa.string()),
        pa.array(cols[7], pa.string()),
        pa.array(cols[8], pa.string()),
        pa.array(cols[9], pa.string()),
        pa.array(cols[10], pa.string()),
    ]
    return pa.Table.from_arrays(arrays, schema=TRUTH_SCHEMA)
