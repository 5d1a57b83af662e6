"""Coinbase Exchange account ledger: GET /accounts/{account_id}/ledger (newest first, CB-AFTER paging)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc

from ledgerlake.config import ConfigError
from ledgerlake.schema import DECIMAL
from ledgerlake.venues.base import (
    OK,
    ArrowLayout,
    HeaderCursorPaginator,
    LedgerColumns,
    RateLimit,
    Reply,
    Request,
    SignedRequest,
    Venue,
    Window,
    urlencode,
)

ENTRY_TYPES = {"transfer": "transfer", "match": "trade", "fee": "fee", "rebate": "rebate", "conversion": "trade"}

# Fields with a column of their own; `details` stays in the details JSON as received.
MAPPED_KEYS = frozenset({"id", "created_at", "amount", "balance", "type"})

# The usual page, for the engine's fast path (engine.pages). `details` holds other fields per entry type: those
# the document and the venue use, all text (a page with another is read from its records).
DETAIL_FIELDS = (
    "order_id",
    "product_id",
    "trade_id",
    "transfer_id",
    "transfer_type",
    "profile_transfer_id",
    "from",
    "to",
    "conversion_id",
)
ARROW_LAYOUT = ArrowLayout(
    fields={
        "id": pa.string(),
        "amount": DECIMAL,
        "balance": DECIMAL,
        "created_at": pa.string(),
        "type": pa.string(),
        "details": pa.struct([(name, pa.string()) for name in DETAIL_FIELDS]),
    },
    records_path=(),
)


def _first_text(*columns: pa.Array) -> pa.Array:
    """Per row the first value that is neither null nor empty (Python's `a or b or c`), else null."""
    out = pa.nulls(len(columns[0]), pa.string())
    for column in reversed(columns):
        out = pc.if_else(pc.fill_null(pc.not_equal(column, ""), False), column, out)
    return out


def rfc3339(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def signature(secret_b64: str, timestamp: str, method: str, request_path: str, body: str = "") -> str:
    key = base64.b64decode(secret_b64)
    message = f"{timestamp}{method.upper()}{request_path}{body}".encode()
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


class Coinbase(Venue):
    name = "coinbase"
    time_filtered = True
    newest_first = True
    rate_limit = RateLimit(15, 1, scope="key", burst=30)  # private endpoints: 15 requests/s per profile, bursts to 30
    entry_types: ClassVar[dict[str, str]] = ENTRY_TYPES
    mapped_keys: ClassVar[frozenset[str]] = MAPPED_KEYS
    bare_decimal_keys = ("amount", "balance")
    entry_id_kind = "str"
    code_kind = "str"
    occurred_kind = "rfc3339"
    tie_break = "id"
    # The ledger page says "default 100"; Coinbase Exchange's pagination rules allow up to 1000 per request, and
    # ten times fewer signed requests is ten times more of the 15 requests/s (set `page_size` to go back).
    default_page_size = 1000
    max_page_size = 1000
    arrow_layout = ARROW_LAYOUT
    required: ClassVar[dict[str, str]] = {
        "id": "str",
        "created_at": "rfc3339",
        "amount": "decimal",
        "balance": "decimal",
        "type": "str",
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        currency = self.account.options.get("currency")
        if not currency:
            raise ConfigError(f"coinbase account {self.account.account}: 'currency' is required in the account config")
        self.currency = str(currency)

    def first_request(self, window: Window) -> Request:
        # Both dates are inclusive; the engine drops an entry exactly at the end. Without dates the venue
        # silently answers the last day only, so they are always sent.
        params = {
            "start_date": rfc3339(window.interval.start),
            "end_date": rfc3339(window.interval.end),
            "limit": str(self.page_size),
        }
        if self.account.options.get("profile_id"):
            params["profile_id"] = str(self.account.options["profile_id"])
        self._pager = HeaderCursorPaginator("CB-AFTER", "after")
        return Request("GET", f"/accounts/{quote(self.account.account, safe='')}/ledger", params)

    def sign(self, request: Request, now: datetime) -> SignedRequest:
        path = f"{request.path}?{urlencode(request.params)}" if request.params else request.path
        ts = f"{now.timestamp():.3f}"
        headers = {
            "CB-ACCESS-KEY": self.credentials.api_key or "",
            "CB-ACCESS-SIGN": signature(self.credentials.api_secret or "", ts, request.method, path),
            "CB-ACCESS-TIMESTAMP": ts,
            "CB-ACCESS-PASSPHRASE": self.credentials.passphrase or "",
            "Accept": "application/json",
        }
        return SignedRequest(f"{self.credentials.base_url}{path}", headers)

    def check(self, status: int, payload: Any, headers: dict[str, str]) -> Reply:
        message = self.error_text(payload, "message")
        if status == 429 or status >= 500:
            return Reply("retry", message)
        if status in (401, 403):
            return Reply("auth", message)
        if status != 200:
            return Reply("fatal", f"HTTP {status}: {message}")
        if not isinstance(payload, list):
            return Reply("retry", f"expected a JSON list, got: {message}")
        return OK

    def records(self, payload: Any) -> list[dict[str, Any]]:
        return payload  # type: ignore[no-any-return]

    def next_request(
        self, request: Request, payload: Any, headers: dict[str, str], records: list[dict[str, Any]], window: Window
    ) -> Request | None:
        self._pager.update_state(headers, len(records))
        return self._pager.update_request(request)

    def columns(self, records: list[dict[str, Any]], out: LedgerColumns) -> None:
        # One comprehension per column: the least Python work per record (the engine types them in batches).
        out.entry_id += [r["id"] for r in records]
        out.occurred += [r["created_at"] for r in records]
        out.asset += [self.currency] * len(records)
        out.amount += [r["amount"] for r in records]
        out.balance_before += [None] * len(records)
        out.balance_after += [r["balance"] for r in records]
        out.venue_entry_type += [r["type"] for r in records]
        details = [d if isinstance(d, dict) else {} for d in [r.get("details") for r in records]]
        refs = [d.get("trade_id") or d.get("profile_transfer_id") or d.get("transfer_id") for d in details]
        out.reference_id += [None if ref in (None, "") else str(ref) for ref in refs]
        out.instrument += [d.get("product_id") or None for d in details]

    def arrow_columns(self, records: pa.StructArray) -> dict[str, pa.Array]:
        n = len(records)
        # flatten(): a details that is null gives nulls (the usual way reads it as {}).
        details = dict(zip(DETAIL_FIELDS, records.field("details").flatten(), strict=True))
        return {
            "entry_id": records.field("id"),
            "occurred_at": records.field("created_at"),
            "asset": pa.repeat(pa.scalar(self.currency, pa.string()), n),
            "amount": records.field("amount"),
            "balance_before": pa.nulls(n, DECIMAL),
            "balance_after": records.field("balance"),
            "venue_entry_type": records.field("type"),
            "reference_id": _first_text(details["trade_id"], details["profile_transfer_id"], details["transfer_id"]),
            "instrument": _first_text(details["product_id"]),
        }
