"""A small keep-alive HTTP/1.1 client: one connection to one venue host, responses parsed by httptools.

Why not urllib3 or http.client: they parse every response's headers with the standard library's email
package and build the request through several layers, about 350 µs of CPU per request here; one page of a
ledger holds 100 entries, so that alone capped extraction near 170k rows per CPU-second before any row
was built. This client does one send and as few receives as the answer needs, and httptools (llhttp, the
parser of Node.js, in C) handles Content-Length, chunked bodies and keep-alive: about 40 µs per request.

It does only what the venue APIs need: GET/POST with a small body, no redirects (a venue that redirects is
answered as an error by the caller), no proxies, no compression (none is asked for). TLS verifies the host's
certificate with the system's trust store. Every failure is an OSError (timeouts, refused or dropped
connections, bodies cut short, unparseable answers), which the caller retries.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httptools

_RECV = 1 << 16  # below malloc's mmap threshold: a bigger buffer costs an mmap and munmap per receive


class ProtocolError(ConnectionError):
    """The answer is not valid HTTP/1.1, or ended before it was complete."""


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lowercase names; repeated headers joined with ", "
    body: bytes


@dataclass
class _Answer:
    """httptools' callbacks fill this while a response is read."""

    headers: dict[str, str] = field(default_factory=dict)
    body: list[bytes] = field(default_factory=list)
    head_done: bool = False
    complete: bool = False
    keep_alive: bool = False
    parser: httptools.HttpResponseParser | None = None

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text

    def on_headers_complete(self) -> None:
        self.head_done = True

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.complete = True
        # Only valid inside the callback: once the message is done the parser resets and says False.
        self.keep_alive = self.parser is not None and self.parser.should_keep_alive()


class HttpClient:
    def __init__(self, base_url: str, *, connect_timeout: float, read_timeout: float, user_agent: str) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {parts.scheme}://{parts.hostname}")
        self.root = f"{parts.scheme}://{parts.netloc}"
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.tls = ssl.create_default_context() if parts.scheme == "https" else None
        self.host_header = parts.netloc.rsplit("@", 1)[-1]
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.user_agent = user_agent
        self._sock: socket.socket | None = None

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_hostname=self.host)
            sock.settimeout(self.read_timeout)
        except BaseException:
            sock.close()
            raise
        return sock

    def request(self, method: str, target: str, headers: dict[str, str], body: bytes | None = None) -> Response:
        """One request on the kept-alive connection (a new one if there is none or the old one was closed by
        the server while idle: then the request is sent once more, as no answer to it was read)."""
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host_header}", f"User-Agent: {self.user_agent}"]
        for name, value in headers.items():
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                raise ValueError(f"header {name!r} holds a line break")
            lines.append(f"{name}: {value}")
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        message = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
        reused = self._sock is not None
        try:
            return self._exchange(message, method)
        except _StaleConnection:
            if not reused:
                raise ProtocolError("the connection closed without an answer") from None
            return self._exchange(message, method)

    def _exchange(self, message: bytes, method: str) -> Response:
        if self._sock is None:
            self._sock = self._connect()
        sock = self._sock
        answer = _Answer()
        parser = answer.parser = httptools.HttpResponseParser(answer)
        received = 0
        try:
            sock.sendall(message)
            while not answer.complete:
                data = sock.recv(_RECV)
                if not data:
                    if received == 0:
                        raise _StaleConnection
                    if answer.head_done and not {"content-length", "transfer-encoding"} & answer.headers.keys():
                        self.close()  # a body that ends with the connection (HTTP/1.0 style)
                        break
                    raise ProtocolError(f"the connection closed after {received} bytes of the answer")
                received += len(data)
                parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.close()
            raise ProtocolError(f"unparseable answer ({type(exc).__name__})") from None
        except (ConnectionResetError, BrokenPipeError):
            self.close()
            if received == 0:
                raise _StaleConnection from None
            raise
        except BaseException:
            self.close()
            raise
        if self._sock is None:
            return Response(parser.get_status_code(), answer.headers, b"".join(answer.body))
        if not answer.keep_alive:
            self.close()
        return Response(parser.get_status_code(), answer.headers, b"".join(answer.body))


class _StaleConnection(ConnectionError):
    """A kept-alive connection the server had closed: nothing of the answer arrived."""
