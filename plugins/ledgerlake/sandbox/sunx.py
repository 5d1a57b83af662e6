"""SunX: POST /sapi/v1/account/bill_record (venue-docs/sunx-bill-record.txt).

HTX signature v2 in the query, business parameters in a JSON body, amounts as bare JSON numbers written
here as text (never through a float). Pages by `from_id` + `direct`: `next` returns ascending query_id above
from_id, `prev` descending below it. Window at most 48 h and within the past 90 days; `mar_acct` required.

UNVERIFIED choices: page size 100 (SandboxOptions.sunx_page_size; the document names none); the default
direct when absent (SandboxOptions.sunx_default_direct, "next"; the page contradicts itself); start_time and
end_time both inclusive; gateway errors (signature, rate limit) in the HTX `{"status":"error","err-code":..}`
shape and parameter errors as `{"code":<int>,"msg":..}`, both with HTTP 200 (SandboxOptions.sunx_error_http_status);
a Timestamp more than 5 minutes from the server clock is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote

import numpy as np
import orjson

from ledgerlake.sandbox.http import Request, Response
from ledgerlake.sandbox.ledger import Chunk, Kind, LedgerModel, fmt_units
from ledgerlake.sandbox.ratelimit import FixedWindow
from ledgerlake.sandbox.text import Rows
from ledgerlake.sandbox.venue import LedgerVenue, SandboxAccount, State, details_json

PATH = "/sapi/v1/account/bill_record"
WINDOW_MS = 48 * 3_600_000
RETENTION_MS = 90 * 86_400_000
TIMESTAMP_SKEW_S = 300
_STAMP = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)")

# code: (weight, sign, low, high, contract kind) with contract kind "swap", "future", or "" (no contract)
_TYPES: dict[int, tuple[float, int, float, float, str]] = {
    3: (2.0, 0, -1.0, 3.0, "swap"),
    4: (2.0, 0, -1.0, 3.0, "swap"),
    5: (2.0, -1, -3.0, 0.0, "swap"),
    6: (1.5, -1, -3.0, 0.0, "swap"),
    7: (2.0, -1, -3.0, 0.0, "swap"),
    8: (1.5, -1, -3.0, 0.0, "swap"),
    9: (0.2, 0, 0.0, 3.0, "future"),
    10: (0.2, 0, 0.0, 3.0, "future"),
    11: (0.2, -1, -3.0, 0.0, "future"),
    12: (0.1, -1, 1.0, 3.0, "swap"),
    13: (0.1, -1, 1.0, 3.0, "swap"),
    14: (0.4, 1, 1.0, 4.0, ""),
    15: (0.4, -1, 1.0, 4.0, ""),
    19: (0.05, -1, 0.0, 2.0, ""),
    26: (0.05, 0, -2.0, 1.0, ""),
    28: (0.1, 1, -1.0, 2.0, ""),
    29: (0.5, 1, -3.0, 0.0, "swap"),
    30: (1.5, 1, -3.0, 1.0, "swap"),
    31: (1.5, -1, -3.0, 1.0, "swap"),
    34: (0.1, -1, 1.0, 3.0, ""),
    35: (0.1, 1, 1.0, 3.0, ""),
    36: (0.1, -1, 1.0, 3.0, ""),
    37: (0.1, 1, 1.0, 3.0, ""),
    38: (0.1, 1, 1.0, 3.0, ""),
    39: (0.1, -1, 1.0, 3.0, ""),
    46: (0.05, 0, 0.0, 3.0, "swap"),
    47: (0.05, 0, 0.0, 3.0, "swap"),
    66: (0.05, 1, 0.0, 3.0, ""),
    67: (0.05, -1, 0.0, 3.0, ""),
}
# The contract's type -> entry_type table (our own copy, from the contract text).
ENTRY_TYPES = {
    3: "realized_pnl", 4: "realized_pnl", 5: "fee", 6: "fee", 7: "fee", 8: "fee", 9: "settlement",
    10: "settlement", 11: "fee", 12: "liquidation", 13: "liquidation", 14: "transfer", 15: "transfer",
    19: "adjustment", 26: "adjustment", 28: "reward", 29: "rebate", 30: "funding", 31: "funding",
    34: "transfer", 35: "transfer", 36: "transfer", 37: "transfer", 38: "transfer", 39: "transfer",
    46: "liquidation", 47: "liquidation", 66: "transfer", 67: "transfer",
}  # fmt: skip
_CODES = tuple(_TYPES)
_SWAPS = ("BTC-USDT", "ETH-USDT", "SOL-USDT", "DOGE-USDT")
QUERY_ID_BASE = 138_000_000
MODEL = LedgerModel(
    kinds=tuple(Kind(str(c), w, s, lo, hi) for c, (w, s, lo, hi, _) in _TYPES.items()),
    assets=("USDT",),
    asset_factor=(1.0,),
    asset_weights=(1.0,),
    decimals=18,
    credit_code="14",
    debit_code="15",
    precisions=(2, 8, 12, 18),
)


def _face(code: int) -> str:
    return "USDT" if code in (34, 35, 36, 37) else "BTC-USDT" if code in (38, 39) else ""


# Columns of the serialiser, by kind: type code text, face margin account, contract kind (0 swap, 1 delivery, 2 none)
_CODE_TEXT = [str(c).encode() for c in _CODES]
_FACE_TEXT = [_face(c).encode() for c in _CODES]
_CONTRACT_KIND = np.array([{"swap": 0, "future": 1, "": 2}[_TYPES[c][4]] for c in _CODES])


def _timestamp(text: str) -> datetime:
    """The signature's Timestamp, as strptime("%Y-%m-%dT%H:%M:%S") reads it (ValueError if it does not); the
    usual form without strptime's cost (~40 us a request)."""
    m = _STAMP.fullmatch(text)
    if m is None:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    year, month, day, hour, minute, second = map(int, m.groups())
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def _delivery_code(t_ms: int) -> str:
    """A quarterly delivery contract code like BTC-USDT-210625 (the Friday ending the quarter)."""
    day = datetime.fromtimestamp(t_ms // 1000, UTC).date()
    month = ((day.month - 1) // 3 + 1) * 3
    return f"BTC-USDT-{day.year % 100:02d}{month:02d}25"


class SunX(LedgerVenue):
    name = "sunx"
    newest_first = False  # direct=next lists oldest first

    def __init__(self, state: State, accounts: list[SandboxAccount]) -> None:
        self.index = {a.account: i for i, a in enumerate(accounts)}
        self.by_key = {a.api_key: a for a in accounts}
        self.windows: dict[str, FixedWindow] = {}
        super().__init__(state, accounts)

    def model_for(self, acc: SandboxAccount) -> LedgerModel:
        return MODEL

    def query_id(self, account: str, pos: int) -> int:
        return QUERY_ID_BASE + pos * len(self.accounts) + self.index[account]

    def first_pos_with_query_id_above(self, account: str, value: int) -> int:
        n, a = len(self.accounts), self.index[account]
        return (value - QUERY_ID_BASE - a) // n + 1

    def pos_of_entry_id(self, account: str, entry_id: str) -> int | None:
        if not entry_id.isdigit():
            return None
        pos, rest = divmod(int(entry_id) - QUERY_ID_BASE - self.index[account], len(self.accounts))
        return pos if rest == 0 else None

    def retention_lo(self, account: str) -> int:
        oldest = self.state.horizon_us() - RETENTION_MS * 1000
        return max(self.views[account].lo, self.pos_at(account, oldest))

    def _fields(self, account: str, pos: int, blk: Chunk, j: int) -> tuple[Any, ...]:
        code = _CODES[blk.kinds[j]]
        aux = blk.aux[j]
        t_ms = blk.times[j] // 1000
        contract_kind = _TYPES[code][4]
        contract = (
            _SWAPS[aux % len(_SWAPS)] if contract_kind == "swap" else _delivery_code(t_ms) if contract_kind else ""
        )
        face = _face(code)
        qid = self.query_id(account, pos)
        return (
            qid - QUERY_ID_BASE + 100_000,  # id: the bill's own id, a different sequence from query_id
            fmt_units(blk.amounts[j], 18),
            "USDT",
            qid,
            code,
            t_ms,
            contract,
            self.account(account).options.get("mar_acct", "USDT"),
            face,
            "USDT",
        )

    def chunk_items(self, account: str, chunk: Chunk, order: slice) -> tuple[bytes, np.ndarray]:
        kind = chunk.kind_i[order].astype(np.intp)
        aux = chunk.aux_i[order]
        amount = chunk.amount.take(order)
        t_ms = chunk.t_us[order] // 1000
        qid = self.query_id(account, chunk.first) + np.arange(chunk.n, dtype=np.int64)[order] * len(self.accounts)
        # a chunk lies inside one UTC day, so one delivery contract code serves all of it (as _fields)
        contracts = [s.encode() for s in _SWAPS] + [_delivery_code(int(chunk.t_us[0]) // 1000).encode(), b""]
        ckind = _CONTRACT_KIND[kind]
        contract = np.where(ckind == 0, aux % len(_SWAPS), len(_SWAPS) + ckind - 1)
        margin = self.account(account).options.get("mar_acct", "USDT").encode()
        # the amount is a bare JSON number written from exact text: 18.800000000000000000
        rows = Rows(chunk.n).const(b'{"id":').integer(qid - QUERY_ID_BASE + 100_000)
        rows.const(b',"amount":').units(amount.whole, amount.frac, 18).const(b',"asset":"USDT","query_id":')
        rows.integer(qid).const(b',"type":').choice(_CODE_TEXT, kind).const(b',"ts":').integer(t_ms)
        rows.const(b',"contract_code":"').choice(contracts, contract)
        rows.const(b'","margin_account":"' + margin + b'","face_margin_account":"').choice(_FACE_TEXT, kind)
        return rows.const(b'","trade_partition":"USDT"},').pack()

    def unified(self, account: str, pos: int, blk: Chunk, j: int) -> tuple[Any, ...]:
        f = self._fields(account, pos, blk, j)
        return (
            str(f[3]),
            f[5] * 1000,
            f[2],
            f[1],
            None,
            None,
            ENTRY_TYPES.get(f[4], "other"),
            str(f[4]),
            None,
            f[6] or None,
            details_json({"face_margin_account": f[8], "id": f[0], "margin_account": f[7], "trade_partition": f[9]}),
        )

    # --- HTTP -------------------------------------------------------------------------------------------
    def _gateway_error(self, code: str, message: str, status: int | None = None) -> Response:
        body = {"status": "error", "err-code": code, "err-msg": message, "data": None}
        return Response(status or self.state.options.sunx_error_http_status, orjson.dumps(body))

    def _param_error(self, code: int, message: str) -> Response:
        body = {"code": code, "msg": message, "ts": self.state.wall_ms()}
        return Response(self.state.options.sunx_error_http_status, orjson.dumps(body))

    def server_error(self) -> Response:
        return self._gateway_error("internal-error", "Internal error, please try again later", 500)

    def over_limit(self, retry_after: float) -> Response:
        msg = "Frequency of requests has exceeded the limit, please try again later"
        return self._gateway_error("base-request-exceed-frequency-limit", msg)

    def authenticate(self, req: Request) -> SandboxAccount | Response:
        params = dict(parse_qsl(req.query, keep_blank_values=True))
        bad = "api-signature-not-valid"
        for name in ("AccessKeyId", "SignatureMethod", "SignatureVersion", "Timestamp", "Signature"):
            if not params.get(name):
                return self._gateway_error(bad, f"Signature not valid: missing required parameter {name}")
        if params["SignatureMethod"] != "HmacSHA256" or params["SignatureVersion"] != "2":
            return self._gateway_error(bad, "Signature not valid: SignatureMethod or SignatureVersion not supported")
        acc = self.by_key.get(params["AccessKeyId"])
        if acc is None:
            return self._gateway_error(bad, "Signature not valid: Incorrect Access key [Access key错误]")
        try:
            stamp = _timestamp(params["Timestamp"])
        except ValueError:
            return self._gateway_error(bad, "Signature not valid: Invalid Timestamp [时间戳无效]")
        if abs(self.state.wall_ms() / 1000 - stamp.timestamp()) > TIMESTAMP_SKEW_S:
            return self._gateway_error(bad, "Signature not valid: Timestamp expired [时间戳过期]")
        expected = sign(req.method, req.headers.get("host", ""), req.path, params, acc.api_secret)
        if not hmac.compare_digest(expected, params["Signature"]):
            return self._gateway_error(bad, "Signature not valid: Verification failure [校验失败]")
        return acc

    def serve(self, req: Request) -> Response:
        if req.path != PATH:
            return self._gateway_error("invalid-request", "Not Found", 404)
        if req.method != "POST":
            return self._gateway_error("invalid-request", "Method not allowed", 405)
        acc = self.authenticate(req)
        if isinstance(acc, Response):
            return acc
        limits = self.state.limits
        if limits.enabled:
            window = self.windows.get(acc.api_key)
            if window is None or (window.budget, window.window_s) != (limits.sunx_reads, limits.sunx_window_s):
                window = self.windows[acc.api_key] = FixedWindow(limits.sunx_reads, limits.sunx_window_s)
            if not window.try_take(1):
                return self.over_limit(window.retry_after())
        try:
            body = orjson.loads(req.body) if req.body.strip() else {}
        except orjson.JSONDecodeError:
            return self._param_error(1067, "Invalid parameter: the body is not JSON")
        if not isinstance(body, dict):
            return self._param_error(1067, "Invalid parameter: the body must be a JSON object")
        mar_acct = body.get("mar_acct")
        if not mar_acct:
            return self._param_error(1067, "Invalid parameter: mar_acct is required")
        if str(mar_acct).upper() != acc.options.get("mar_acct", "USDT"):
            return self._param_error(1067, f"Invalid parameter: unknown mar_acct {mar_acct}")
        now_ms = self.state.horizon_us() // 1000
        try:
            end = int(body["end_time"]) if body.get("end_time") is not None else now_ms
            start = int(body["start_time"]) if body.get("start_time") is not None else end - WINDOW_MS
            from_id = int(body["from_id"]) if body.get("from_id") is not None else None
        except (TypeError, ValueError):
            return self._param_error(1067, "Invalid parameter: start_time, end_time and from_id must be integers")
        direct = str(body.get("direct") or self.state.options.sunx_default_direct).lower()
        if direct not in ("next", "prev"):
            return self._param_error(1067, "Invalid parameter: direct must be next or prev")
        if start > end:
            return self._param_error(1067, "Invalid parameter: start_time must not be after end_time")
        if end - start > WINDOW_MS:
            return self._param_error(1067, "Invalid parameter: the query window must not exceed 48 hours")
        if start < now_ms - RETENTION_MS:
            return self._param_error(1067, "Invalid parameter: the query window must be within the past 90 days")
        contract = str(body.get("contract") or "").upper()
        account = acc.account
        lo, hi = self.bounds(account)
        lo = max(lo, self.pos_at(account, start * 1000))
        hi = min(hi, self.pos_at(account, (end + 1) * 1000))  # end inclusive
        stream = self.streams[account]
        view = self.views[account]
        if direct == "next":
            if from_id is not None:
                lo = max(lo, self.first_pos_with_query_id_above(account, from_id))
            walk = stream.walk(lo, hi)
        else:
            if from_id is not None:
                hi = min(hi, self.first_pos_with_query_id_above(account, from_id - 1))
            walk = stream.walk_desc(hi, lo)
        size = self.state.options.sunx_page_size
        if not view.dropped and not contract:  # a contiguous run of positions: slices of serialised chunks
            count = max(0, min(size, hi - lo))
            a, b = (lo, lo + count) if direct == "next" else (hi - count, hi)
            listed = self.listing(account, a, b, newest_first=direct != "next") if count else b""
        else:
            items: list[bytes] = []
            for pos, blk, j in walk if lo < hi else ():
                if view.dropped and view.is_dropped(pos):
                    continue
                if contract and self._fields(account, pos, blk, j)[6].upper() != contract:
                    continue
                items.append(self.item(account, pos, blk, j))
                if len(items) == size:
                    break
            count, listed = len(items), b",".join(items)
        self.stats["entries_served"] += count
        out = b'{"code":200,"msg":"ok","data":[' + listed + b'],"ts":' + str(self.state.wall_ms()).encode()
        return Response(200, out + b"}")


def sign(method: str, host: str, path: str, params: dict[str, str], secret: str) -> str:
    """HTX signature v2: base64 HMAC-SHA256 of METHOD\\nhost\\npath\\nsorted urlencoded query (no Signature)."""
    query = "&".join(
        f"{k}={quote(v, safe='')}" for k, v in sorted((k, v) for k, v in params.items() if k != "Signature")
    )
    payload = f"{method.upper()}\n{host.lower()}\n{path}\n{query}"
    return base64.b64encode(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()).decode()
