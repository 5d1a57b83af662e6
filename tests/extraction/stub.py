"""A minimal Coinbase-shaped ledger server for engine tests that must not depend on the sandbox: newest
first, `after=` paging with CB-AFTER, inclusive dates, and scripted faults. It checks no signature."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson


def entries(start: datetime, n: int, step: timedelta) -> list[dict[str, Any]]:
    """Oldest first; every third entry shares the previous one's time (ties broken by id)."""
    out = []
    t = start
    for i in range(n):
        if i % 3 != 2:
            t = t + step
        out.append(
            {
                "id": str(1000 + i),
                "amount": f"{(i % 7) - 3}.{i:018d}"[:25],
                "balance": f"{i}.5",
                "created_at": t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "type": "match" if i % 2 else "fee",
                "details": {"trade_id": str(i), "product_id": "BTC-USD"},
            }
        )
    return out


class StubLedger:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.faults: list[str] = []  # consumed one per request: "500", "429", "truncate", "auth", "ok"
        self.requests = 0
        self.headers_seen: list[dict[str, str]] = []
        self.ties_ascending = False  # list equal times by ascending id (the contract orders them descending here)

    def page(self, query: dict[str, list[str]]) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first as listed (rows are kept in time order), inclusive dates, `after` = an opaque
        position cursor (so any listing order pages consistently)."""
        lo, hi = ts(query["start_date"][0]), ts(query["end_date"][0])
        limit = int(query.get("limit", ["100"])[0])
        rows = [r for r in reversed(self.rows) if lo <= ts(r["created_at"]) <= hi]
        if self.ties_ascending:
            rows.sort(key=lambda r: (r["created_at"], -int(r["id"])), reverse=True)
        start = int(query["after"][0].removeprefix("p")) if "after" in query else 0
        picked = rows[start : start + limit]
        return picked, (f"p{start + len(picked)}" if picked else None)


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@contextmanager
def serve(stub: StubLedger) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            stub.requests += 1
            stub.headers_seen.append(dict(self.headers))
            fault = stub.faults.pop(0) if stub.faults else "ok"
            if fault == "500":
                return self.reply(500, b'{"message":"Internal server error"}')
            if fault == "429":
                return self.reply(429, b'{"message":"Private rate limit exceeded"}', {"Retry-After": "0.05"})
            if fault == "auth":
                return self.reply(401, b'{"message":"Invalid API Key"}')
            rows, after = stub.page(parse_qs(urlsplit(self.path).query))
            body = orjson.dumps(rows)
            headers = {"CB-AFTER": after} if after else {}
            if fault == "bad-json":
                body = body[: len(body) // 2]
            if fault == "truncate":  # the promised length, then the connection drops
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return None
            return self.reply(200, body, headers)

        def reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def serve_fixed(status: int, body: bytes, headers: dict[str, str] | None = None) -> Iterator[tuple[str, list[str]]]:
    """Answers every request the same way; yields (base URL, request lines seen)."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
