"""A small client of the five venues written from /work/shared/venue-docs and the unified-row contract alone.

It shares no code with the sandbox (nor with ledgerlake.venues): signing, paging and the mapping to unified
rows are a third reading of the documents, so tests comparing it with the sandbox's truth can fail.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import urllib3

DOCS = "/work/shared/venue-docs"
HTTP = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2.0, read=10.0))


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text, parse_float=Decimal)


def call(method: str, url: str, headers: dict[str, str] | None = None, body: str | None = None, **kw: Any) -> Answer:
    r = HTTP.request(method, url, headers=headers or {}, body=body, **kw)
    return Answer(r.status, {k.lower(): v for k, v in r.headers.items()}, r.data.decode())


def ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


# --- signing (one function per venue, from the README's Authentication section) ------------------------------
def xhx_headers(key: str, secret: str, method: str, path: str, query: dict[str, Any], body: str = "",
                ts: int | None = None, recv: str = "5000") -> dict[str, str]:  # fmt: skip
    headers = {
        "validate-algorithms": "HmacSHA256",
        "validate-appkey": key,
        "validate-recvwindow": recv,
        "validate-timestamp": str(ts if ts is not None else int(time.time() * 1000)),
    }
    text = "&".join(f"{k}={headers[k]}" for k in sorted(headers)) + f"#{method}#{path}"
    if query:
        text += "#" + "&".join(f"{k}={query[k]}" for k in sorted(query))
    if body:
        text += "#" + body
    headers["validate-signature"] = hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    return headers


def binance_query(secret: str, params: dict[str, Any], ts: int | None = None) -> str:
    q = urlencode({**params, "timestamp": ts if ts is not None else int(time.time() * 1000)})
    return q + "&signature=" + hmac.new(secret.encode(), q.encode(), hashlib.sha256).hexdigest()


def coinbase_headers(key: str, secret: str, passphrase: str, method: str, request_path: str, body: str = "",
                     ts: float | None = None) -> dict[str, str]:  # fmt: skip
    stamp = str(ts if ts is not None else time.time())
    mac = hmac.new(base64.b64decode(secret), (stamp + method + request_path + body).encode(), hashlib.sha256)
    return {
        "CB-ACCESS-KEY": key,
        "CB-ACCESS-SIGN": base64.b64encode(mac.digest()).decode(),
        "CB-ACCESS-TIMESTAMP": stamp,
        "CB-ACCESS-PASSPHRASE": passphrase,
    }


def sunx_url(base_url: str, key: str, secret: str, path: str, when: datetime | None = None) -> str:
    params = {
        "AccessKeyId": key,
        "SignatureMethod": "HmacSHA256",
        "SignatureVersion": "2",
        "Timestamp": (when or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S"),
    }
    query = "&".join(f"{k}={quote(params[k], safe='')}" for k in sorted(params))
    host = urlsplit(base_url).netloc.lower()  # what urllib3 sends as Host
    payload = f"POST\n{host}\n{path}\n{query}"
    sig = base64.b64encode(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()).decode()
    return f"{base_url}{path}?{query}&Signature={quote(sig, safe='')}"


# --- one request per venue ---------------------------------------------------------------------------------
def xhx_get(base: str, acc: Any, query: dict[str, Any], **kw: Any) -> Answer:
    path = "/fapi/v1/account/logs"
    headers = xhx_headers(acc.api_key, acc.api_secret, "GET", path, query, **kw)
    return call("GET", base + path + ("?" + urlencode(query) if query else ""), headers)


def binance_get(base: str, acc: Any, params: dict[str, Any], ts: int | None = None) -> Answer:
    url = f"{base}/sapi/v1/accountSnapshot?{binance_query(acc.api_secret, params, ts)}"
    return call("GET", url, {"X-MBX-APIKEY": acc.api_key})


def coinbase_get(base: str, acc: Any, params: dict[str, Any], key_acc: Any | None = None, **kw: Any) -> Answer:
    cred = key_acc or acc
    path = f"/accounts/{acc.account}/ledger" + ("?" + urlencode(params) if params else "")
    return call("GET", base + path, coinbase_headers(cred.api_key, cred.api_secret, cred.passphrase, "GET", path, **kw))


def pacifica_get(base: str, params: dict[str, Any], key: str | None = None) -> Answer:
    return call("GET", f"{base}/api/v1/account/balance/history?{urlencode(params)}", {"PF-API-KEY": key} if key else {})


def sunx_post(base: str, acc: Any, body: dict[str, Any], when: datetime | None = None) -> Answer:
    url = sunx_url(base, acc.api_key, acc.api_secret, "/sapi/v1/account/bill_record", when)
    return call("POST", url, {"Content-Type": "application/json"}, json.dumps(body))


# --- unified rows from the contract (independent reading) --------------------------------------------------
XHX_TYPES = {1: "deposit", 2: "withdrawal", 3: "fee", 4: "realized_pnl", 5: "funding", 6: "liquidation",
             7: "transfer", 8: "transfer", 9: "trade", 10: "rebate", 11: "trade", 12: "trade", 13: "trade",
             14: "trade", 15: "settlement", 16: "liquidation"}  # fmt: skip
CB_TYPES = {"transfer": "transfer", "match": "trade", "fee": "fee", "rebate": "rebate", "conversion": "trade"}
PF_TYPES = {"deposit": "deposit", "deposit_release": "deposit", "withdraw": "withdrawal", "trade": "trade",
            "market_liquidation": "liquidation", "backstop_liquidation": "liquidation",
            "adl_liquidation": "liquidation", "subaccount_transfer": "transfer", "funding": "funding",
            "payout": "reward"}  # fmt: skip
SUNX_TYPES = {3: "realized_pnl", 4: "realized_pnl", 5: "fee", 6: "fee", 7: "fee", 8: "fee", 9: "settlement",
              10: "settlement", 11: "fee", 12: "liquidation", 13: "liquidation", 14: "transfer", 15: "transfer",
              19: "adjustment", 26: "adjustment", 28: "reward", 29: "rebate", 30: "funding", 31: "funding",
              34: "transfer", 35: "transfer", 36: "transfer", 37: "transfer", 38: "transfer", 39: "transfer",
              46: "liquidation", 47: "liquidation", 66: "transfer", 67: "transfer"}  # fmt: skip


def dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def from_ms(value: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=value)


def dec(text: Any) -> Decimal | None:
    return None if text is None else Decimal(str(text))


def xhx_row(account: str, it: dict[str, Any]) -> dict[str, Any]:
    return dict(venue="exchangehubx", account=account, entry_id=str(it["id"]), occurred_at=from_ms(it["created_at"]),
                asset=it["asset"], amount=dec(it["amount"]), balance_before=dec(it["balance_before"]),
                balance_after=dec(it["balance_after"]), entry_type=XHX_TYPES.get(it["change_type"], "other"),
                venue_entry_type=str(it["change_type"]),
                reference_id=str(it["related_id"]) if it["related_id"] else None, instrument=None,
                details=dumps({"related_type": it["related_type"], "remark": it["remark"]}))  # fmt: skip


def coinbase_row(account: str, currency: str, it: dict[str, Any]) -> dict[str, Any]:
    d = it["details"]
    ref = d.get("trade_id") or d.get("profile_transfer_id") or d.get("transfer_id")
    return dict(venue="coinbase", account=account, entry_id=it["id"],
                occurred_at=datetime.fromisoformat(it["created_at"].replace("Z", "+00:00")), asset=currency,
                amount=dec(it["amount"]), balance_before=None, balance_after=dec(it["balance"]),
                entry_type=CB_TYPES.get(it["type"], "other"), venue_entry_type=it["type"], reference_id=ref,
                instrument=d.get("product_id"), details=dumps({"details": d}))  # fmt: skip


def pacifica_row(account: str, asset: str, it: dict[str, Any]) -> dict[str, Any]:
    key = f"{account}|{it['created_at']}|{it['event_type']}|{it['amount']}|{it['balance']}|{it['pending_balance']}"
    return dict(venue="pacifica", account=account, entry_id=hashlib.sha256(key.encode()).hexdigest()[:32],
                occurred_at=from_ms(it["created_at"]), asset=asset, amount=dec(it["amount"]), balance_before=None,
                balance_after=dec(it["balance"]), entry_type=PF_TYPES.get(it["event_type"], "other"),
                venue_entry_type=it["event_type"], reference_id=None, instrument=None,
                details=dumps({"pending_balance": it["pending_balance"]}))  # fmt: skip


def sunx_row(account: str, it: dict[str, Any]) -> dict[str, Any]:
    rest = {k: it[k] for k in ("face_margin_account", "id", "margin_account", "trade_partition")}
    return dict(venue="sunx", account=account, entry_id=str(it["query_id"]), occurred_at=from_ms(it["ts"]),
                asset=it["asset"], amount=it["amount"], balance_before=None, balance_after=None,
                entry_type=SUNX_TYPES.get(it["type"], "other"), venue_entry_type=str(it["type"]), reference_id=None,
                instrument=it["contract_code"] or None, details=dumps(rest))  # fmt: skip


def with_seq(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**r, "entry_seq": i} for i, r in enumerate(rows)]


# --- paging clients: every entry of [start, end) exactly once, in chronological order --------------------------
def collect_exchangehubx(base: str, acc: Any, start: datetime, end: datetime, limit: int = 100) -> list[dict]:
    items: list[dict] = []
    query: dict[str, Any] = {"start_time": ms(start), "end_time": ms(end) - 1, "limit": limit}
    while True:
        page = xhx_get(base, acc, query).json()
        assert page["code"] == 0, page
        items.extend(page["data"]["items"])
        if not page["data"]["has_more"]:
            break
        query = {**query, "cursor": page["data"]["next_cursor"]}
    items.sort(key=lambda it: (it["created_at"], it["id"]))
    return with_seq([xhx_row(acc.account, it) for it in items])


def collect_coinbase(base: str, acc: Any, start: datetime, end: datetime, limit: int = 100) -> list[dict]:
    items: list[dict] = []
    params: dict[str, Any] = {"start_date": start.isoformat(), "end_date": end.isoformat(), "limit": limit}
    while True:
        answer = coinbase_get(base, acc, params)
        assert answer.status == 200, answer.text
        page = answer.json()
        items.extend(page)
        if len(page) < limit:
            break
        params = {**params, "after": answer.headers["cb-after"]}
    items = [it for it in items if datetime.fromisoformat(it["created_at"].replace("Z", "+00:00")) < end]
    items.sort(key=lambda it: (it["created_at"], int(it["id"])))
    return with_seq([coinbase_row(acc.account, acc.options["currency"], it) for it in items])


def collect_pacifica(base: str, acc: Any, start: datetime, end: datetime, limit: int = 100,
                     cursor: bool = False) -> list[dict]:  # fmt: skip
    """Newest first without a time filter: page back until past `start`; offsets may shift, so dedupe."""
    seen: dict[str, dict] = {}
    order: list[str] = []
    params: dict[str, Any] = {"account": acc.account, "limit": limit}
    offset = 0
    while True:
        page = pacifica_get(base, params if cursor else {**params, "offset": offset}).json()
        assert page["success"], page
        rows = page["data"]
        for it in rows:
            row = pacifica_row(acc.account, acc.options["settlement_asset"], it)
            if row["entry_id"] not in seen:
                seen[row["entry_id"]] = row
                order.append(row["entry_id"])
        offset += len(rows)
        done = not rows or from_ms(rows[-1]["created_at"]) < start
        if cursor:
            done = done or not page["has_more"]
            params = {**params, "cursor": page["next_cursor"]}
        elif len(rows) < limit:
            done = True
        if done:
            break
    listed = [seen[i] for i in order if start <= seen[i]["occurred_at"] < end]
    listed.reverse()  # oldest first; ties keep the reverse of the listing order
    listed.sort(key=lambda r: r["occurred_at"])  # stable
    return with_seq(listed)


def collect_sunx(base: str, acc: Any, start: datetime, end: datetime) -> list[dict]:
    items: list[dict] = []
    cursor = start
    while cursor < end:
        chunk_end = min(end, cursor + timedelta(hours=48))
        body: dict[str, Any] = {"mar_acct": "USDT", "start_time": ms(cursor), "end_time": ms(chunk_end) - 1,
                                "direct": "next"}  # fmt: skip
        while True:
            page = sunx_post(base, acc, body).json()
            assert page.get("code") == 200, page
            items.extend(page["data"])
            if not page["data"]:
                break
            body = {**body, "from_id": max(it["query_id"] for it in page["data"])}
        cursor = chunk_end
    items.sort(key=lambda it: (it["ts"], it["query_id"]))
    return with_seq([sunx_row(acc.account, it) for it in items])


def binance_rows(account: str, vo: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    """Balance and position rows of one snapshot, per the contract."""
    at, kind, data = from_ms(vo["updateTime"]), vo["type"], vo["data"]
    base = {"venue": "binance", "account": account, "snapshot_type": kind, "snapshot_at": at}
    empty = dict.fromkeys(("free", "locked", "borrowed", "interest", "net_asset", "wallet_balance", "margin_balance"))
    balances, positions = [], []
    if kind == "spot":
        details = dumps({k: v for k, v in data.items() if k != "balances"})
        for b in data["balances"]:
            free, locked = Decimal(b["free"]), Decimal(b["locked"])
            balances.append({**base, **empty, "asset": b["asset"], "free": free, "locked": locked,
                             "total": free + locked, "details": details})  # fmt: skip
    elif kind == "margin":
        details = dumps({k: v for k, v in data.items() if k != "userAssets"})
        for u in data["userAssets"]:
            balances.append({**base, **empty, "asset": u["asset"], "free": Decimal(u["free"]),
                             "locked": Decimal(u["locked"]), "borrowed": Decimal(u["borrowed"]),
                             "interest": Decimal(u["interest"]), "net_asset": Decimal(u["netAsset"]),
                             "total": Decimal(u["netAsset"]), "details": details})  # fmt: skip
    else:
        details = dumps({k: v for k, v in data.items() if k not in ("assets", "position")})
        for a in data["assets"]:
            balances.append({**base, **empty, "asset": a["asset"], "wallet_balance": Decimal(a["walletBalance"]),
                             "margin_balance": Decimal(a["marginBalance"]), "total": Decimal(a["walletBalance"]),
                             "details": details})  # fmt: skip
        for p in data["position"]:
            positions.append({"venue": "binance", "account": account, "snapshot_at": at, "symbol": p["symbol"],
                              "position_amt": Decimal(p["positionAmt"]), "entry_price": Decimal(p["entryPrice"]),
                              "mark_price": Decimal(p["markPrice"]),
                              "unrealized_profit": Decimal(p["unRealizedProfit"])})  # fmt: skip
    return balances, positions
