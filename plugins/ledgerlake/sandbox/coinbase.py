"""Coinbase Exchange: GET /accounts/{account_id}/ledger (venue-docs/coinbase-exchange-account-ledger.txt).

Newest first; `after=<CB-AFTER>` pages older, `before=<CB-BEFORE>` newer; without start_date and end_date
only the last day; both dates inclusive; created_at with microseconds; one API key (profile) reaches all the
profile's accounts. UNVERIFIED choices: `limit` above 1000 is refused with 400 (Coinbase documents 1000 as
the maximum page size of its paginated endpoints); unknown account ids answer 404 {"message":"NotFound"}.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import orjson

from ledgerlake.sandbox.http import Request, Response
from ledgerlake.sandbox.ledger import DAY_US, UNIX_EPOCH_ORD, Chunk, Kind, LedgerModel, fmt_units, to_us
from ledgerlake.sandbox.ratelimit import TokenBucket
from ledgerlake.sandbox.text import Rows
from ledgerlake.sandbox.venue import LedgerVenue, SandboxAccount, State, details_json, query_params

_PATH = re.compile(r"^/accounts/([^/]+)/ledger$")
KINDS = (
    Kind("transfer", 1.0, 0, 1.0, 4.0),
    Kind("match", 5.0, 0, -1.0, 3.0),
    Kind("fee", 4.0, -1, -3.0, 1.0),
    Kind("rebate", 0.5, 1, -4.0, 0.0),
    Kind("conversion", 0.5, 0, 1.0, 4.0),
)
ENTRY_TYPES = {"transfer": "transfer", "match": "trade", "fee": "fee", "rebate": "rebate", "conversion": "trade"}
CURRENCIES = ("USD", "BTC", "ETH", "USDC")
_FACTOR = {"USD": 1.0, "USDC": 1.0, "BTC": 2e-5, "ETH": 4e-4}
_PRODUCTS = {
    "USD": ("BTC-USD", "ETH-USD", "SOL-USD"),
    "USDC": ("BTC-USDC", "ETH-USDC"),
    "BTC": ("BTC-USD", "ETH-BTC", "BTC-USDC"),
    "ETH": ("ETH-USD", "ETH-BTC", "ETH-DAI"),
}
_DATE_FORMATS = re.compile(
    r"^\d{4}-\d{2}-\d{2}"  # 2006-01-02
    r"(T\d{2}:\d{2}:\d{2}"  # 2006-01-02T15:04:05
    r"(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})?)?$"  # RFC3339 fraction and zone (a fraction needs a zone)
)
ID_BASE = 10**10


def _model(currency: str) -> LedgerModel:
    return LedgerModel(
        kinds=KINDS,
        assets=(currency,),
        asset_factor=(_FACTOR.get(currency, 1.0),),
        asset_weights=(1.0,),
        decimals=16,
        credit_code="transfer",
        debit_code="transfer",
        precisions=(2, 6, 8, 16),
    )


_MASK128 = (1 << 128) - 1


def _uuid(aux: int, tag: int) -> str:
    """A version-4 looking UUID derived from the entry's random bits (multiplicative mixing: fast, stable)."""
    mixed = ((aux + 1) * 0x9E3779B97F4A7C15F39CC0605CEDC835 ^ tag * 0xD1B54A32D192ED03) * 0xFF51AFD7ED558CCD
    h = f"{mixed & _MASK128:032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


_MUL1, _MUL2, _MUL3 = 0x9E3779B97F4A7C15F39CC0605CEDC835, 0xD1B54A32D192ED03, 0xFF51AFD7ED558CCD
_M32 = np.uint64(0xFFFFFFFF)
_HEX2 = np.array([list(f"{i:02x}".encode()) for i in range(256)], dtype=np.uint8)
_VARIANT = np.zeros(256, dtype=np.uint8)  # a hex digit -> '89ab'[its value & 3]
for _c in "0123456789abcdef":
    _VARIANT[ord(_c)] = ord("89ab"[int(_c, 16) & 3])


def _mul128(a: list[np.ndarray | None], b: int) -> list[np.ndarray]:
    """a * b mod 2**128; a as four 32-bit limbs in uint64 arrays, low first (None: zero), b a constant."""
    n = len(next(x for x in a if x is not None))
    cols = [np.zeros(n, dtype=np.uint64) for _ in range(4)]
    for i, ai in enumerate(a):
        for j in range(4 - i):
            bj = (b >> (32 * j)) & 0xFFFFFFFF
            if ai is None or not bj:
                continue
            p = ai * np.uint64(bj)  # < 2**64
            cols[i + j] += p & _M32
            if i + j < 3:
                cols[i + j + 1] += p >> np.uint64(32)
    out: list[np.ndarray] = []
    carry = np.zeros(n, dtype=np.uint64)
    for col in cols:
        col += carry
        out.append(col & _M32)
        carry = col >> np.uint64(32)
    return out


def _uuids(aux: np.ndarray, tag: int) -> np.ndarray:
    """_uuid for many entries at once: an (n, 36) byte matrix."""
    x = (aux + 1).astype(np.uint64)
    mixed = _mul128([x & _M32, x >> np.uint64(32), None, None], _MUL1)
    t = tag * _MUL2
    mixed = [limb ^ np.uint64((t >> (32 * i)) & 0xFFFFFFFF) for i, limb in enumerate(mixed)]
    mixed = _mul128(list(mixed), _MUL3)
    octets = [(limb >> np.uint64(s)) & np.uint64(255) for limb in mixed[::-1] for s in (24, 16, 8, 0)]
    h = np.concatenate([np.take(_HEX2, o, axis=0) for o in octets], axis=1)
    dash = np.full((len(aux), 1), ord("-"), dtype=np.uint8)
    four = np.full((len(aux), 1), ord("4"), dtype=np.uint8)
    variant = np.take(_VARIANT, h[:, 16])[:, None]
    return np.concatenate(
        [h[:, :8], dash, h[:, 8:12], dash, four, h[:, 13:16], dash, variant, h[:, 17:20], dash, h[:, 20:]], axis=1
    )


_KIND_TEXT = [k.code.encode() for k in KINDS]
# details layouts (see Coinbase._details): 0 order/product/trade, 1 from/profile transfer/to, 2 transfer, 3 conversion
_LAYOUT = np.array([{"match": 0, "fee": 0, "rebate": 0, "transfer": 1, "conversion": 3}[k.code] for k in KINDS])


def parse_date(text: str) -> datetime | None:
    """The three formats the document accepts; None for anything else (a 400)."""
    m = _DATE_FORMATS.match(text)
    if not m or (m.group(2) and not m.group(3)):
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value if value > datetime(1970, 1, 1, tzinfo=UTC) else None


class Coinbase(LedgerVenue):
    name = "coinbase"
    time_res_us = 1

    def __init__(self, state: State, accounts: list[SandboxAccount]) -> None:
        self.index = {a.account: i for i, a in enumerate(accounts)}
        self.bucket: TokenBucket | None = None
        super().__init__(state, accounts)

    def model_for(self, acc: SandboxAccount) -> LedgerModel:
        return _model(acc.options["currency"])

    # --- ids: global across the profile's accounts, increasing with time in each -----------------------
    def entry_id(self, account: str, pos: int) -> int:
        return ID_BASE + pos * len(self.accounts) + self.index[account]

    def first_pos_with_id_at_least(self, account: str, value: int) -> int:
        n, a = len(self.accounts), self.index[account]
        return -(-(value - ID_BASE - a) // n)

    def pos_of_entry_id(self, account: str, entry_id: str) -> int | None:
        if not entry_id.isdigit():
            return None
        pos, rest = divmod(int(entry_id) - ID_BASE - self.index[account], len(self.accounts))
        return pos if rest == 0 else None

    # --- entry fields ---------------------------------------------------------------------------------
    @staticmethod
    def _details(kind: str, aux: int, amount: int, products: tuple[str, ...]) -> dict[str, str]:
        if kind in ("match", "fee", "rebate"):
            return {
                "order_id": _uuid(aux, 1),
                "product_id": products[aux % len(products)],
                "trade_id": str(1_000_000 + (aux >> 20) % 900_000_000),
            }
        if kind == "transfer" and aux % 3:
            return {"from": _uuid(aux, 2), "profile_transfer_id": _uuid(aux, 3), "to": _uuid(aux, 4)}
        if kind == "transfer":
            return {"transfer_id": _uuid(aux, 5), "transfer_type": "deposit" if amount > 0 else "withdraw"}
        return {"conversion_id": _uuid(aux, 6)}

    def _fields(self, account: str, pos: int, blk: Chunk, j: int) -> tuple[Any, ...]:
        kind = KINDS[blk.kinds[j]].code
        currency = self.accounts[self.index[account]].options["currency"]
        amount = blk.amounts[j]
        details = self._details(kind, blk.aux[j], amount, _PRODUCTS.get(currency, ("BTC-USD",)))
        return (
            str(self.entry_id(account, pos)),
            fmt_units(amount, 16),
            fmt_units(blk.balances_before[j] + amount, 16),
            blk.times[j],
            kind,
            details,
            currency,
        )

    def chunk_items(self, account: str, chunk: Chunk, order: slice) -> tuple[bytes, np.ndarray]:
        n = chunk.n
        kind = chunk.kind_i[order].astype(np.intp)
        aux = chunk.aux_i[order]
        amount = chunk.amount.take(order)
        balance = chunk.before.take(order) + amount
        t_us = chunk.t_us[order]
        ids = self.entry_id(account, chunk.first) + np.arange(n, dtype=np.int64)[order] * len(self.accounts)
        day0 = t_us[0] // DAY_US * DAY_US  # a chunk lies inside one UTC day
        of_day = t_us - day0
        stamp_day = date.fromordinal(UNIX_EPOCH_ORD + int(day0 // DAY_US)).isoformat().encode()
        rows = Rows(n).const(b'{"id":"').integer(ids).const(b'","amount":"').units(amount.whole, amount.frac, 16)
        rows.const(b'","balance":"').units(balance.whole, balance.frac, 16)
        rows.const(b'","created_at":"' + stamp_day + b"T").digits(of_day // 3_600_000_000, 2)
        rows.const(b":").digits(of_day // 60_000_000 % 60, 2).const(b":").digits(of_day // 1_000_000 % 60, 2)
        rows.const(b".").digits(of_day % 1_000_000, 6).const(b'Z","type":"').choice(_KIND_TEXT, kind)
        rows.const(b'","details":').band(*self._details_matrix(account, kind, aux, amount.positive()))
        return rows.const(b"},").pack()

    def _details_matrix(
        self, account: str, kind: np.ndarray, aux: np.ndarray, credit: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The details objects (as _details and orjson write them), one layout at a time, merged by row."""
        currency = self.accounts[self.index[account]].options["currency"]
        products = [p.encode() for p in _PRODUCTS.get(currency, ("BTC-USD",))]
        layout = _LAYOUT[kind]
        layout[(layout == 1) & (aux % 3 == 0)] = 2
        built: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] = []
        for which in range(4):
            rows_at = np.flatnonzero(layout == which)
            if not len(rows_at):
                continue
            a = aux[rows_at]
            sub = Rows(len(rows_at))
            if which == 0:
                sub.const(b'{"order_id":"').band(_uuids(a, 1)).const(b'","product_id":"')
                sub.choice(products, a % len(products)).const(b'","trade_id":"')
                sub.integer(1_000_000 + (a >> 20) % 900_000_000)
            elif which == 1:
                sub.const(b'{"from":"').band(_uuids(a, 2)).const(b'","profile_transfer_id":"').band(_uuids(a, 3))
                sub.const(b'","to":"').band(_uuids(a, 4))
            elif which == 2:
                sub.const(b'{"transfer_id":"').band(_uuids(a, 5)).const(b'","transfer_type":"')
                sub.choice((b"withdraw", b"deposit"), credit[rows_at].astype(np.intp))
            else:
                sub.const(b'{"conversion_id":"').band(_uuids(a, 6))
            built.append((rows_at, *sub.const(b'"}').matrix()))
        width = max(m.shape[1] for _, m, _ in built)
        matrix = np.zeros((len(kind), width), dtype=np.uint8)
        keep = np.zeros((len(kind), width), dtype=bool)
        for rows_at, m, k in built:
            matrix[rows_at, : m.shape[1]] = m
            keep[rows_at, : m.shape[1]] = True if k is None else k
        return matrix, keep

    def unified(self, account: str, pos: int, blk: Chunk, j: int) -> tuple[Any, ...]:
        f = self._fields(account, pos, blk, j)
        d = f[5]
        ref = d.get("trade_id") or d.get("profile_transfer_id") or d.get("transfer_id")
        return (
            f[0],
            f[3],
            f[6],
            f[1],
            None,
            f[2],
            ENTRY_TYPES.get(f[4], "other"),
            f[4],
            ref,
            d.get("product_id"),
            details_json({"details": d}),
        )

    # --- HTTP -------------------------------------------------------------------------------------------
    @staticmethod
    def _error(status: int, message: str) -> Response:
        return Response(status, orjson.dumps({"message": message}))

    def server_error(self) -> Response:
        return self._error(500, "Internal server error")

    def over_limit(self, retry_after: float) -> Response:
        return self._error(429, "Private rate limit exceeded")

    def authenticate(self, req: Request) -> Response | None:
        h = req.headers
        for name in ("cb-access-key", "cb-access-sign", "cb-access-timestamp", "cb-access-passphrase"):
            if not h.get(name):
                return self._error(400, f"{name.upper()} header is required")
        try:
            ts = float(h["cb-access-timestamp"])
        except ValueError:
            return self._error(400, "invalid timestamp")
        if abs(self.state.wall_ms() / 1000 - ts) > 30:
            return self._error(401, "request timestamp expired")
        acc = self.accounts[0]  # one profile: every account shares its key
        if not hmac.compare_digest(h["cb-access-key"], acc.api_key):
            return self._error(401, "Invalid API Key")
        if not hmac.compare_digest(h["cb-access-passphrase"], acc.passphrase):
            return self._error(401, "Invalid Passphrase")
        message = h["cb-access-timestamp"] + req.method + req.target + req.body.decode()
        try:
            key = base64.b64decode(acc.api_secret)
        except ValueError:
            return self._error(401, "invalid signature")
        expected = base64.b64encode(hmac.new(key, message.encode(), hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(expected, h["cb-access-sign"]):
            return self._error(401, "invalid signature")
        return None

    def serve(self, req: Request) -> Response:
        m = _PATH.match(req.path)
        if not m:
            return self._error(404, "NotFound")
        if req.method != "GET":
            return self._error(405, "method not allowed")
        refused = self.authenticate(req)
        if refused is not None:
            return refused
        limits = self.state.limits
        if limits.enabled:
            if self.bucket is None or (self.bucket.rate, self.bucket.burst) != (
                limits.coinbase_rate,
                limits.coinbase_burst,
            ):
                self.bucket = TokenBucket(limits.coinbase_rate, limits.coinbase_burst)
            if not self.bucket.try_take():
                return self.over_limit(self.bucket.retry_after())
        account = m.group(1)
        if account not in self.index:
            return self._error(404, "NotFound")
        params = query_params(req)
        try:
            limit = int(params.get("limit", "100"))
        except ValueError:
            return self._error(400, "Invalid limit")
        if not 1 <= limit <= 1000:
            return self._error(400, "limit must be between 1 and 1000")
        dates: dict[str, datetime | None] = {}
        for name in ("start_date", "end_date"):
            if params.get(name):
                dates[name] = parse_date(params[name])
                if dates[name] is None:
                    return self._error(400, f"Invalid {name}: use RFC3339, 2006-01-02 or 2006-01-02T15:04:05")
        cursors: dict[str, int] = {}
        for name in ("before", "after"):
            if params.get(name):
                try:
                    cursors[name] = int(params[name])
                except ValueError:
                    return self._error(400, f"Invalid {name}")
        stream = self.streams[account]
        lo, hi = self.bounds(account)
        start, end = dates.get("start_date"), dates.get("end_date")
        if start is None and end is None:
            lo = max(lo, stream.pos_ge(self.state.horizon_us() - 86_400_000_000))  # the silent one-day default
        if start is not None:
            lo = max(lo, stream.pos_ge(to_us(start)))
        if end is not None:
            hi = min(hi, stream.pos_gt(to_us(end)))  # inclusive
        if "after" in cursors:  # older than the cursor
            hi = min(hi, self.first_pos_with_id_at_least(account, cursors["after"]))
        if "before" in cursors:  # newer than the cursor
            lo = max(lo, self.first_pos_with_id_at_least(account, cursors["before"] + 1))
        view = self.views[account]
        forward = "before" in cursors and "after" not in cursors  # the oldest entries above the cursor
        if not view.dropped:  # a contiguous run of positions: slices of serialised chunks
            count = max(0, min(limit, hi - lo))
            newest, oldest = (lo + count - 1, lo) if forward else (hi - 1, hi - count)
            body = self.listing(account, oldest, newest + 1, newest_first=True) if count else b""
        else:
            picked: list[tuple[int, Chunk, int]] = []
            for pos, blk, j in stream.walk(lo, hi) if forward else stream.walk_desc(hi, lo):
                if view.is_dropped(pos):
                    continue
                picked.append((pos, blk, j))
                if len(picked) == limit:
                    break
            picked.sort(key=lambda p: -p[0])  # a `before` page too is listed newest first
            count = len(picked)
            body = b",".join(self.item(account, pos, blk, j) for pos, blk, j in picked)
            if picked:
                newest, oldest = picked[0][0], picked[-1][0]
        self.stats["entries_served"] += count
        resp = Response(200, b"[" + body + b"]")
        if count:
            resp.headers.append(("CB-BEFORE", str(self.entry_id(account, newest))))
            resp.headers.append(("CB-AFTER", str(self.entry_id(account, oldest))))
        return resp
