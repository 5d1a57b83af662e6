"""What a venue module declares, and the tiny paginators venues pick from.

A venue module says only what is particular to the venue (Singer-style): auth and signing, the request
parameters, its paging rule, window and retention limits, its type-code table, how a record maps to the
unified row and how its envelope says success. The engine (ledgerlake.engine) loops, retries,
rate-limits, archives raw pages and writes Parquet once for all of them. Plain Python, no Airflow.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from operator import itemgetter
from typing import Any, ClassVar
from urllib.parse import quote_plus

import orjson
import pyarrow as pa

from ledgerlake.config import AccountConfig
from ledgerlake.interval import Interval

# ---------------------------------------------------------------------------------------------------
# Plain settings


@dataclass(frozen=True)
class VenueCredentials:
    """Where a venue is and how to sign for it. Secrets never show in repr()."""

    base_url: str
    api_key: str | None = field(default=None, repr=False)
    api_secret: str | None = field(default=None, repr=False)
    passphrase: str | None = field(default=None, repr=False)
    extra: dict[str, Any] = field(default_factory=dict)  # recv_window, rate_limit, page_size, ...

    def secrets(self) -> list[str]:
        return [s for s in (self.api_key, self.api_secret, self.passphrase) if s]


@dataclass(frozen=True)
class RateLimit:
    """`units` of request cost per rolling `per_seconds`, counted per `scope` ("ip": the venue's host,
    "key": the API key / profile / UID). `burst`: what the venue documents letting through at once above its
    rate (a token bucket's capacity: Coinbase's "bursts to 30"); None where nothing is documented."""

    units: float
    per_seconds: float
    scope: str = "key"
    burst: float | None = None

    def __str__(self) -> str:
        burst = f" (bursts to {self.burst:g})" if self.burst is not None else ""
        return f"{self.units:g} per {self.per_seconds:g} s per {self.scope}{burst}"


@dataclass
class Request:
    """One venue request before signing: business parameters only, so it is safe to log and archive."""

    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    cost: float = 1.0  # rate-limit units this request spends

    def describe(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in self.params.items())
        body = f" {orjson.dumps(self.body).decode()}" if self.body is not None else ""
        return f"{self.method} {self.path}{'?' + query if query else ''}{body}"

    def safe_meta(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path, "params": self.params, "body": self.body}


@dataclass(frozen=True)
class SignedRequest:
    """What goes on the wire. May carry signatures and keys: never log or archive it."""

    url: str
    headers: dict[str, str]
    body: bytes | None = None


@dataclass(frozen=True)
class Reply:
    """How a venue classifies an answer: ok, retry (transient or rate limit), auth, ban or fatal."""

    kind: str
    message: str = ""
    retry_after: float | None = None
    ban_until_ms: int | None = None


OK = Reply("ok")


@dataclass(frozen=True)
class Window:
    """One request window of the interval (and, for Binance, one snapshot type)."""

    interval: Interval
    label: str = ""


# ---------------------------------------------------------------------------------------------------
# Normalized columns, filled per page by the venue, typed and checked by the engine in batches


@dataclass
class LedgerColumns:
    """Raw values of the unified columns, one list per column, as plain Python values.

    The engine turns them into Arrow arrays with vectorized casts (string -> decimal128(38,18), ms or
    RFC 3339 -> timestamp) and checks nulls, so a venue's loop does the least work per record.
    """

    entry_id: list[Any] = field(default_factory=list)
    occurred: list[Any] = field(default_factory=list)  # ms int or RFC 3339 text (Venue.occurred_kind)
    asset: list[Any] = field(default_factory=list)
    amount: list[Any] = field(default_factory=list)
    balance_before: list[Any] = field(default_factory=list)
    balance_after: list[Any] = field(default_factory=list)
    venue_entry_type: list[Any] = field(default_factory=list)
    reference_id: list[Any] = field(default_factory=list)
    instrument: list[Any] = field(default_factory=list)
    # The records themselves, for the `details` column (engine.details builds it for a whole batch at once).
    records: list[Any] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.entry_id)


@dataclass(frozen=True)
class ArrowLayout:
    """A venue's pages as Arrow's JSON reader should see them, for the engine's fast path (engine.pages):
    the records' fields with their types, where the list of records sits in the envelope, and the envelope's
    other fields. A page with anything else (a field not declared, a value of another type, a record without
    one of the fields) is read the usual way instead, so the layout only has to fit the usual page."""

    fields: dict[str, pa.DataType]  # every field of a record (decimals: DECIMAL; texts kept as sent: string)
    records_path: tuple[str, ...]  # keys leading to the list of records; () when the body is that list
    envelope: dict[str, pa.DataType] = field(default_factory=dict)  # other fields, dotted paths ("data.has_more")


def details_json(obj: dict[str, Any]) -> str:
    """The contract's JSON: sorted keys, compact, UTF-8 (same text as json.dumps(sort_keys=True,
    separators=(",", ":"), ensure_ascii=False))."""
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS).decode()


_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")


def urlencode(params: dict[str, str] | list[tuple[str, str]]) -> str:
    """urllib.parse.urlencode's text (quote_plus on each key and value), without its per-character quoting of
    the texts that need none (ids, numbers, cursors): a page's query was a tenth of the fetcher's CPU."""
    items = params.items() if isinstance(params, dict) else params
    texts = [str(t) for kv in items for t in kv]
    quoted = [t if _UNRESERVED.fullmatch(t) else quote_plus(t) for t in texts]
    return "&".join(f"{k}={v}" for k, v in zip(quoted[::2], quoted[1::2], strict=True))


_NUMBER = rb"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"


class BareDecimals:
    """Decimal fields a venue sends as bare JSON numbers, read as their exact text (orjson reads a float).

    The page is parsed once. In the usual page every record holds the key once at its top level and the body
    holds it nowhere else, so the body's `"key":` occurrences are the records' values, in order, and the numbers
    among them (one regex scan in C) belong to the records whose value parsed as a number, in order. Anything
    else (the key nested, repeated, in the envelope, spelt with spaces, missing from a record) makes the counts
    differ, and then the body is quoted with the full pattern and parsed again. JSON escapes quotes inside
    strings, so `"key"` followed by a colon is only ever a key. Only a record's own fields are read as text: a
    page whose records hold no bare number is left as parsed (numbers nested in other fields stay numbers in
    `details`). Measured on SunX pages of 100: 40 µs a page, against 170 for a match per record and 330 for the
    pattern over every body and a second parse.
    """

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.keys = [
            (
                k,
                f'"{k}"'.encode(),
                f'"{k}":'.encode(),
                re.compile(re.escape(f'"{k}":'.encode()) + rb"\s*(" + _NUMBER + b")"),
            )
            for k in keys
        ]
        names = b"|".join(re.escape(k.encode()) for k in keys)
        self.quote_all = re.compile(rb'("(?:' + names + rb')"\s*:\s*)(' + _NUMBER + b")")
        # One of the keys followed by a number, anywhere in the body. JSON escapes quotes inside strings, so
        # this finds every bare value of these keys; a body without one (venues that quote their decimals, as
        # they usually do) is left as parsed after one scan in C instead of a look at every record (70 µs a page).
        self.any_bare = re.compile(rb'"(?:' + names + rb')"\s*:\s*-?[0-9]')

    def fix(self, body: bytes, payload: Any, records: list[Any]) -> Any:
        """The payload with exact decimal texts (the same object, or a new parse of the quoted body)."""
        if self.any_bare.search(body) is None:
            return payload
        n = len(records)
        for key, quoted, key_colon, number_after_key in self.keys:
            try:
                values = [r.get(key) for r in records]
            except AttributeError:
                return payload  # a record that is not an object: the rows step names it
            numeric = [i for i, v in enumerate(values) if type(v) is float or type(v) is int]
            if not numeric:
                continue
            if (
                body.count(key_colon) != n
                or body.count(quoted) != n
                or (None in values and not all(key in r for r in records))  # None: null, or no such key
            ):
                return self._quoted(body)
            texts = number_after_key.findall(body)
            if len(texts) != len(numeric):
                return self._quoted(body)
            for i, text in zip(numeric, b"\x00".join(texts).decode().split("\x00"), strict=True):
                records[i][key] = text
        return payload

    def _quoted(self, body: bytes) -> Any:
        """The fallback: every `"key": <number>` of the body quoted, then parsed again."""
        return orjson.loads(self.quote_all.sub(rb'\1"\2"', body))


# ---------------------------------------------------------------------------------------------------
# Paginators (dlt-style): read state from an answer, put it on the next request


class CursorPaginator:
    """Opaque cursor in the body plus a has-more flag (exchangeHubX)."""

    def __init__(self, param: str = "cursor") -> None:
        self.param = param
        self.cursor: str | None = None
        self.has_more = True

    def update_state(self, next_cursor: Any, has_more: Any) -> None:
        seen = self.cursor
        self.cursor = None if next_cursor in (None, "") else str(next_cursor)
        # A cursor that does not move would loop for ever: stop rather than re-read the same page.
        self.has_more = bool(has_more) and self.cursor is not None and self.cursor != seen

    def update_request(self, request: Request) -> Request | None:
        if not self.has_more or self.cursor is None:
            return None
        return replace(request, params={**request.params, self.param: self.cursor})


class HeaderCursorPaginator:
    """Cursor in a response header (Coinbase `CB-AFTER` -> `after=`); stops on an empty page."""

    def __init__(self, header: str, param: str) -> None:
        self.header = header.lower()
        self.param = param
        self.cursor: str | None = None
        self.has_more = True

    def update_state(self, headers: dict[str, str], n_records: int) -> None:
        seen = self.cursor
        self.cursor = headers.get(self.header) or None
        self.has_more = n_records > 0 and self.cursor is not None and self.cursor != seen

    def update_request(self, request: Request) -> Request | None:
        if not self.has_more or self.cursor is None:
            return None
        return replace(request, params={**request.params, self.param: self.cursor})


class OffsetPaginator:
    """limit + offset (Pacifica's document); stops on a short page or when the caller says so."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.offset = 0
        self.has_more = True

    def update_state(self, n_records: int) -> None:
        self.offset += n_records
        self.has_more = n_records >= self.limit

    def stop(self) -> None:
        self.has_more = False

    def update_request(self, request: Request) -> Request | None:
        if not self.has_more:
            return None
        return replace(request, params={**request.params, "offset": str(self.offset)})


class FromIdPaginator:
    """SunX: `from_id` = the largest id of the last page when paging `next` (oldest first); stops on a short page."""

    def __init__(self, limit: int | None, id_field: str = "query_id") -> None:
        self.limit = limit
        self.id_field = id_field
        self.from_id: int | None = None
        self.has_more = True

    def update_state(self, records: list[dict[str, Any]]) -> None:
        seen = self.from_id
        if not records:
            self.has_more = False
            return
        self.from_id = max(map(int, map(itemgetter(self.id_field), records)))
        short = self.limit is not None and len(records) < self.limit
        self.has_more = not short and self.from_id != seen

    def update_body(self, request: Request) -> Request | None:
        if not self.has_more or self.from_id is None:
            return None
        return replace(request, body={**(request.body or {}), "from_id": self.from_id})


# ---------------------------------------------------------------------------------------------------
# The venue


def _problem(value: Any, kind: str) -> str | None:
    """Why `value` is not a valid `kind`, or None. Used only to pinpoint a bad record, never per row."""
    if value is None:
        return "is missing or null"
    if kind == "int":
        return None if isinstance(value, int) and not isinstance(value, bool) else f"is not an integer: {value!r}"
    if kind in ("str", "rfc3339", "decimal"):
        if not isinstance(value, str):
            return f"is not text: {value!r}"
        if kind == "str" and value == "":
            return "is empty"
    if kind == "ms":
        if not isinstance(value, int) or isinstance(value, bool):
            return f"is not a millisecond timestamp: {value!r}"
        if not 0 <= value < 253402300800000:
            return f"is out of range as a millisecond timestamp: {value!r}"
    if kind == "decimal":
        try:
            d = Decimal(value)
        except InvalidOperation:
            return f"is not a decimal number: {value!r}"
        if not d.is_finite():
            return f"is not a finite decimal: {value!r}"
        exp = d.as_tuple().exponent
        if isinstance(exp, int) and exp < -18 and d != d.quantize(Decimal(1).scaleb(-18)):
            return f"has more than 18 decimals: {value!r}"
        if abs(d) >= Decimal(10) ** 20:
            return f"does not fit decimal(38,18): {value!r}"
    if kind == "rfc3339":
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return f"is not an RFC 3339 time: {value!r}"
    return None


class Venue:
    """Base of the venue modules. Class attributes are the declarations; methods are overridden only
    where the venue is particular."""

    name: ClassVar[str]
    dataset: ClassVar[str] = "ledger"
    # The venue lists entries newest first (the engine reverses them); None: undocumented, found from the data.
    newest_first: ClassVar[bool | None] = False
    dedup_by_entry_id: ClassVar[bool] = False  # Pacifica: offsets shift while paging
    max_window: ClassVar[timedelta | None] = None
    # Requests filter by time at both ends, so the engine may fetch parts of a window at once (fetch_lanes).
    time_filtered: ClassVar[bool] = False
    retention: ClassVar[timedelta | None] = None
    retention_text: ClassVar[str] = ""
    default_page_size: ClassVar[int] = 100
    max_page_size: ClassVar[int] = 100
    rate_limit: ClassVar[RateLimit]
    entry_types: ClassVar[dict[str, str]] = {}
    bare_decimal_keys: ClassVar[tuple[str, ...]] = ()
    entry_id_kind: ClassVar[str] = "str"  # "int" ids are cast to text
    code_kind: ClassVar[str] = "str"
    occurred_kind: ClassVar[str] = "ms"  # or "rfc3339"
    # Chronological tie-break after the time: "id" (int(entry_id)) or "listing" (the venue's own order).
    tie_break: ClassVar[str] = "id"
    required: ClassVar[dict[str, str]] = {}  # record field -> kind, to name the field of a bad record
    # Record fields with a column of their own; every other field goes into `details` (the contract).
    mapped_keys: ClassVar[frozenset[str]] = frozenset()
    # Pages read straight into Arrow (engine.pages), with `arrow_columns`; None: records only.
    arrow_layout: ClassVar[ArrowLayout | None] = None
    # The record fields `next_request` and `stop_after` read; a venue with none has its pages skimmed (engine.pages).
    paging_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, account: AccountConfig, credentials: VenueCredentials, page_size: int | None = None) -> None:
        self.account = account
        self.credentials = credentials
        size = int(page_size or credentials.extra.get("page_size") or self.default_page_size)
        self.page_size = max(1, min(size, self.max_page_size))
        self._bare = BareDecimals(self.bare_decimal_keys) if self.bare_decimal_keys else None
        # Set by the engine when the pages go to Arrow: the records then serve paging, and exact decimal texts
        # are only put into them (`exact_records`) if a batch has to be read the usual way.
        self.defer_exact_decimals = False

    # Windows and retention ------------------------------------------------------------------------

    def retention_problem(self, interval: Interval, now: datetime) -> str | None:
        if self.retention is not None and interval.start < now - self.retention:
            return (
                f"{self.name} keeps {self.retention_text} only: interval {interval} starts before "
                f"{(now - self.retention).isoformat(timespec='seconds')}"
            )
        return None

    def windows(self, interval: Interval) -> Iterator[Window]:
        if self.max_window is None:
            yield Window(interval)
        else:
            for part in interval.split(self.max_window):
                yield Window(part)

    def rate_limit_scope_key(self) -> str:
        """What the venue counts requests against: its host for per-IP limits, else the API key."""
        if self.rate_limit.scope == "ip":
            return f"{self.name}|{self.credentials.base_url}"
        return f"{self.name}|{self.credentials.base_url}|{self.credentials.api_key or self.account.account}"

    # Requests -------------------------------------------------------------------------------------

    def first_request(self, window: Window) -> Request:
        raise NotImplementedError

    def sign(self, request: Request, now: datetime) -> SignedRequest:
        raise NotImplementedError

    def parse(self, body: bytes) -> Any:
        """JSON -> Python; bare decimal numbers are read as their exact text, never as a float (unless
        `defer_exact_decimals`: then `exact_records` does it when the records' values are needed)."""
        payload = orjson.loads(body)
        if self._bare is None or self.defer_exact_decimals:
            return payload
        return self._exact(body, payload)

    def _exact(self, body: bytes, payload: Any) -> Any:
        assert self._bare is not None
        try:
            records = self.records(payload)
        except (KeyError, TypeError, IndexError, AttributeError):
            return payload  # not a page of records (an error answer): nothing to fix
        return self._bare.fix(body, payload, records) if isinstance(records, list) else payload

    def exact_records(self, body: bytes, payload: Any, records: list[Any]) -> list[Any]:
        """The page's records with exact decimal texts, after a `parse` that deferred them."""
        if self._bare is None or not self.defer_exact_decimals:
            return records
        fixed = self._exact(body, payload)
        return records if fixed is payload else self.records(fixed)

    def check(self, status: int, payload: Any, headers: dict[str, str]) -> Reply:
        raise NotImplementedError

    def records(self, payload: Any) -> list[dict[str, Any]]:
        raise NotImplementedError

    def next_request(
        self, request: Request, payload: Any, headers: dict[str, str], records: list[dict[str, Any]], window: Window
    ) -> Request | None:
        raise NotImplementedError

    def stop_after(self, records: list[dict[str, Any]], window: Window) -> bool:
        """Newest-first venues without a time filter: stop once the listing is older than the window."""
        return False

    # Rows -----------------------------------------------------------------------------------------

    def columns(self, records: list[dict[str, Any]], out: LedgerColumns) -> None:
        """Append the records' values of the unified columns (not `details`: see `append`)."""
        raise NotImplementedError

    def arrow_columns(self, records: pa.StructArray) -> dict[str, pa.Array]:
        """`columns` for the fast path: the unified columns from the records read into Arrow (`arrow_layout`),
        as arrays of the raw types `engine.rows.column_arrays` makes of the lists (tests compare the two)."""
        raise NotImplementedError

    def append(self, records: list[dict[str, Any]], out: LedgerColumns) -> None:
        """Append a page's records to the batch: their column values, and the records themselves, which
        engine.details turns into the `details` column for the whole batch at once."""
        self.columns(records, out)
        out.records += records

    def record_problem(self, record: Any) -> tuple[str, str] | None:
        """(field, reason) for the first thing wrong with a record, else None."""
        if not isinstance(record, dict):
            return ("<record>", f"is not a JSON object: {record!r}")
        for name, kind in self.required.items():
            why = _problem(record.get(name), kind)
            if why:
                return (name, why)
        return None

    # Helpers for venues ---------------------------------------------------------------------------

    @staticmethod
    def error_text(payload: Any, *keys: str) -> str:
        """The venue's own error words; cheap on success answers (no rendering of a whole page)."""
        if isinstance(payload, dict):
            for k in keys:
                v = payload.get(k)
                if v not in (None, ""):
                    return str(v)
            return ""
        if isinstance(payload, str | bytes):
            return (payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload)[:300]
        return ""
