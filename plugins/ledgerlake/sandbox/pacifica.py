"""Pacifica: GET /api/v1/account/balance/history (venue-docs/pacifica-balance-history.txt).

Unsigned GET, rows without ids, newest first, paged by `limit`/`offset` (the document here) or, with
SandboxOptions.pacifica_paging="cursor", by `cursor` with top-level `next_cursor`/`has_more` (the venue's newer
docs). Offsets count from the newest row, so rows arriving while a client pages shift them. UNVERIFIED
choices: default limit 100, maximum SandboxOptions.pacifica_max_limit (1000) else 400; the cost of this GET in
credits (RateLimitSpec.pacifica_cost, default 12: the documented maximum); a PF-API-KEY that is not known is
refused with 401.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import orjson

from ledgerlake.sandbox.http import Request, Response
from ledgerlake.sandbox.ledger import Chunk, Kind, LedgerModel, fmt_units
from ledgerlake.sandbox.ratelimit import RollingWindow
from ledgerlake.sandbox.text import Rows
from ledgerlake.sandbox.venue import LedgerVenue, SandboxAccount, State, details_json, query_params

PATH = "/api/v1/account/balance/history"
KINDS = (
    Kind("deposit", 1.0, 1, 1.0, 4.0),
    Kind("deposit_release", 0.5, 1, 1.0, 3.0),
    Kind("withdraw", 1.0, -1, 1.0, 4.0),
    Kind("trade", 10.0, 0, -2.0, 3.0),
    Kind("market_liquidation", 0.2, -1, 1.0, 3.0),
    Kind("backstop_liquidation", 0.1, -1, 1.0, 3.0),
    Kind("adl_liquidation", 0.1, 0, 0.0, 3.0),
    Kind("subaccount_transfer", 0.5, 0, 1.0, 4.0),
    Kind("funding", 3.0, 0, -3.0, 1.0),
    Kind("payout", 0.3, 1, -1.0, 2.0),
)
ENTRY_TYPES = {
    "deposit": "deposit", "deposit_release": "deposit", "withdraw": "withdrawal", "trade": "trade",
    "market_liquidation": "liquidation", "backstop_liquidation": "liquidation", "adl_liquidation": "liquidation",
    "subaccount_transfer": "transfer", "funding": "funding", "payout": "reward",
}  # fmt: skip
_KIND_TEXT = [k.code.encode() for k in KINDS]
_DEPOSIT = next(i for i, k in enumerate(KINDS) if k.code == "deposit")
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58(value: int) -> str:
    out = ""
    while True:
        value, r = divmod(value, 58)
        out = _B58[r] + out
        if value == 0:
            return out


def unb58(text: str) -> int:
    value = 0
    for ch in text:
        value = value * 58 + _B58.index(ch)
    return value


def model(asset: str) -> LedgerModel:
    return LedgerModel(
        kinds=KINDS,
        assets=(asset,),
        asset_factor=(1.0,),
        asset_weights=(1.0,),
        decimals=6,
        credit_code="deposit",
        debit_code="withdraw",
        precisions=(2, 6),
    )


def entry_id(account: str, created_at: str, event_type: str, amount: str, balance: str, pending: str) -> str:
    """The contract's id for an id-less Pacifica row."""
    text = f"{account}|{created_at}|{event_type}|{amount}|{balance}|{pending}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class Pacifica(LedgerVenue):
    name = "pacifica"

    def __init__(self, state: State, accounts: list[SandboxAccount]) -> None:
        self.keys = {a.api_key for a in accounts if a.api_key}
        self.windows: dict[str, RollingWindow] = {}
        super().__init__(state, accounts)

    def model_for(self, acc: SandboxAccount) -> LedgerModel:
        return model(acc.options.get("settlement_asset", "USDC"))

    def _fields(self, account: str, pos: int, blk: Chunk, j: int) -> tuple[str, str, str, str, int]:
        kind = KINDS[blk.kinds[j]].code
        aux = blk.aux[j]
        pending = 0
        if kind == "deposit" and aux % 3 == 0:
            pending = (aux >> 8) % 10**10  # a deposit still pending part of its funds
        return (
            fmt_units(blk.amounts[j], 6),
            fmt_units(blk.balances_before[j] + blk.amounts[j], 6),
            fmt_units(pending, 6),
            kind,
            blk.times[j] // 1000,
        )

    def chunk_items(self, account: str, chunk: Chunk, order: slice) -> tuple[bytes, np.ndarray]:
        kind = chunk.kind_i[order].astype(np.intp)
        aux = chunk.aux_i[order]
        amount = chunk.amount.take(order)
        after = chunk.before.take(order) + amount
        pending = np.where((kind == _DEPOSIT) & (aux % 3 == 0), (aux >> 8) % 10**10, 0)  # as _fields
        rows = Rows(chunk.n).const(b'{"amount":"').units(amount.whole, amount.frac, 6)
        rows.const(b'","balance":"').units(after.whole, after.frac, 6)
        rows.const(b'","pending_balance":"').units(pending // 10**6, pending % 10**6, 6)
        rows.const(b'","event_type":"').choice(_KIND_TEXT, kind).const(b'","created_at":')
        return rows.integer(chunk.t_us[order] // 1000).const(b"},").pack()

    def unified(self, account: str, pos: int, blk: Chunk, j: int) -> tuple[Any, ...]:
        amount, balance, pending, kind, created = self._fields(account, pos, blk, j)
        asset = self.account(account).options.get("settlement_asset", "USDC")
        return (
            entry_id(account, str(created), kind, amount, balance, pending),
            created * 1000,
            asset,
            amount,
            None,
            balance,
            ENTRY_TYPES.get(kind, "other"),
            kind,
            None,
            None,
            details_json({"pending_balance": pending}),
        )

    # --- HTTP -------------------------------------------------------------------------------------------
    @staticmethod
    def _error(status: int, message: str) -> Response:
        return Response(status, orjson.dumps({"success": False, "data": None, "error": message, "code": status}))

    def server_error(self) -> Response:
        return self._error(500, "Internal server error")

    def over_limit(self, retry_after: float) -> Response:
        resp = self._error(429, "Rate limit exceeded")
        resp.headers.append(("Retry-After", str(max(1, round(retry_after)))))
        return resp

    def serve(self, req: Request) -> Response:
        if req.path != PATH:
            return self._error(404, "Not found")
        if req.method != "GET":
            return self._error(405, "Method not allowed")
        key = req.headers.get("pf-api-key")
        if key is not None and key not in self.keys:
            return self._error(401, "Invalid API key")
        limits = self.state.limits
        if limits.enabled:
            holder = f"key:{key}" if key else f"ip:{req.client}"
            credits = limits.pacifica_credits_with_key if key else limits.pacifica_credits
            window = self.windows.get(holder)
            if window is None or (window.credits, window.window_s) != (credits, limits.pacifica_window_s):
                window = self.windows[holder] = RollingWindow(credits, limits.pacifica_window_s)
            if not window.try_take(limits.pacifica_cost):
                return self.over_limit(window.retry_after())
        params = query_params(req)
        account = params.get("account")
        if not account:
            return self._error(400, "Missing required parameter: account")
        max_limit = self.state.options.pacifica_max_limit
        try:
            limit = int(params.get("limit", "100"))
            offset = int(params.get("offset", "0"))
        except ValueError:
            return self._error(400, "Invalid parameter: limit and offset must be integers")
        if not 1 <= limit <= max_limit:
            return self._error(400, f"Invalid parameter: limit must be between 1 and {max_limit}")
        if offset < 0:
            return self._error(400, "Invalid parameter: offset must not be negative")
        cursor_mode = self.state.options.pacifica_paging == "cursor"
        if account not in self.streams:  # a wallet without history
            body: dict[str, Any] = {"success": True, "data": []}
            if cursor_mode:
                body.update(next_cursor=None, has_more=False)
            return Response(200, orjson.dumps(body))
        view = self.views[account]
        lo, hi = self.bounds(account)
        top: int | None
        if cursor_mode and params.get("cursor"):
            try:
                top = unb58(params["cursor"])
            except ValueError:
                return self._error(400, "Invalid cursor")
            top = min(top, hi)
            if offset:
                top = view.nth_newest(offset - 1, top) if top > lo else None
        else:
            top = hi if offset == 0 else view.nth_newest(offset - 1, hi)
        items: list[bytes] = []
        last, count = lo, 0
        if top is not None and top > lo and not view.dropped:  # contiguous: slices of serialised chunks
            last = max(lo, top - limit)
            count = top - last
            items.append(self.listing(account, last, top, newest_first=True))
        elif top is not None and top > lo:
            for pos, blk, j in self.streams[account].walk_desc(top, lo):
                if view.is_dropped(pos):
                    continue
                items.append(self.item(account, pos, blk, j))
                last = pos
                if len(items) == limit:
                    break
            count = len(items)
        self.stats["entries_served"] += count
        out = b'{"success":true,"data":[' + b",".join(items) + b"]"
        if cursor_mode:
            more = count > 0 and last > lo and view.nth_newest(0, last) is not None
            out += b',"next_cursor":' + (f'"{b58(last)}"'.encode() if more else b"null")
            out += b',"has_more":' + (b"true" if more else b"false")
        return Response(200, out + b"}")
