"""exchangeHubX futures: GET /fapi/v1/account/logs (venue-docs/exchangehubx-futures-account-logs.txt).

UNVERIFIED choices (the document is silent): items come newest first; start_time and end_time are inclusive;
the cursor is an opaque string; error answers use the `{code, message, data}` envelope with the HTTP status
as `code`; the rate limit is 10 requests/s per key with bursts to 20 (RateLimitSpec).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import numpy as np
import orjson

from ledgerlake.sandbox.http import Request, Response
from ledgerlake.sandbox.ledger import Chunk, Kind, LedgerModel, fmt_units
from ledgerlake.sandbox.ratelimit import TokenBucket
from ledgerlake.sandbox.text import Rows
from ledgerlake.sandbox.venue import LedgerVenue, SandboxAccount, State, details_json, query_params

PATH = "/fapi/v1/account/logs"

# code: (weight, sign, low, high, related_type, remark)
_TYPES: dict[int, tuple[float, int, float, float, int, str]] = {
    1: (0.3, 1, 2.0, 4.0, 0, "Deposit"),
    2: (0.3, -1, 2.0, 4.0, 0, "Withdrawal"),
    3: (4.0, -1, -3.0, 1.0, 2, "Trading fee"),
    4: (3.0, 0, -1.0, 3.0, 2, "Realized PnL from closing position"),
    5: (2.0, 0, -2.0, 1.0, 3, "Funding fee"),
    6: (0.1, -1, 1.0, 3.0, 1, "Liquidation loss"),
    7: (0.3, 1, 1.0, 4.0, 0, "Transfer in from spot"),
    8: (0.3, -1, 1.0, 4.0, 0, "Transfer out to spot"),
    9: (1.0, 1, 0.0, 3.0, 1, "Unfreeze after order cancellation"),
    10: (1.0, 1, -3.0, 0.0, 2, "Maker rebate"),
    11: (2.0, -1, 0.0, 3.0, 1, "Freeze order margin"),
    12: (1.5, -1, -3.0, 0.0, 1, "Freeze order fee"),
    13: (1.5, 1, 0.0, 3.0, 2, "Margin refund after trade"),
    14: (1.0, 1, -3.0, 0.0, 1, "Unfreeze order fee"),
    15: (0.5, 0, 0.0, 3.0, 2, "Close position settlement"),
    16: (0.05, -1, 0.0, 2.0, 1, "Bankruptcy loss"),
}

# The contract's change_type -> entry_type table (our own copy, from the contract text).
ENTRY_TYPES = {
    1: "deposit", 2: "withdrawal", 3: "fee", 4: "realized_pnl", 5: "funding", 6: "liquidation",
    7: "transfer", 8: "transfer", 9: "trade", 10: "rebate", 11: "trade", 12: "trade", 13: "trade",
    14: "trade", 15: "settlement", 16: "liquidation",
}  # fmt: skip

_SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT")
_CODES = tuple(_TYPES)
MODEL = LedgerModel(
    kinds=tuple(Kind(str(c), w, s, lo, hi) for c, (w, s, lo, hi, _, _) in _TYPES.items()),
    assets=("USDT", "USDC", "BTC"),
    asset_factor=(1.0, 1.0, 2e-5),
    asset_weights=(6.0, 2.0, 1.0),
    decimals=18,
    credit_code="7",
    debit_code="8",
    precisions=(2, 4, 8, 18),
)


def _remark(code: int, aux: int) -> str:
    text = _TYPES[code][5]
    if _TYPES[code][4] in (1, 2):
        text = f"{text} {_SYMBOLS[aux % len(_SYMBOLS)]}"
    if code == 5 and aux % 7 == 0:
        text = "资金费用 " + _SYMBOLS[aux % len(_SYMBOLS)]  # venues do send non-ASCII remarks
    return text


# Columns of the serialiser, from the per-entry definitions above: by kind, and remarks by (kind, aux % 4,
# aux % 7 == 0) (what _remark reads of aux), each from an aux that has those residues.
_RELATED = np.array([_TYPES[c][4] for c in _CODES])
_REMARKS = [
    orjson.dumps(_remark(c, next(x for x in range(28) if x % 4 == s and (x % 7 == 0) == z)))
    for c in _CODES
    for s in range(4)
    for z in (False, True)
]
_ASSETS = tuple(a.encode() for a in MODEL.assets)


class ExchangeHubX(LedgerVenue):
    name = "exchangehubx"

    def __init__(self, state: State, accounts: list[SandboxAccount]) -> None:
        self.id_base: dict[str, int] = {}
        self.by_key = {a.api_key: a for a in accounts}
        self.buckets: dict[str, TokenBucket] = {}
        super().__init__(state, accounts)

    def model_for(self, acc: SandboxAccount) -> LedgerModel:
        return MODEL

    def setup_account(self, index: int, acc: SandboxAccount) -> None:
        self.id_base[acc.account] = (index + 1) * 10**12

    def pos_of_entry_id(self, account: str, entry_id: str) -> int | None:
        return int(entry_id) - self.id_base[account] if entry_id.isdigit() else None

    # --- entry fields ---------------------------------------------------------------------------------
    def _fields(self, account: str, pos: int, blk: Chunk, j: int) -> tuple[Any, ...]:
        code = _CODES[blk.kinds[j]]
        aux = blk.aux[j]
        related_type = _TYPES[code][4]
        related_id = 0 if related_type == 0 else 10**8 + aux % 9 * 10**8 + (aux >> 8) % 10**8
        amount = blk.amounts[j]
        before = blk.balances_before[j]
        return (
            self.id_base[account] + pos,
            MODEL.assets[blk.assets[j]],
            code,
            fmt_units(amount, 18, strip=True),
            fmt_units(before, 18, strip=True),
            fmt_units(before + amount, 18, strip=True),
            related_id,
            related_type,
            _remark(code, aux),
            blk.times[j] // 1000,
        )

    def chunk_items(self, account: str, chunk: Chunk, order: slice) -> tuple[bytes, np.ndarray]:
        kind = chunk.kind_i[order].astype(np.intp)
        aux = chunk.aux_i[order]
        amount, before = chunk.amount.take(order), chunk.before.take(order)
        related = _RELATED[kind]
        related_id = np.where(related == 0, 0, 10**8 + aux % 9 * 10**8 + (aux >> 8) % 10**8)
        remark = kind * 8 + (aux % 4) * 2 + (aux % 7 == 0)
        ids = self.id_base[account] + chunk.first + np.arange(chunk.n, dtype=np.int64)[order]
        rows = Rows(chunk.n).const(b'{"id":').integer(ids).const(b',"asset":"')
        rows.choice(_ASSETS, chunk.asset_i[order].astype(np.intp)).const(b'","change_type":')
        rows.choice([str(c).encode() for c in _CODES], kind)
        rows.const(b',"amount":"').units(amount.whole, amount.frac, 18, strip=True)
        rows.const(b'","balance_before":"').units(before.whole, before.frac, 18, strip=True)
        after = before + amount
        rows.const(b'","balance_after":"').units(after.whole, after.frac, 18, strip=True)
        rows.const(b'","related_id":').integer(related_id).const(b',"related_type":').integer(related)
        rows.const(b',"remark":').choice(_REMARKS, remark).const(b',"created_at":')
        return rows.integer(chunk.t_us[order] // 1000).const(b"},").pack()

    def unified(self, account: str, pos: int, blk: Chunk, j: int) -> tuple[Any, ...]:
        f = self._fields(account, pos, blk, j)
        return (
            str(f[0]),
            f[9] * 1000,
            f[1],
            f[3],
            f[4],
            f[5],
            ENTRY_TYPES.get(f[2], "other"),
            str(f[2]),
            str(f[6]) if f[6] else None,
            None,
            details_json({"related_type": f[7], "remark": f[8]}),
        )

    # --- HTTP -------------------------------------------------------------------------------------------
    @staticmethod
    def _error(status: int, message: str) -> Response:
        return Response(status, orjson.dumps({"code": status, "message": message, "data": None}))

    def server_error(self) -> Response:
        return self._error(500, "internal server error")

    def over_limit(self, retry_after: float) -> Response:
        resp = self._error(429, "too many requests")
        resp.headers.append(("Retry-After", str(max(1, round(retry_after)))))
        return resp

    def authenticate(self, req: Request) -> SandboxAccount | Response:
        h = req.headers
        for name in ("validate-algorithms", "validate-appkey", "validate-timestamp", "validate-signature"):
            if not h.get(name):
                return self._error(401, f"missing header {name}")
        if h["validate-algorithms"] != "HmacSHA256":
            return self._error(401, "unsupported validate-algorithms")
        acc = self.by_key.get(h["validate-appkey"])
        if acc is None:
            return self._error(401, "invalid appkey")
        try:
            ts = int(h["validate-timestamp"])
            window = int(h.get("validate-recvwindow") or self.state.options.exchangehubx_recv_window_ms)
        except ValueError:
            return self._error(401, "invalid validate-timestamp or validate-recvwindow")
        now = self.state.wall_ms()
        if window <= 0 or window > 60_000 or now - ts > window or ts - now > 1000:
            return self._error(401, "request expired: validate-timestamp is outside validate-recvwindow")
        expected = sign(req.method, req.path, req.query, req.body.decode(), h, acc.api_secret)
        if not hmac.compare_digest(expected, h["validate-signature"].lower()):
            return self._error(401, "signature verification failed")
        return acc

    def serve(self, req: Request) -> Response:
        if req.path != PATH:
            return self._error(404, "not found")
        if req.method != "GET":
            return self._error(405, "method not allowed")
        acc = self.authenticate(req)
        if isinstance(acc, Response):
            return acc
        limits = self.state.limits
        if limits.enabled:
            bucket = self.buckets.get(acc.api_key)
            if bucket is None or (bucket.rate, bucket.burst) != (limits.exchangehubx_rate, limits.exchangehubx_burst):
                bucket = self.buckets[acc.api_key] = TokenBucket(limits.exchangehubx_rate, limits.exchangehubx_burst)
            if not bucket.try_take():
                return self.over_limit(bucket.retry_after())
        params = query_params(req)
        try:
            limit = int(params.get("limit", "100"))
            change_type = int(params["change_type"]) if params.get("change_type") else None
            start = int(params["start_time"]) if params.get("start_time") else None
            end = int(params["end_time"]) if params.get("end_time") else None
            cursor = int(params["cursor"]) if params.get("cursor") else None
        except ValueError:
            return self._error(400, "invalid parameter: limit, change_type, start_time, end_time must be integers")
        if not 1 <= limit <= 100:
            return self._error(400, "invalid parameter: limit must be between 1 and 100")
        if change_type is not None and change_type not in _TYPES:
            return self._error(400, "invalid parameter: change_type must be between 1 and 16")
        if start is not None and end is not None and start > end:
            return self._error(400, "invalid parameter: start_time is after end_time")
        account = acc.account
        lo, hi = self.bounds(account)
        if start is not None:
            lo = max(lo, self.pos_at(account, start * 1000))
        if end is not None:
            hi = min(hi, self.pos_at(account, (end + 1) * 1000))
        if cursor is not None:
            hi = min(hi, cursor - self.id_base[account])
        view = self.views[account]
        stream = self.streams[account]
        wanted = None if change_type is None else _CODES.index(change_type)
        if wanted is None and not view.dropped:  # a contiguous run of positions: slices of serialised chunks
            count = max(0, min(limit, hi - lo))
            listed = self.listing(account, hi - count, hi, newest_first=True) if count else b""
            last = hi - count if count else hi
        else:
            items: list[bytes] = []
            last = hi
            for pos, blk, j in stream.walk_desc(hi, lo):
                if len(items) == limit:
                    break
                last = pos
                if wanted is not None and blk.kinds[j] != wanted:
                    continue
                if view.dropped and view.is_dropped(pos):
                    continue
                items.append(self.item(account, pos, blk, j))
            count, listed = len(items), b",".join(items)
        has_more = count == limit and last > lo
        next_cursor = str(self.id_base[account] + last) if has_more else ""
        self.stats["entries_served"] += count
        body = (
            b'{"code":0,"message":"success","data":{"has_more":'
            + (b"true" if has_more else b"false")
            + b',"next_cursor":"'
            + next_cursor.encode()
            + b'","items":['
            + listed
            + b"]}}"
        )
        return Response(200, body)


def sign(method: str, path: str, query: str, body: str, headers: dict[str, str], secret: str) -> str:
    """exchangeHubX's signature, written from the venue's signature rules (README, examples/000)."""
    from urllib.parse import parse_qsl

    x = "&".join(
        f"{k}={v}" for k, v in sorted(headers.items()) if k.startswith("validate-") and k != "validate-signature"
    )
    y = f"#{method}#{path}"
    if query:
        y += "#" + "&".join(f"{k}={v}" for k, v in sorted(parse_qsl(query, keep_blank_values=True)))
    if body:
        y += "#" + body
    return hmac.new(secret.encode(), (x + y).encode(), hashlib.sha256).hexdigest()
