"""HTTP for the venues: engine.client (the cheapest client per page), keep-alive, retries classified.

Every attempt is signed afresh (timestamps), spends rate-limit cost first, and ends in one of: a page,
a retry after Retry-After or backoff with jitter (429, 5xx, timeouts, dropped connections, truncated or
malformed bodies), or an error at once (auth, ban, the venue refusing the request). Messages name the
request by its business parameters only: signed URLs and headers never leave this module.
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

from ledgerlake.engine.client import HttpClient
from ledgerlake.engine.errors import AuthError, BanError, TransientExtractError, VenueRefusedError
from ledgerlake.engine.ratelimit import SlidingWindowLimiter
from ledgerlake.engine.stages import StageClock
from ledgerlake.interval import from_ms
from ledgerlake.venues.base import Request, Venue

log = logging.getLogger("ledgerlake.engine")


@dataclass
class Page:
    status: int
    body: bytes  # as received
    payload: Any  # parsed JSON
    headers: dict[str, str]
    skimmed: bool = False  # its records are stand-ins, the body holds them (engine.pages.PageSkimmer, run._Fetcher)


@dataclass
class HttpStats:
    requests: int = 0
    retries: int = 0
    rate_limit_wait_s: float = 0.0
    retry_wait_s: float = 0.0
    retry_reasons: dict[str, int] = field(default_factory=dict)


class Redactor:
    """Removes secrets from any text before it is logged or raised."""

    def __init__(self, secrets: list[str]) -> None:
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
        with _RedactingFilter.lock:
            _RedactingFilter.secrets.update(self.secrets)

    def __call__(self, text: str) -> str:
        for s in self.secrets:
            text = text.replace(s, "***")
        return text

    def scrub_bytes(self, data: bytes) -> bytes:
        for s in self.secrets:
            b = s.encode()
            if b in data:
                data = data.replace(b, b"***")
        return data


_SIGNED_PARAMS = re.compile(r"(AccessKeyId|Signature|signature|X-MBX-APIKEY)=[^&\s\"']+")


class _RedactingFilter(logging.Filter):
    """urllib3 (boto3's HTTP, and the HTTP of any code sharing the process) logs request lines, signed query
    strings included, at DEBUG level: strip signatures, and any secret of a running extraction, before a
    handler sees the record. (The venues' own requests go through engine.client, which logs nothing.)"""

    secrets: ClassVar[set[str]] = set()
    lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        clean = _SIGNED_PARAMS.sub(r"\1=***", text)
        for secret in list(self.secrets):
            clean = clean.replace(secret, "***")
        if clean != text:
            record.msg, record.args = clean, ()
        return True


_URLLIB3_FILTER = _RedactingFilter()
for _name in ("urllib3.connectionpool", "urllib3.connection", "urllib3.response", "urllib3.util.retry"):
    logging.getLogger(_name).addFilter(_URLLIB3_FILTER)


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class VenueHttp:
    def __init__(
        self,
        venue: Venue,
        limiter: SlidingWindowLimiter | None,
        redact: Redactor,
        context: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        max_retries: int,
        backoff_base_s: float,
        backoff_max_s: float,
        max_retry_after_s: float,
        clock: StageClock | None = None,
        skim: Callable[[bytes], Any] | None = None,
    ) -> None:
        """`skim`: a cheaper parse of a 200 answer's body (None when the body is not of the usual shape)."""
        self.venue = venue
        self.skim = skim
        self.limiter = limiter
        self.redact = redact
        self.context = context  # "venue account interval" for messages
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.max_retry_after_s = max_retry_after_s
        self.stats = HttpStats()
        self.clock = clock or StageClock()
        self.client = HttpClient(
            venue.credentials.base_url,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            user_agent="ledgerlake/0.1",
        )

    def close(self) -> None:
        self.client.close()

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.backoff_max_s, self.backoff_base_s * (2**attempt))
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # equal jitter: never zero, never in lockstep

    def fetch(self, request: Request) -> Page:
        attempt = 0
        while True:
            ticket = None
            if self.limiter is not None:
                with self.clock("rate_limit_wait"):
                    waited, ticket = self.limiter.acquire(request.cost)
                self.stats.rate_limit_wait_s += waited
            retry_after: float | None = None
            try:
                with self.clock("request"):
                    signed = self.venue.sign(request, datetime.now(UTC))
                    self.stats.requests += 1
                    root = self.client.root
                    if not signed.url.startswith(root):
                        raise ValueError(f"{self.context}: a signed URL left the venue's host {root}")
                    resp = self.client.request(request.method, signed.url[len(root) :], signed.headers, signed.body)
            except OSError as exc:
                if ticket is not None:
                    self.limiter.settle(ticket)  # type: ignore[union-attr]
                # Timeouts, refused or dropped connections, bodies shorter than Content-Length. The
                # exception's text may hold the signed URL: only its class is reported.
                reason = type(exc).__name__
            else:
                if ticket is not None:
                    self.limiter.settle(ticket)  # type: ignore[union-attr]
                headers = resp.headers
                if self.limiter is not None and "x-mbx-used-weight-1m" in headers:
                    with contextlib.suppress(ValueError):
                        self.limiter.observe_used(float(headers["x-mbx-used-weight-1m"]))
                body = resp.body
                with self.clock("parse"):
                    payload = self.skim(body) if self.skim is not None and resp.status == 200 else None
                    skimmed = parsed = payload is not None
                    if not skimmed:
                        try:
                            payload = self.venue.parse(body)
                            parsed = True
                        except ValueError:  # orjson.JSONDecodeError is a ValueError
                            payload, parsed = body[:300].decode("utf-8", "replace"), False
                    reply = self.venue.check(resp.status, payload, headers)
                if reply.kind == "ok" and parsed:
                    return Page(resp.status, body, payload, headers, skimmed)
                message = self.redact(reply.message)
                where = f"{self.context}: {request.describe()}"
                if reply.kind == "ban":
                    until = reply.ban_until_ms
                    if until is None:
                        secs = retry_after_seconds(headers.get("retry-after"))
                        until = int((time.time() + secs) * 1000) if secs is not None else None
                    ends = from_ms(until).isoformat() if until else "an unknown time"
                    raise BanError(
                        f"{where}: the venue banned this IP until {ends} (HTTP {resp.status}: {message})", until
                    )
                if reply.kind == "auth":
                    raise AuthError(f"{where}: authentication refused (HTTP {resp.status}): {message}")
                if reply.kind == "fatal":
                    raise VenueRefusedError(f"{where}: the venue refused the request (HTTP {resp.status}): {message}")
                if not parsed and resp.status == 200:
                    reason = f"malformed JSON body ({len(body)} bytes)"
                else:
                    reason = f"HTTP {resp.status}: {message[:200]}"
                retry_after = retry_after_seconds(headers.get("retry-after"))
            attempt += 1
            if attempt > self.max_retries:
                raise TransientExtractError(
                    f"{self.context}: {request.describe()}: gave up after {self.max_retries} retries; last: {reason}"
                )
            pause = self._backoff(attempt - 1)
            if retry_after is not None:
                if retry_after > self.max_retry_after_s:
                    raise TransientExtractError(
                        f"{self.context}: {request.describe()}: the venue asks to wait {retry_after:.0f} s "
                        f"(more than {self.max_retry_after_s:.0f} s); last: {reason}"
                    )
                pause = max(retry_after, 0.0) + random.uniform(0, 0.1)
            key = reason.split(":")[0]
            self.stats.retries += 1
            self.stats.retry_reasons[key] = self.stats.retry_reasons.get(key, 0) + 1
            self.stats.retry_wait_s += pause
            log.warning(
                "%s: retry %d/%d in %.2f s after %s (%s)",
                self.context,
                attempt,
                self.max_retries,
                pause,
                reason,
                request.describe(),
            )
            time.sleep(pause)
