"""Binance daily account snapshots: GET /sapi/v1/accountSnapshot (not a ledger: balances and positions)."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

from ledgerlake.interval import Interval, to_ms
from ledgerlake.venues.base import OK, RateLimit, Reply, Request, SignedRequest, Venue, Window, details_json, urlencode

PATH = "/sapi/v1/accountSnapshot"
SNAPSHOT_TYPES = ("SPOT", "MARGIN", "FUTURES")
REQUEST_WEIGHT = 2400  # the endpoint's documented IP weight
AUTH_CODES = frozenset({-1022, -2014, -2015, -2008})
_BANNED_UNTIL = re.compile(r"banned until (\d{10,16})")

BALANCE_COLUMNS = (
    "snapshot_type",
    "snapshot_at",
    "asset",
    "free",
    "locked",
    "borrowed",
    "interest",
    "net_asset",
    "wallet_balance",
    "margin_balance",
    "total",
    "details",
)
POSITION_COLUMNS = ("snapshot_at", "symbol", "position_amt", "entry_price", "mark_price", "unrealized_profit")


def sign_query(secret: str, query: str) -> str:
    return hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()


def _add(a: str, b: str) -> str:
    return format(Decimal(a) + Decimal(b), "f")


class Binance(Venue):
    name = "binance"
    dataset = "snapshots"
    # UNVERIFIED for /sapi: the IP budget per minute is documented for /api only (6000); the safe side.
    rate_limit = RateLimit(6000, 60, scope="ip")
    max_window = timedelta(days=29)  # the span must be under 30 days
    retention = timedelta(days=30)
    retention_text = "account snapshots of the last month (30 days)"
    default_page_size = 30
    max_page_size = 30
    required: ClassVar[dict[str, str]] = {"type": "str", "updateTime": "ms"}

    def snapshot_types(self) -> list[str]:
        types = self.account.options.get("snapshot_types") or SNAPSHOT_TYPES
        return [str(t).upper() for t in types]

    def windows(self, interval: Interval) -> Iterator[Window]:
        for kind in self.snapshot_types():
            for part in interval.split(self.max_window or timedelta(days=29)):
                yield Window(part, kind)

    def first_request(self, window: Window) -> Request:
        params = {
            "type": window.label,
            "startTime": str(window.interval.start_ms),
            "endTime": str(window.interval.end_ms - 1),  # keep [start, end): the venue's bounds are inclusive
            "limit": str(max(7, self.page_size)),
        }
        return Request("GET", PATH, params, cost=REQUEST_WEIGHT)

    def sign(self, request: Request, now: datetime) -> SignedRequest:
        params = dict(request.params)
        params["recvWindow"] = str(self.credentials.extra.get("recv_window", 5000))
        params["timestamp"] = str(to_ms(now))
        query = urlencode(params)
        sig = sign_query(self.credentials.api_secret or "", query)
        return SignedRequest(
            f"{self.credentials.base_url}{request.path}?{query}&signature={sig}",
            {"X-MBX-APIKEY": self.credentials.api_key or ""},
        )

    def check(self, status: int, payload: Any, headers: dict[str, str]) -> Reply:
        message = self.error_text(payload, "msg", "message")
        code = payload.get("code") if isinstance(payload, dict) else None
        if status == 418 or (code == -1003 and "banned until" in message):
            match = _BANNED_UNTIL.search(message)
            until = int(match.group(1)) if match else None
            if until is not None and until < 10**12:
                until *= 1000
            return Reply("ban", message, ban_until_ms=until)
        if status == 429 or code == -1003:
            return Reply("retry", message)
        if status >= 500:
            return Reply("retry", message)
        if code == -1021:  # clock skew: a fresh timestamp on the next attempt may pass
            return Reply("retry", message)
        if status in (401, 403) or code in AUTH_CODES:
            return Reply("auth", message)
        if not isinstance(payload, dict) or "code" not in payload:
            return Reply("retry" if status == 200 else "fatal", f"HTTP {status}, unexpected body: {message}")
        if code != 200 or status != 200:
            return Reply("fatal", f"code {code}: {message}")
        if not isinstance(payload.get("snapshotVos"), list):
            return Reply("retry", "envelope has no snapshotVos list")
        return OK

    def records(self, payload: Any) -> list[dict[str, Any]]:
        vos: list[dict[str, Any]] = payload["snapshotVos"]
        return vos

    def next_request(
        self, request: Request, payload: Any, headers: dict[str, str], records: list[dict[str, Any]], window: Window
    ) -> Request | None:
        return None  # no pagination: one window is one answer

    def snapshot_columns(self, snapshots: list[dict[str, Any]]) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
        """(balance columns, position columns) of the unified snapshot rows; snapshot_at stays in ms."""
        bal: dict[str, list[Any]] = {c: [] for c in BALANCE_COLUMNS}
        pos: dict[str, list[Any]] = {c: [] for c in POSITION_COLUMNS}

        def add_balance(kind: str, at: int, asset: str, details: str, **values: Any) -> None:
            bal["snapshot_type"].append(kind)
            bal["snapshot_at"].append(at)
            bal["asset"].append(asset)
            bal["details"].append(details)
            for col in ("free", "locked", "borrowed", "interest", "net_asset", "wallet_balance", "margin_balance"):
                bal[col].append(values.get(col))
            bal["total"].append(values["total"])

        for vo in snapshots:
            kind = str(vo["type"]).lower()
            at = vo["updateTime"]
            data = vo["data"]
            if kind == "spot":
                details = details_json({k: v for k, v in data.items() if k != "balances"})
                for b in data["balances"]:
                    add_balance(kind, at, b["asset"], details, free=b["free"], locked=b["locked"],
                                total=_add(b["free"], b["locked"]))  # fmt: skip
            elif kind == "margin":
                details = details_json({k: v for k, v in data.items() if k != "userAssets"})
                for b in data["userAssets"]:
                    add_balance(kind, at, b["asset"], details, free=b.get("free"), locked=b.get("locked"),
                                borrowed=b.get("borrowed"), interest=b.get("interest"), net_asset=b["netAsset"],
                                total=b["netAsset"])  # fmt: skip
            elif kind == "futures":
                details = details_json({k: v for k, v in data.items() if k not in ("assets", "position")})
                for b in data["assets"]:
                    add_balance(kind, at, b["asset"], details, wallet_balance=b["walletBalance"],
                                margin_balance=b.get("marginBalance"), total=b["walletBalance"])  # fmt: skip
                for p in data.get("position") or []:
                    pos["snapshot_at"].append(at)
                    pos["symbol"].append(p["symbol"])
                    pos["position_amt"].append(p["positionAmt"])
                    pos["entry_price"].append(p.get("entryPrice"))
                    pos["mark_price"].append(p.get("markPrice"))
                    pos["unrealized_profit"].append(p.get("unRealizedProfit"))
            else:
                raise ValueError(f"unknown snapshot type {vo['type']!r}")
        return bal, pos
