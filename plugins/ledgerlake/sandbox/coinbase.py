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
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson

from ledgerlake.sandbox.http import Request, Response
from ledgerlake.sandbox.ledger import Block, Kind, LedgerModel, fmt_units, to_us
from ledgerlake.sandbox.ratelimit import TokenBucket
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

    def _fields(self, account: str, pos: int, blk: Block, j: int) -> tuple[Any, ...]:
        kind = KINDS[blk.kinds[j]].code
        currency = self.accounts[self.index[account]].options["currency"]
        amount = blk.amounts[j]
        details = self._details(kind, blk.aux[j], amount, _PRODUCTS.get(currency, ("BTC-USD",)))
        return (
            str(self.entry_id(account, pos)),
            fmt_units(amount, 16),
            fmt_units(blk.before[j] + amount, 16),
            blk.times[j],
            kind,
            details,
            currency,
        )

    def block_items(self, account: str, blk: Block) -> list[bytes]:
        currency = self.accounts[self.index[account]].options["currency"]
        products = _PRODUCTS.get(currency, ("BTC-USD",))
        step = len(self.accounts)
        first_id = self.entry_id(account, blk.first)
        codes = [k.code for k in KINDS]
        details, dumps = self._details, orjson.dumps
        out = []
        stamps = np.datetime_as_string(np.array(blk.times, dtype="datetime64[us]"), unit="us").tolist()
        for j, (t, kind_i, amount, before, aux) in enumerate(
            zip(stamps, blk.kinds, blk.amounts, blk.before, blk.aux, strict=True)
        ):
            kind = codes[kind_i]
            head = (
                f'{{"id":"{first_id + j * step}","amount":"{fmt_units(amount, 16)}",'
                f'"balance":"{fmt_units(before + amount, 16)}","created_at":"{t}Z","type":"{kind}","details":'
            )
            out.append(head.encode() + dumps(details(kind, aux, amount, products)) + b"}")
        return out

    def unified(self, account: str, pos: int, blk: Block, j: int) -> tuple[Any, ...]:
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
        picked: list[tuple[int, Block, int]] = []
        walk = stream.walk(lo, hi) if "before" in cursors and "after" not in cursors else stream.walk_desc(hi, lo)
        for pos, blk, j in walk:
            if view.dropped and view.is_dropped(pos):
                continue
            picked.append((pos, blk, j))
            if len(picked) == limit:
                break
        if picked and picked[0][0] < picked[-1][0]:
            picked.reverse()  # a `before` page is the oldest entries above the cursor, still listed newest first
        items = [self.item(account, pos, blk, j) for pos, blk, j in picked]
        self.stats["entries_served"] += len(items)
        resp = Response(200, b"[" + b",".join(items) + b"]")
        if picked:
            resp.headers.append(("CB-BEFORE", str(self.entry_id(account, picked[0][0]))))
            resp.headers.append(("CB-AFTER", str(self.entry_id(account, picked[-1][0]))))
        return resp
