"""Typed Arrow columns from a venue's raw column lists: vectorized casts and checks, one batch at a time.

Per record the venue only appends plain values; here a whole batch becomes Arrow arrays at once:
text -> decimal128(38,18) (exact, refuses more than 18 decimals), ms or RFC 3339 -> timestamp[us, UTC],
nulls refused where the contract says not null. Any failure raises RowsError; the engine then looks for
the record to blame (slowly, only then).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ledgerlake.engine.details import details_column
from ledgerlake.schema import DECIMAL, TIMESTAMP
from ledgerlake.venues.base import LedgerColumns, Venue

# The ledger columns a batch carries before the run adds its constants and entry_seq.
BATCH_FIELDS = (
    "entry_id",
    "occurred_at",
    "asset",
    "amount",
    "balance_before",
    "balance_after",
    "entry_type",
    "venue_entry_type",
    "reference_id",
    "instrument",
    "details",
    "raw_uri",
)


class RowsError(ValueError):
    def __init__(self, column: str, reason: str) -> None:
        super().__init__(f"{column}: {reason}")
        self.column = column
        self.reason = reason


def _strings(values: list[Any], column: str, required: bool) -> pa.Array:
    try:
        arr = pa.array(values, pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise RowsError(column, f"not text ({exc})") from None
    if required and arr.null_count:
        raise RowsError(column, "missing")
    return arr


def _ints(values: list[Any], column: str) -> pa.Array:
    try:
        arr = pa.array(values, pa.int64())
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        raise RowsError(column, f"not an integer ({exc})") from None
    if arr.null_count:
        raise RowsError(column, "missing")
    return arr


def decimals(values: list[Any], column: str, required: bool) -> pa.Array:
    return _decimal(_strings(values, column, required), column, required)


def records_details(venue: Venue, records: list[dict[str, Any]]) -> pa.Array:
    """The `details` column of a batch's records (engine.details)."""
    try:
        return details_column(records, venue.mapped_keys, frozenset(venue.required))
    except (TypeError, ValueError, AttributeError) as exc:
        raise RowsError("details", f"cannot be written as JSON ({exc})") from None


def ms_timestamps(ms: pa.Array) -> pa.Array:
    return pa.array(ms.to_numpy(zero_copy_only=False).astype(np.int64) * 1000, TIMESTAMP)


def lookup(codes: pa.Array, table: dict[str, str]) -> tuple[pa.Array, dict[str, int]]:
    """(entry_type per code, unknown code -> count); unknown codes become "other"."""
    known = pa.array(list(table), pa.string())
    types = pa.array(list(table.values()), pa.string())
    idx = pc.index_in(codes, value_set=known)
    entry_type = pc.fill_null(pc.take(types, idx), "other")
    unknown: dict[str, int] = {}
    if idx.null_count:
        missing = pc.filter(codes, pc.is_null(idx))
        for item in pc.value_counts(missing).to_pylist():
            unknown[str(item["values"])] = int(item["counts"])
    return entry_type, unknown


class RecentIds:
    """Ids of the last `size` rows or a few more: enough to drop rows repeated by offsets shifting while
    paging (a page or two apart), with memory that does not grow with the interval. Kept in chunks, so a batch
    of ids comes and goes at once (0.05 against 0.8 s per million ids one by one)."""

    CHUNK = 1000

    def __init__(self, size: int) -> None:
        self.size = size
        self._chunks: deque[list[str]] = deque()
        self._count = 0
        self._set: set[str] = set()

    def seen(self, key: str) -> bool:
        if key in self._set:
            return True
        if not self._chunks or len(self._chunks[-1]) >= self.CHUNK:
            self._chunks.append([])
        self._chunks[-1].append(key)
        self._set.add(key)
        self._count += 1
        self._forget()
        return False

    def any_seen(self, keys: list[str]) -> bool:
        """Whether `seen` would find any of `keys` (in order) seen; may say so when it would not, never the
        reverse. Changes nothing."""
        return not self._set.isdisjoint(keys) or len(set(keys)) != len(keys)

    def add_all(self, keys: list[str]) -> None:
        """`seen` of each key, for keys of which none is seen (`any_seen` said so)."""
        self._chunks.append(list(keys))
        self._set.update(keys)
        self._count += len(keys)
        self._forget()

    def _forget(self) -> None:
        while self._count - len(self._chunks[0]) >= self.size:
            old = self._chunks.popleft()
            self._set.difference_update(old)
            self._count -= len(old)


@dataclass
class LedgerBatch:
    table: pa.Table  # BATCH_FIELDS, only rows inside the window, in the venue's listing order
    occurred_us: np.ndarray  # int64, for order checks and date partitions
    tie: np.ndarray | None  # int64 tie-break (int(entry_id)) or None
    unknown_codes: dict[str, int]
    outside: int  # records dropped because they lie outside the venue window (not merely outside this lane)


def column_arrays(venue: Venue, cols: LedgerColumns) -> dict[str, pa.Array]:
    """The batch's column lists as Arrow arrays of their raw types (ints, text), nothing cast yet: what a
    venue's `arrow_columns` gives straight from the pages on the fast path (engine.pages)."""
    int_ids, ms, int_codes = venue.entry_id_kind == "int", venue.occurred_kind == "ms", venue.code_kind == "int"
    return {
        "entry_id": _ints(cols.entry_id, "entry_id") if int_ids else _strings(cols.entry_id, "entry_id", True),
        "occurred_at": _ints(cols.occurred, "occurred_at") if ms else _strings(cols.occurred, "occurred_at", True),
        "asset": _strings(cols.asset, "asset", True),
        "amount": _strings(cols.amount, "amount", True),
        "balance_before": _strings(cols.balance_before, "balance_before", False),
        "balance_after": _strings(cols.balance_after, "balance_after", False),
        "venue_entry_type": _ints(cols.venue_entry_type, "venue_entry_type")
        if int_codes
        else _strings(cols.venue_entry_type, "venue_entry_type", True),
        "reference_id": _strings(cols.reference_id, "reference_id", False),
        "instrument": _strings(cols.instrument, "instrument", False),
    }


def _required(arr: pa.Array, column: str) -> pa.Array:
    if arr.null_count:
        raise RowsError(column, "missing")
    return arr


def _decimal(arr: pa.Array, column: str, required: bool) -> pa.Array:
    if required:
        _required(arr, column)
    if arr.type == DECIMAL:
        return arr
    try:
        return arr.cast(DECIMAL)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise RowsError(column, f"not a decimal(38,18) ({exc})") from None


def records_batch(
    venue: Venue,
    cols: LedgerColumns,
    raw_uris: list[str],
    start_us: int,
    end_us: int,
    window_us: tuple[int, int] | None = None,
) -> LedgerBatch:
    """`ledger_batch` of column lists a venue appended from records (the usual way)."""
    arrays = column_arrays(venue, cols)
    details = records_details(venue, cols.records)
    return ledger_batch(venue, arrays, details, pa.array(raw_uris, pa.string()), start_us, end_us, window_us)


def ledger_batch(
    venue: Venue,
    arrays: dict[str, pa.Array],
    details: pa.Array,
    raw_uris: pa.Array,
    start_us: int,
    end_us: int,
    window_us: tuple[int, int] | None = None,
) -> LedgerBatch:
    """Typed batch of the rows in [start_us, end_us), from `column_arrays` (or a venue's `arrow_columns`).
    Rows outside it are dropped; those also outside `window_us` (default: the same range) are counted as
    outside. Raises RowsError naming the column that failed."""
    id_ints: pa.Array | None = None
    if venue.entry_id_kind == "int":
        id_ints = _required(arrays["entry_id"], "entry_id")
        entry_id = id_ints.cast(pa.string())
    else:
        entry_id = _required(arrays["entry_id"], "entry_id")
    if venue.occurred_kind == "ms":
        occurred = ms_timestamps(_required(arrays["occurred_at"], "occurred_at"))
    else:
        try:
            occurred = _required(arrays["occurred_at"], "occurred_at").cast(TIMESTAMP)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise RowsError("occurred_at", f"not an RFC 3339 time ({exc})") from None
    codes = _required(arrays["venue_entry_type"], "venue_entry_type")
    if venue.code_kind == "int":
        codes = codes.cast(pa.string())
    entry_type, unknown = lookup(codes, venue.entry_types)
    table = pa.table(
        {
            "entry_id": entry_id,
            "occurred_at": occurred,
            "asset": _required(arrays["asset"], "asset"),
            "amount": _decimal(arrays["amount"], "amount", True),
            "balance_before": _decimal(arrays["balance_before"], "balance_before", False),
            "balance_after": _decimal(arrays["balance_after"], "balance_after", False),
            "entry_type": entry_type,
            "venue_entry_type": codes,
            "reference_id": arrays["reference_id"],
            "instrument": arrays["instrument"],
            "details": details,
            "raw_uri": raw_uris,
        }
    )
    us = occurred.cast(pa.int64()).to_numpy()
    tie: np.ndarray | None = None
    if venue.tie_break == "id":
        if id_ints is not None:
            tie = id_ints.to_numpy()
        else:
            try:
                tie = entry_id.cast(pa.int64()).to_numpy()
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                tie = None  # ids that are not numbers: order by time only
    inside = (us >= start_us) & (us < end_us)
    outside = int(len(us) - int(inside.sum()))
    if outside and window_us is not None and window_us != (start_us, end_us):
        outside = int(((us < window_us[0]) | (us >= window_us[1])).sum())  # the rest belong to another lane
    if not inside.all():
        table = table.filter(pa.array(inside))
        us = us[inside]
        tie = tie[inside] if tie is not None else None
    return LedgerBatch(table, us, tie, unknown, outside)


def order_violation(
    us: np.ndarray, tie: np.ndarray | None, newest_first: bool, last: tuple[int, int | None] | None
) -> int | None:
    """Index of the first row out of the venue's documented order (relative to `last`, the previous
    batch's final key), or None. Oldest first means strictly increasing (time, tie); newest first the reverse;
    without a tie-break, equal times are allowed (the listing order decides)."""
    if len(us) == 0:
        return None
    if last is not None:
        us = np.concatenate(([last[0]], us))
        if tie is not None:
            tie = np.concatenate(([last[1] if last[1] is not None else 0], tie))
    sign = -1 if newest_first else 1
    dt = np.diff(us) * sign
    bad = dt < 0 if tie is None else (dt < 0) | (dt == 0) & (np.diff(tie) * sign <= 0)
    hits = np.flatnonzero(bad)
    if not len(hits):
        return None
    return int(hits[0]) + (0 if last is not None else 1)
