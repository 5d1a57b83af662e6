"""Pacifica balance history: GET /api/v1/account/balance/history (unsigned, newest first, no time filter, no ids)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from ledgerlake.venues.base import (
    OK,
    ArrowLayout,
    CursorPaginator,
    LedgerColumns,
    OffsetPaginator,
    RateLimit,
    Reply,
    Request,
    SignedRequest,
    Venue,
    Window,
    urlencode,
)

PATH = "/api/v1/account/balance/history"

ENTRY_TYPES = {
    "deposit": "deposit",
    "deposit_release": "deposit",
    "withdraw": "withdrawal",
    "trade": "trade",
    "market_liquidation": "liquidation",
    "backstop_liquidation": "liquidation",
    "adl_liquidation": "liquidation",
    "subaccount_transfer": "transfer",
    "funding": "funding",
    "payout": "reward",
}

MAPPED_KEYS = frozenset({"amount", "balance", "event_type", "created_at"})

# The usual page, for the engine's fast path (engine.pages). Decimals stay text: the derived id hashes them as
# sent (a bare number is refused here and read from the records, as exactly).
ARROW_LAYOUT = ArrowLayout(
    fields={
        "amount": pa.string(),
        "balance": pa.string(),
        "pending_balance": pa.string(),
        "event_type": pa.string(),
        "created_at": pa.int64(),
    },
    records_path=("data",),
    envelope={"success": pa.bool_(), "next_cursor": pa.string(), "has_more": pa.bool_()},
)


def entry_id(account: str, created_at: Any, event_type: Any, amount: Any, balance: Any, pending: Any) -> str:
    """The contract's derived id: the venue gives none."""
    text = f"{account}|{created_at}|{event_type}|{amount}|{balance}|{pending}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class Pacifica(Venue):
    name = "pacifica"
    newest_first = True
    dedup_by_entry_id = True
    # 125 credits per rolling 60 s per IP (300 with an API key). What this GET costs is UNVERIFIED
    # ("a heavy GET costs up to 12 credits"): `request_cost` defaults to that maximum, settable per connection.
    rate_limit = RateLimit(125, 60, scope="ip")
    rate_limit_with_key = RateLimit(300, 60, scope="ip")
    entry_types: ClassVar[dict[str, str]] = ENTRY_TYPES
    mapped_keys: ClassVar[frozenset[str]] = MAPPED_KEYS
    bare_decimal_keys = ("amount", "balance", "pending_balance")
    entry_id_kind = "str"
    code_kind = "str"
    occurred_kind = "ms"
    tie_break = "listing"
    default_page_size = 100
    max_page_size = 1000  # the document says "system defined"; the newest docs' examples use 100
    required: ClassVar[dict[str, str]] = {
        "created_at": "ms",
        "event_type": "str",
        "amount": "decimal",
        "balance": "decimal",
    }

    arrow_layout = ARROW_LAYOUT
    paging_fields = ("created_at",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.credentials.api_key:
            self.rate_limit = self.rate_limit_with_key  # type: ignore[misc]
        self.request_cost = float(self.credentials.extra.get("request_cost", 12))
        self.asset = str(self.account.options.get("settlement_asset", "USDC"))

    def first_request(self, window: Window) -> Request:
        self._offsets = OffsetPaginator(self.page_size)
        self._cursor = CursorPaginator("cursor")
        params = {"account": self.account.account, "limit": str(self.page_size)}
        return Request("GET", PATH, params, cost=self.request_cost)

    def sign(self, request: Request, now: datetime) -> SignedRequest:
        headers = {"Accept": "application/json"}
        if self.credentials.api_key:
            headers["PF-API-KEY"] = self.credentials.api_key  # optional: raises the rate limit
        return SignedRequest(f"{self.credentials.base_url}{request.path}?{urlencode(request.params)}", headers)

    def check(self, status: int, payload: Any, headers: dict[str, str]) -> Reply:
        message = self.error_text(payload, "error", "message")
        code = payload.get("code") if isinstance(payload, dict) else None
        if status == 429 or code == 429:
            return Reply("retry", message)
        if status >= 500 or (isinstance(code, int) and code >= 500):
            return Reply("retry", message)
        if status in (401, 403) or code in (401, 403):
            return Reply("auth", message)
        if not isinstance(payload, dict) or "success" not in payload:
            return Reply("retry" if status == 200 else "fatal", f"HTTP {status}, unexpected body: {message}")
        if payload["success"] is not True or status != 200:
            return Reply("fatal", f"HTTP {status}, code {code}: {message}")
        if not isinstance(payload.get("data"), list):
            return Reply("retry", "envelope has no data list")
        return OK

    def records(self, payload: Any) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = payload["data"]
        return data

    def next_request(
        self, request: Request, payload: Any, headers: dict[str, str], records: list[dict[str, Any]], window: Window
    ) -> Request | None:
        if "next_cursor" in payload or "cursor" in request.params:  # the venue's newer cursor form
            self._cursor.update_state(payload.get("next_cursor"), payload.get("has_more"))
            return self._cursor.update_request(request)
        self._offsets.update_state(len(records))
        return self._offsets.update_request(request)

    def stop_after(self, records: list[dict[str, Any]], window: Window) -> bool:
        # Newest first: once a page reaches below the window's start, older pages hold nothing of it.
        times = [r["created_at"] for r in records if isinstance(r, dict) and isinstance(r.get("created_at"), int)]
        return bool(times) and min(times) < window.interval.start_ms

    def columns(self, records: list[dict[str, Any]], out: LedgerColumns) -> None:
        # One comprehension per column: the least Python work per record (the engine types them in batches).
        account, n = self.account.account, len(records)
        created = [r["created_at"] for r in records]
        kinds = [r["event_type"] for r in records]
        amounts = [r["amount"] for r in records]
        balances = [r["balance"] for r in records]
        pending = [r.get("pending_balance") for r in records]
        out.entry_id += [
            entry_id(account, c, k, a, b, p)
            for c, k, a, b, p in zip(created, kinds, amounts, balances, pending, strict=True)
        ]
        out.occurred += created
        out.asset += [self.asset] * n
        out.amount += amounts
        out.balance_before += [None] * n
        out.balance_after += balances
        out.venue_entry_type += kinds
        out.reference_id += [None] * n
        out.instrument += [None] * n

    def arrow_columns(self, records: pa.StructArray) -> dict[str, pa.Array]:
        n = len(records)
        created, kinds = records.field("created_at"), records.field("event_type")
        amounts, balances = records.field("amount"), records.field("balance")
        # `entry_id`'s text, null as Python writes None; hashed per row (hashlib: the rest is vectorized).
        parts = [pc.fill_null(a.cast(pa.string()), "None") for a in (created, kinds, amounts, balances)]
        pending = pc.fill_null(records.field("pending_balance"), "None")
        texts = pc.binary_join_element_wise(self.account.account, *parts, pending, "|").cast(pa.binary())
        sha256 = hashlib.sha256
        return {
            "entry_id": pa.array([sha256(t).hexdigest()[:32] for t in texts.to_pylist()], pa.string()),
            "occurred_at": created,
            "asset": pa.repeat(pa.scalar(self.asset, pa.string()), n),
            "amount": amounts,
            "balance_before": pa.nulls(n, pa.string()),
            "balance_after": balances,
            "venue_entry_type": kinds,
            "reference_id": pa.nulls(n, pa.string()),
            "instrument": pa.nulls(n, pa.string()),
        }
