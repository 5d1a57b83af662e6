"""A lean HTTP/1.1 server on asyncio (uvloop when present) with httptools' parser.

Why not ASGI on uvicorn: the sandbox must inject faults a framework hides (drop a connection without an
answer, cut a body short after a full Content-Length, answer late), and the per-request overhead of this
path is a fraction of uvicorn's (measured in the report of issue 3). Handlers are synchronous functions
`Request -> Response`; only the fault delays are asynchronous (timers), so one event loop thread serves
all five venues.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus

import httptools

log = logging.getLogger(__name__)


@dataclass
class Request:
    method: str
    path: str  # as sent, still percent-encoded
    query: str  # raw query string as sent, without '?'
    headers: dict[str, str]  # lowercase names
    body: bytes
    client: str

    @property
    def target(self) -> str:
        """The request target exactly as sent (path plus '?query')."""
        return f"{self.path}?{self.query}" if self.query else self.path


@dataclass
class Response:
    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json; charset=utf-8"
    delay: float = 0.0  # seconds to wait before answering (a slow venue)
    fault: str | None = None  # "drop": close without answering; "truncate": cut the body short


Handler = Callable[[Request], Response]

_REASONS = {s.value: s.phrase for s in HTTPStatus}


def _head(resp: Response, keep_alive: bool) -> bytes:
    lines = [
        f"HTTP/1.1 {resp.status} {_REASONS.get(resp.status, 'Unknown')}",
        f"Content-Type: {resp.content_type}",
        f"Content-Length: {len(resp.body)}",
    ]
    lines.extend(f"{k}: {v}" for k, v in resp.headers)
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _Protocol(asyncio.Protocol):
    def __init__(self, handler: Handler, loop: asyncio.AbstractEventLoop, connections: set[_Protocol]) -> None:
        self.handler = handler
        self.loop = loop
        self.connections = connections
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.client = ""
        self.pending: deque[tuple[Request, bool]] = deque()
        self.busy = False
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio.Transport
        peer = transport.get_extra_info("peername")
        self.client = peer[0] if peer else ""
        self.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._write(Response(400, b'{"message":"bad request"}'), keep_alive=False)

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._body = []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        url = self._url.decode("latin-1")
        path, _, query = url.partition("?")
        request = Request(
            method=self.parser.get_method().decode("ascii"),
            path=path,
            query=query,
            headers=self._headers,
            body=b"".join(self._body),
            client=self.client,
        )
        self.pending.append((request, bool(self.parser.should_keep_alive())))
        if not self.busy:
            self._next()

    # answering, in order (HTTP/1.1 pipelining keeps answers in request order)
    def _next(self) -> None:
        while self.pending and self.transport is not None:
            request, keep_alive = self.pending.popleft()
            try:
                resp = self.handler(request)
            except Exception:
                log.exception("sandbox handler failed on %s %s", request.method, request.path)
                resp = Response(500, b'{"message":"sandbox internal error"}')
            if resp.delay > 0:
                self.busy = True
                self.loop.call_later(resp.delay, self._finish_delayed, resp, keep_alive)
                return
            self._write(resp, keep_alive)
        self.busy = False

    def _finish_delayed(self, resp: Response, keep_alive: bool) -> None:
        self.busy = False
        self._write(resp, keep_alive)
        self._next()

    def _write(self, resp: Response, keep_alive: bool) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if resp.fault == "drop":
            transport.abort()
            self.pending.clear()
            return
        if resp.fault == "truncate":
            transport.write(_head(resp, keep_alive) + resp.body[: max(1, len(resp.body) // 2)])
            transport.close()
            self.pending.clear()
            return
        transport.write(_head(resp, keep_alive) + resp.body)
        if not keep_alive:
            transport.close()


class HttpServer:
    """One listening socket answering with `handler`; started and stopped on an event loop."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[_Protocol] = set()

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Protocol(self.handler, loop, self._connections), self.host, self.port, reuse_address=True
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for conn in list(self._connections):
                if conn.transport is not None:
                    conn.transport.close()
            await self._server.wait_closed()
            self._server = None
