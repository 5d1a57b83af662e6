"""Binance: GET /sapi/v1/accountSnapshot (venue-docs/binance-account-snapshot.txt). Not a ledger: one snapshot
per day and type, stamped 23:59:59.000 UTC.

Signed query (HMAC-SHA256 hex of the query string as sent, `signature` last) with X-MBX-APIKEY; request weight
2400 against the IP budget, X-MBX-USED-WEIGHT-1M on every answer, 429 with Retry-After, then a 418 ban with
the ban's end in the body for a client that keeps going.

UNVERIFIED choices: the /sapi IP budget (RateLimitSpec, default 6000 per minute); "the last one month" is
30 days and older snapshots are silently left out (no error); a span of 30 days or more is refused with
-1127; snapshots are listed oldest first, and when more than `limit` match, the first `limit` from startTime
(or the last `limit` up to endTime when only endTime is given).
"""

from __future__ import annotations

import hashlib
import hmac
import random
from decimal import ROUND_DOWN, Decimal
from typing import Any
from urllib.parse import parse_qsl

import orjson
import pyarrow as pa

from ledgerlake.interval import Interval
from ledgerlake.sandbox.http import Request, Response
from ledgerlake.sandbox.ledger import h64, to_us
from ledgerlake.sandbox.ratelimit import FixedWindow
from ledgerlake.sandbox.venue import SandboxAccount, State, Venue, details_json
from ledgerlake.schema import BALANCE_SNAPSHOT_SCHEMA, DECIMAL, POSITION_SNAPSHOT_SCHEMA, RUN_COLUMNS, TIMESTAMP

PATH = "/sapi/v1/accountSnapshot"
DAY_MS = 86_400_000
RETENTION_MS = 30 * DAY_MS
TYPES = ("SPOT", "MARGIN", "FUTURES")
BALANCE_TRUTH_SCHEMA = pa.schema([f for f in BALANCE_SNAPSHOT_SCHEMA if f.name not in RUN_COLUMNS])
POSITION_TRUTH_SCHEMA = pa.schema([f for f in POSITION_SNAPSHOT_SCHEMA if f.name not in RUN_COLUMNS])
_Q8 = Decimal("0.00000001")
_BTC_PRICE = {"BTC": Decimal(1), "ETH": Decimal("0.0375"), "USDT": Decimal("0.0000155"), "BNB": Decimal("0.0093")}
_USD_PRICE = {"BTCUSDT": Decimal("64250.5"), "ETHUSDT": Decimal("2410.25")}


def _q(value: Decimal) -> Decimal:
    return value.quantize(_Q8, rounding=ROUND_DOWN)


def _s(value: Decimal) -> str:
    return f"{_q(value):.8f}"


class Binance(Venue):
    name = "binance"

    def __init__(self, state: State, accounts: list[SandboxAccount]) -> None:
        super().__init__(state, accounts)
        self.by_key = {a.api_key: a for a in accounts}
        self.weight: FixedWindow | None = None
        self.over_in_window = 0
        self.over_window = -1
        self.banned_until_ms = 0

    # --- snapshot data ------------------------------------------------------------------------------------
    def snapshot(self, account: str, kind: str, day_ord: int) -> dict[str, Any]:
        """The snapshot of `kind` taken at the end of the day, exactly as the venue lists it."""
        rng = random.Random(h64(self.state.seed, self.name, account, kind, day_ord))
        update_ms = (day_ord - 719_163 + 1) * DAY_MS - 1000  # 23:59:59.000 UTC

        def amount(base: float, spread: float = 0.3) -> Decimal:
            return _q(Decimal(repr(round(base * (1 + spread * (rng.random() - 0.5)), 8))))

        drift = Decimal(1) + Decimal(day_ord % 17) / Decimal(1000)
        if kind == "SPOT":
            balances, total_btc = [], Decimal(0)
            for asset, base in (("BTC", 0.8), ("ETH", 12.0), ("USDT", 25_000.0), ("BNB", 40.0)):
                free, locked = amount(base), amount(base * 0.05) if rng.random() < 0.4 else Decimal(0)
                total_btc += (free + locked) * _BTC_PRICE[asset] * drift
                balances.append({"asset": asset, "free": _s(free), "locked": _s(locked)})
            data: dict[str, Any] = {"balances": balances, "totalAssetOfBtc": _s(total_btc)}
        elif kind == "MARGIN":
            assets, total, liability = [], Decimal(0), Decimal(0)
            for asset, base in (("BTC", 0.3), ("USDT", 9_000.0), ("ETH", 4.0)):
                free = amount(base)
                locked = amount(base * 0.02) if rng.random() < 0.3 else Decimal(0)
                borrowed = amount(base * 0.4) if rng.random() < 0.5 else Decimal(0)
                interest = _q(borrowed * Decimal("0.0004")) if borrowed else Decimal(0)
                total += (free + locked) * _BTC_PRICE[asset]
                liability += (borrowed + interest) * _BTC_PRICE[asset]
                assets.append(
                    {
                        "asset": asset,
                        "borrowed": _s(borrowed),
                        "free": _s(free),
                        "interest": _s(interest),
                        "locked": _s(locked),
                        "netAsset": _s(free + locked - borrowed - interest),
                    }
                )
            total, liability = _q(total), _q(liability)
            level = _q(total / liability) if liability else Decimal(999)
            data = {
                "marginLevel": _s(level),
                "totalAssetOfBtc": _s(total),
                "totalLiabilityOfBtc": _s(liability),
                "totalNetAssetOfBtc": _s(total - liability),
                "userAssets": assets,
            }
        else:
            positions, unrealized = [], Decimal(0)
            for symbol, size in (("BTCUSDT", 0.05), ("ETHUSDT", 1.5)):
                if rng.random() < 0.2:
                    continue  # no open position in this symbol today
                amt = Decimal(repr(round(size * (rng.random() + 0.1), 3))) * (1 if rng.random() < 0.6 else -1)
                entry = _q(_USD_PRICE[symbol] * Decimal(repr(round(0.9 + 0.2 * rng.random(), 6))))
                mark = _q(_USD_PRICE[symbol] * Decimal(repr(round(0.9 + 0.2 * rng.random(), 6))))
                profit = _q((mark - entry) * amt)
                unrealized += profit
                positions.append(
                    {
                        "entryPrice": _s(entry),
                        "markPrice": _s(mark),
                        "positionAmt": _s(amt),
                        "symbol": symbol,
                        "unRealizedProfit": _s(profit),
                    }
                )
            wallet_usdt, wallet_usdc = amount(20_000.0), amount(5_000.0)
            data = {
                "assets": [
                    {"asset": "USDT", "marginBalance": _s(wallet_usdt + unrealized), "walletBalance": _s(wallet_usdt)},
                    {"asset": "USDC", "marginBalance": _s(wallet_usdc), "walletBalance": _s(wallet_usdc)},
                ],
                "position": positions,
            }
        return {"data": data, "type": kind.lower(), "updateTime": update_ms}

    def snapshot_days(self, start_ms: int | None = None, end_ms: int | None = None) -> list[int]:
        """Day ordinals whose snapshot exists now (taken, within history and the one-month retention)."""
        horizon_ms = self.state.horizon_us() // 1000
        first = max(self.state.first_day_ord, (horizon_ms - RETENTION_MS) // DAY_MS + 719_163)
        days = []
        day = first
        while True:
            stamp = (day - 719_163 + 1) * DAY_MS - 1000
            if stamp > horizon_ms:
                break
            if stamp >= horizon_ms - RETENTION_MS and (start_ms is None or stamp >= start_ms):
                if end_ms is not None and stamp > end_ms:
                    break
                days.append(day)
            day += 1
        return days

    def snapshot_truth(self, account: str, interval: Interval) -> dict[str, pa.Table]:
        acc = self.account(account)
        types = [t.upper() for t in acc.options.get("snapshot_types", TYPES)]
        start_ms, end_ms = to_us(interval.start) // 1000, -(-to_us(interval.end) // 1000) - 1
        bal: dict[str, list[Any]] = {f.name: [] for f in BALANCE_TRUTH_SCHEMA}
        pos: dict[str, list[Any]] = {f.name: [] for f in POSITION_TRUTH_SCHEMA}
        for day in self.snapshot_days(start_ms, end_ms):
            for kind in types:
                snap = self.snapshot(account, kind, day)
                at = snap["updateTime"] * 1000
                data = snap["data"]
                if kind == "SPOT":
                    rows = [
                        dict(asset=b["asset"], free=b["free"], locked=b["locked"],
                             total=str(Decimal(b["free"]) + Decimal(b["locked"])))
                        for b in data["balances"]
                    ]  # fmt: skip
                    account_fields = {k: v for k, v in data.items() if k != "balances"}
                elif kind == "MARGIN":
                    rows = [
                        dict(asset=u["asset"], free=u["free"], locked=u["locked"], borrowed=u["borrowed"],
                             interest=u["interest"], net_asset=u["netAsset"], total=u["netAsset"])
                        for u in data["userAssets"]
                    ]  # fmt: skip
                    account_fields = {k: v for k, v in data.items() if k != "userAssets"}
                else:
                    rows = [
                        dict(asset=a["asset"], wallet_balance=a["walletBalance"], margin_balance=a["marginBalance"],
                             total=a["walletBalance"])
                        for a in data["assets"]
                    ]  # fmt: skip
                    account_fields = {k: v for k, v in data.items() if k not in ("assets", "position")}
                    for p in data["position"]:
                        pos["venue"].append("binance")
                        pos["account"].append(account)
                        pos["snapshot_at"].append(at)
                        pos["symbol"].append(p["symbol"])
                        pos["position_amt"].append(p["positionAmt"])
                        pos["entry_price"].append(p["entryPrice"])
                        pos["mark_price"].append(p["markPrice"])
                        pos["unrealized_profit"].append(p["unRealizedProfit"])
                for row in rows:
                    for name in BALANCE_TRUTH_SCHEMA.names:
                        if name == "venue":
                            value: Any = "binance"
                        elif name == "account":
                            value = account
                        elif name == "snapshot_type":
                            value = snap["type"]
                        elif name == "snapshot_at":
                            value = at
                        elif name == "details":
                            value = details_json(account_fields)
                        else:
                            value = row.get(name)
                        bal[name].append(value)
        return {
            "snapshots/balances": _table(bal, BALANCE_TRUTH_SCHEMA),
            "snapshots/positions": _table(pos, POSITION_TRUTH_SCHEMA),
        }

    # --- HTTP -------------------------------------------------------------------------------------------
    def _answer(self, status: int, body: dict[str, Any], retry_after: float | None = None) -> Response:
        resp = Response(status, orjson.dumps(body))
        used = 0 if self.weight is None else int(self.weight.current())
        resp.headers.append(("X-MBX-USED-WEIGHT-1M", str(used)))
        if retry_after is not None:
            resp.headers.append(("Retry-After", str(max(1, round(retry_after)))))
        return resp

    def _error(self, status: int, code: int, msg: str) -> Response:
        return self._answer(status, {"code": code, "msg": msg})

    def server_error(self) -> Response:
        return self._error(500, -1001, "Internal error; unable to process your request. Please try again.")

    def over_limit(self, retry_after: float) -> Response:
        limits = self.state.limits
        window = "1 MINUTE" if limits.binance_window_s == 60 else f"{limits.binance_window_s:g} SECOND"
        msg = (
            f"Too much request weight used; current limit is {limits.binance_weight_budget} request weight per "
            f"{window}. Please use the websocket for live updates to avoid bans."
        )
        return self._answer(429, {"code": -1003, "msg": msg}, retry_after)

    def _banned(self, now_ms: int) -> Response:
        msg = (
            f"Way too much request weight used; IP banned until {self.banned_until_ms}. "
            "Please use the websocket for live updates to avoid bans."
        )
        return self._answer(418, {"code": -1003, "msg": msg}, (self.banned_until_ms - now_ms) / 1000)

    def _check_weight(self) -> Response | None:
        limits = self.state.limits
        if not limits.enabled:
            return None
        now_ms = self.state.wall_ms()
        if now_ms < self.banned_until_ms:
            return self._banned(now_ms)
        if self.weight is None or (self.weight.budget, self.weight.window_s) != (
            limits.binance_weight_budget,
            limits.binance_window_s,
        ):
            self.weight = FixedWindow(limits.binance_weight_budget, limits.binance_window_s)
        now = now_ms / 1000
        if self.weight.try_take(limits.binance_request_weight, now):
            return None
        window = int(now // limits.binance_window_s)
        if window != self.over_window:
            self.over_window, self.over_in_window = window, 0
        self.over_in_window += 1
        if self.over_in_window > limits.binance_ban_after:
            self.banned_until_ms = now_ms + int(limits.binance_ban_s * 1000)
            return self._banned(now_ms)
        return self.over_limit(self.weight.retry_after(now))

    def authenticate(self, req: Request) -> SandboxAccount | Response:
        key = req.headers.get("x-mbx-apikey")
        if not key:
            return self._error(401, -2014, "API-key format invalid.")
        acc = self.by_key.get(key)
        if acc is None:
            return self._error(401, -2015, "Invalid API-key, IP, or permissions for action.")
        pairs = parse_qsl(req.query, keep_blank_values=True)
        params = dict(pairs)
        for name in ("timestamp", "signature"):
            if not params.get(name):
                return self._error(
                    400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
                )
        try:
            ts = int(params["timestamp"])
            window = int(params.get("recvWindow") or 5000)
        except ValueError:
            return self._error(400, -1100, "Illegal characters found in parameter 'timestamp' or 'recvWindow'.")
        if window > 60_000 or window <= 0:
            return self._error(400, -1131, "recvWindow must be less than 60000")
        now = self.state.wall_ms()
        if ts >= now + 1000 or now - ts > window:
            return self._error(400, -1021, "Timestamp for this request is outside of the recvWindow.")
        # the signed text is the query as sent, without the signature parameter
        signed = "&".join(part for part in req.query.split("&") if not part.startswith("signature="))
        expected = hmac.new(acc.api_secret.encode(), signed.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, params["signature"].lower()):
            return self._error(400, -1022, "Signature for this request is not valid.")
        return acc

    def serve(self, req: Request) -> Response:
        if req.path != PATH:
            return self._error(404, -1000, "Not found.")
        if req.method != "GET":
            return self._error(405, -1000, "Method not allowed.")
        limited = self._check_weight()
        if limited is not None:
            return limited
        acc = self.authenticate(req)
        if isinstance(acc, Response):
            return acc
        params = dict(parse_qsl(req.query, keep_blank_values=True))
        kind = params.get("type")
        if not kind:
            return self._error(400, -1102, "Mandatory parameter 'type' was not sent, was empty/null, or malformed.")
        if kind not in TYPES:
            return self._error(400, -1130, "Data sent for parameter 'type' is not valid.")
        try:
            limit = int(params.get("limit") or 7)
            start = int(params["startTime"]) if params.get("startTime") else None
            end = int(params["endTime"]) if params.get("endTime") else None
        except ValueError:
            return self._error(400, -1100, "Illegal characters found in a parameter.")
        if not 7 <= limit <= 30:
            return self._error(400, -1130, "Data sent for parameter 'limit' is not valid.")
        if start is not None and end is not None:
            if start > end:
                return self._error(400, -1130, "Data sent for parameter 'startTime' is not valid.")
            if end - start >= RETENTION_MS:
                return self._error(400, -1127, "More than 30 days between startTime and endTime.")
        horizon_ms = self.state.horizon_us() // 1000
        if start is None and end is None:
            days = self.snapshot_days(horizon_ms - 7 * DAY_MS, None)[-limit:]
        else:
            days = self.snapshot_days(start, end)
            days = days[:limit] if start is not None else days[-limit:]
        vos = [self.snapshot(acc.account, kind, d) for d in days]
        self.stats["entries_served"] += len(vos)
        return self._answer(200, {"code": 200, "msg": "", "snapshotVos": vos})


def _table(columns: dict[str, list[Any]], schema: pa.Schema) -> pa.Table:
    arrays = []
    for f in schema:
        values = columns[f.name]
        if f.type == DECIMAL:
            arrays.append(pa.array(values, pa.string()).cast(DECIMAL))
        elif f.type == TIMESTAMP:
            arrays.append(pa.array(values, pa.int64()).cast(TIMESTAMP))
        else:
            arrays.append(pa.array(values, f.type))
    return pa.Table.from_arrays(arrays, schema=schema)
