"""The `details` column of a batch: each record's fields without a column of their own, as the contract's JSON
text (sorted keys, compact, UTF-8: the text of `venues.base.details_json`), built column-wise.

Per record this costs a few list look-ups instead of a dict, a sort and a serialisation (measured: 0.4 µs
instead of 2.9 µs per row). Records keep their venue's field layout page after page, so the batch is treated
as one layout, the first record's fields; a record with other fields, and any value that is not plain text
without characters to escape, an integer or null, is serialised on its own (orjson, as `details_json`), so the
text is the same either way (tests/extraction/test_details.py compares the two).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import repeat
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ledgerlake.venues.base import details_json

# Text that JSON must escape: quotes, backslashes and control characters.
_NEEDS_ESCAPE = r'["\\\x00-\x1f]'


def _text_texts(arr: pa.Array) -> pa.Array:
    """JSON text of each string (null: null): quoted, and escaped by orjson where JSON needs it."""
    odd = pc.fill_null(pc.match_substring_regex(arr, _NEEDS_ESCAPE), False)
    quoted = pc.binary_join_element_wise('"', arr, '"', "")
    if pc.any(odd).as_py():
        escaped = [orjson.dumps(v).decode() for v in pc.filter(arr, odd).to_pylist()]
        quoted = pc.replace_with_mask(quoted, odd, pa.array(escaped, pa.string()))
    return pc.fill_null(quoted, "null")


def _value_texts(values: list[Any]) -> pa.Array:
    """JSON text of each value."""
    types = set(map(type, values))
    if types <= {str, type(None)}:
        return _text_texts(pa.array(values, pa.string()))
    if types <= {int, type(None)}:  # bool is its own type here, so true/false take the general path
        try:
            return pc.fill_null(pa.array(values, pa.int64()).cast(pa.string()), "null")
        except (pa.ArrowInvalid, OverflowError):
            pass  # beyond 64 bits: orjson refuses it below, as details_json would
    dumps, sort = orjson.dumps, orjson.OPT_SORT_KEYS
    return pa.array([dumps(v, option=sort).decode() for v in values], pa.string())


def _arrow_value_texts(arr: pa.Array) -> pa.Array:
    """JSON text of each value of a column read by Arrow (engine.pages): the text `_value_texts` gives."""
    if pa.types.is_string(arr.type):
        return _text_texts(arr)
    if pa.types.is_integer(arr.type):
        return pc.fill_null(arr.cast(pa.string()), "null")
    if pa.types.is_boolean(arr.type):
        return pc.fill_null(pc.if_else(arr, "true", "false"), "null")
    raise TypeError(f"no JSON text for Arrow {arr.type} here")


def _objects(keys: list[str], texts: list[pa.Array], n: int) -> pa.Array:
    """`{"key":text,...}` per row, the keys in the given (sorted) order."""
    if not keys:
        return pa.repeat(pa.scalar("{}", pa.string()), n)
    parts: list[Any] = []
    for i, (key, values) in enumerate(zip(keys, texts, strict=True)):
        parts.append(("{" if i == 0 else ",") + orjson.dumps(key).decode() + ":")
        parts.append(values)
    parts.append("}")
    text = pc.binary_join_element_wise(*parts, "")
    return text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text


def arrow_details(
    records: pa.StructArray, mapped: frozenset[str], objects: Callable[[], list[dict[str, Any]]]
) -> pa.Array:
    """`details` of records read by Arrow (engine.pages), every record holding exactly the struct's fields (the
    caller checks that): the same text as `details_column` of `objects()`, the same records as Python objects.
    Texts, integers and booleans come from Arrow; nested objects and lists from `objects`, as Arrow cannot tell
    a nested field that is null from one that is missing."""
    keys = sorted(f.name for f in records.type if f.name not in mapped)
    texts = []
    listed: list[dict[str, Any]] | None = None
    for key in keys:
        column = records.field(key)
        if pa.types.is_struct(column.type) or pa.types.is_list(column.type):
            listed = objects() if listed is None else listed
            texts.append(_value_texts([r[key] for r in listed]))
        else:
            texts.append(_arrow_value_texts(column))
    return _objects(keys, texts, len(records))


def details_column(
    records: list[dict[str, Any]], mapped: frozenset[str], present: frozenset[str] = frozenset()
) -> pa.Array:
    """`details` text per record. Raises TypeError/ValueError (from orjson) on a value JSON cannot hold.

    `present`: fields the caller knows every record has (required fields: a batch missing one fails anyway),
    so only the first record's other fields need looking for in each record.
    """
    n = len(records)
    if n == 0:
        return pa.array([], pa.string())
    layout = records[0].keys()
    keys = sorted(k for k in layout if k not in mapped)
    try:
        columns = [[r[k] for r in records] for k in keys]
    except KeyError:  # a record lacks one of the first record's fields: each on its own
        return pa.array([details_json({k: v for k, v in r.items() if k not in mapped}) for r in records], pa.string())
    text = _objects(keys, [_value_texts(values) for values in columns], n)
    # Same fields as the first record = as many fields, and each of the first record's present (looked up
    # above for the unmapped ones, here for mapped ones not known to be present). Cheaper than comparing
    # key sets record by record (0.05 vs 0.4 µs).
    odd = np.fromiter(map(len, records), dtype=np.int64, count=n) != len(layout)
    for key in (k for k in layout if k in mapped and k not in present):
        odd |= ~np.fromiter(map(dict.__contains__, records, repeat(key)), dtype=bool, count=n)
    if odd.any():
        own = [details_json({k: v for k, v in records[i].items() if k not in mapped}) for i in np.flatnonzero(odd)]
        text = pc.replace_with_mask(text, pa.array(odd), pa.array(own, pa.string()))
    return text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text
