"""The fast path: a batch of page bodies read straight into Arrow, without a Python object per record.

Arrow's JSON reader parses a batch's pages (one page a line) into typed columns in C++ and without the GIL,
so the thread building rows no longer spends 2.5-3 µs of Python per record on column lists and conversions
while the fetchers wait for the GIL. The venue declares the usual page (`Venue.arrow_layout`); the reader
refuses anything else: a field not declared, a value of another type, a decimal with more than 18 places, a
null where the records' list or a record should be. Whatever it refuses (None) the engine reads the usual
way, from the records the fetcher parsed, with the same result and the usual errors naming the record.

The fetcher's own parse is skimmed where paging reads only the envelope (`PageSkimmer`): it needs the status
and the cursor, not a Python dict per record. Building and freeing those dicts held the GIL for 60-90 µs a
page that the row thread and the other fetchers waited on; a refused batch parses its pages in full again.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import simdjson

from ledgerlake.engine.details import arrow_details
from ledgerlake.engine.rows import LedgerBatch, RecentIds, RowsError, ledger_batch
from ledgerlake.venues.base import ArrowLayout, Venue


class HeldPage(Protocol):
    """A page of a batch: its body for Arrow, the records the fetcher parsed from it (stand-ins if `skimmed`),
    its raw archive URI."""

    @property
    def body(self) -> bytes: ...
    @property
    def records(self) -> list[Any]: ...
    @property
    def skimmed(self) -> bool: ...
    @property
    def uri(self) -> str: ...


# The stand-in of every record of a page handed on without its records (PageSkimmer, engine.run._Fetcher).
STAND_IN: dict[str, Any] = {}


def flat_layout(layout: ArrowLayout) -> bool:
    """No nested record field: the fast path needs nothing of a page's parsed records (nested values come from
    them, engine.details), so a page may reach the row thread without them."""
    return not any(pa.types.is_nested(t) for t in layout.fields.values())


class PageSkimmer:
    """The fetcher's parse of a page of the usual shape: the whole envelope as Python values, as orjson gives
    it, and the list of records as stand-ins (the shared STAND_IN per record): for venues whose paging reads
    only the envelope (no `paging_fields`) and whose layout has no nested field (nested values come from the
    parsed records, engine.details). Measured on exchangeHubX's pages: 24 µs a page against orjson's 54-90,
    and nothing to free on the row thread. A stand-in holding a field per record cost more than orjson saved
    (SunX 67 µs against 51, Pacifica 53 against 28), so venues that page by a record field are parsed in full.

    A page is skimmed only if every record is an object with as many keys as the layout's fields (the check
    `arrow_batch` otherwise makes on the parsed records), so a missing field is never read as a null. A record
    repeating a key passes that count with one field missing, but Arrow's reader refuses a repeated key, so its
    batch is read the usual way. Anything else (not the usual shape, a number or text simdjson does not take)
    returns None and the page is parsed in full as before."""

    @staticmethod
    def takes(venue: Venue) -> bool:
        return venue.arrow_layout is not None and not venue.paging_fields and flat_layout(venue.arrow_layout)

    def __init__(self, venue: Venue) -> None:
        if not self.takes(venue) or venue.arrow_layout is None:
            raise ValueError(f"{venue.name}: its pages are parsed in full (see PageSkimmer.takes)")
        self.path = venue.arrow_layout.records_path
        self.width = len(venue.arrow_layout.fields)
        self._parsers = threading.local()  # a simdjson parser serves one thread and one document at a time

    def skim(self, body: bytes) -> Any | None:
        parser = getattr(self._parsers, "parser", None)
        if parser is None:
            parser = self._parsers.parser = simdjson.Parser()
        try:
            # Only plain Python values leave: the parser refuses a new document while a view of the last lives.
            return self._payload(parser.parse(body))
        except (ValueError, RuntimeError, KeyError, TypeError):
            return None

    def _payload(self, doc: Any) -> Any:
        if not self.path:
            return self._stand_ins(doc)
        payload: dict[str, Any] = {}
        level, out = doc, payload
        for depth, key in enumerate(self.path):
            if not isinstance(level, simdjson.Object):
                raise TypeError("not an object")
            for name in level:  # not .items(): that converts every value, the records too
                if name != key:
                    out[name] = _plain(level[name])
            if depth == len(self.path) - 1:
                out[key] = self._stand_ins(level[key])
            else:
                out[key] = {}
                level, out = level[key], out[key]
        return payload

    def _stand_ins(self, records: Any) -> list[Any]:
        if not isinstance(records, simdjson.Array):
            raise TypeError("the records are not a list")
        width, obj = self.width, simdjson.Object
        if any(type(r) is not obj or len(r) != width for r in records):
            raise TypeError("a record is not an object of the layout's width")
        return [STAND_IN] * len(records)


def _plain(value: Any) -> Any:
    if isinstance(value, simdjson.Object):
        return value.as_dict()
    if isinstance(value, simdjson.Array):
        return value.as_list()
    return value


def _nest(fields: dict[tuple[str, ...], pa.DataType]) -> pa.StructType:
    """A struct type from paths: {("data", "items"): t, ("code",): u} -> struct<data: struct<items: t>, code: u>."""
    top: dict[str, Any] = {}
    for path, typ in fields.items():
        level = top
        for name in path[:-1]:
            level = level.setdefault(name, {})
        level[path[-1]] = typ
    return _struct(top)


def _struct(level: dict[str, Any]) -> pa.StructType:
    return pa.struct([(k, _struct(v) if isinstance(v, dict) else v) for k, v in level.items()])


class ArrowPageReader:
    def __init__(self, layout: ArrowLayout) -> None:
        self.layout = layout
        self.record_type = pa.struct(list(layout.fields.items()))
        records = pa.list_(self.record_type)
        # A body that is the list itself is read as the value of a one-field object.
        self.path = layout.records_path or ("records",)
        fields = {tuple(k.split(".")): t for k, t in layout.envelope.items()}
        fields[self.path] = records
        self.schema = pa.schema(list(_nest(fields)))
        self.wrap = not layout.records_path
        self.parse_options = pj.ParseOptions(explicit_schema=self.schema, unexpected_field_behavior="error")
        self.refusal = ""  # why the last batch was refused, for the log

    def refuse(self, why: str) -> None:
        self.refusal = why

    def read(self, bodies: list[bytes], counts: list[int]) -> pa.StructArray | None:
        """The records of the pages, in page order, or None if a page is not of the layout or the reader's
        records per page differ from `counts` (what the fetcher's parse found)."""
        # JSON has raw line breaks only as whitespace: a page is one line once they are spaces.
        lines = [b.replace(b"\n", b" ").replace(b"\r", b" ") if b"\n" in b or b"\r" in b else b for b in bodies]
        if self.wrap:
            lines = [b'{"records":' + b + b"}" for b in lines]
        # A block must hold the longest line; several blocks let Arrow parse them on its threads.
        block = max(1 << 20, 2 * max(map(len, lines), default=0))
        try:
            table = pj.read_json(
                pa.BufferReader(b"\n".join(lines)),
                read_options=pj.ReadOptions(block_size=block),
                parse_options=self.parse_options,
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            self.refuse(f"Arrow's JSON reader: {str(exc)[:200]}")
            return None
        if table.num_rows != len(bodies):
            self.refuse(f"{table.num_rows} pages read of {len(bodies)}")
            return None
        column: pa.Array = table.column(self.path[0]).combine_chunks()
        for name in self.path[1:]:
            if column.null_count:
                self.refuse(f"{name}'s parent is null")
                return None
            column = column.field(name)
        if column.null_count or pc.list_value_length(column).to_pylist() != counts:
            self.refuse("the records per page differ from the parsed pages'")
            return None
        records: pa.StructArray = pc.list_flatten(column)
        if records.null_count:
            self.refuse("a record is null")
            return None
        return records


def arrow_batch(
    venue: Venue,
    reader: ArrowPageReader,
    pages: Sequence[HeldPage],
    start_us: int,
    end_us: int,
    window_us: tuple[int, int] | None = None,
    recent: RecentIds | None = None,
) -> LedgerBatch | None:
    """`engine.rows.ledger_batch` of the pages read straight into Arrow, or None if they do not fit the venue's
    layout (the caller then reads them the usual way, whose checks name what is wrong).

    `recent`: the ids of the rows before (venues that repeat rows, `dedup_by_entry_id`). A batch repeating one
    is left to the usual way, which drops the repeats row by row; else its ids join `recent` once it is built."""
    counts = [len(p.records) for p in pages]
    records = reader.read([p.body for p in pages], counts)
    if records is None:
        return None
    # Every record holds exactly the layout's fields: no more (the reader refuses a field not declared) and
    # no fewer (as many keys as fields), so a null is a null, never a missing field.
    fields = {len(reader.layout.fields)}
    try:
        if any(not p.skimmed and set(map(len, p.records)) != fields for p in pages):  # skimmed: checked then
            reader.refuse("a record lacks a field of the layout")
            return None
    except TypeError:  # a record that is not an object
        reader.refuse("a record is not an object")
        return None
    uris = pa.array([p.uri for p in pages], pa.string()).take(pa.array(np.repeat(np.arange(len(pages)), counts)))
    try:
        columns = venue.arrow_columns(records)
        ids: list[str] = []
        if recent is not None:
            ids = columns["entry_id"].to_pylist()
            if recent.any_seen(ids):
                reader.refuse("a row repeats a recent one")
                return None
        details = arrow_details(records, venue.mapped_keys, lambda: [r for p in pages for r in p.records])
        batch = ledger_batch(venue, columns, details, uris, start_us, end_us, window_us)
    except (RowsError, TypeError, ValueError, pa.ArrowException) as exc:
        reader.refuse(f"{type(exc).__name__}: {str(exc)[:200]}")
        return None
    if recent is not None:
        recent.add_all(ids)
    return batch
