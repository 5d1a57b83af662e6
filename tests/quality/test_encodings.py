"""The gate reads text columns dictionary-encoded and hands Great Expectations a frame of cheap encodings
(pandas Categoricals, positional dictionaries, NumPy): the values stay exactly the partition's, whatever the
encoding, including a dictionary that repeats a value."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pandas as pd
import pyarrow as pa

from ledgerlake.quality.invariants import ledger_invariants
from ledgerlake.quality.partition import _frame, _positional_dictionary, _unique_dictionary
from ledgerlake.quality.suites import load_suite
from ledgerlake.schema import LEDGER_SCHEMA

from .partitions import ledger_rows

WANTED = {"invariant_balance_arithmetic", "invariant_running_balance", "invariant_previous_closing"}


def _repeating(values: list[str | None]) -> pa.DictionaryArray:
    """`values` dictionary-encoded with every value twice in the dictionary, a value's rows alternating codes."""
    distinct = sorted({v for v in values if v is not None})
    seen: dict[str, int] = {}
    indices = []
    for v in values:
        if v is not None:
            seen[v] = seen.get(v, -1) + 1
        indices.append(None if v is None else distinct.index(v) + len(distinct) * (seen[v] % 2))
    return pa.DictionaryArray.from_arrays(pa.array(indices, pa.int32()), pa.array(distinct + distinct))


def _plain(value: Any) -> Any:
    """A frame's value as Arrow's to_pylist gives it."""
    if pd.isna(value):
        return None
    return value.to_pydatetime() if isinstance(value, pd.Timestamp) else value


def test_unique_dictionary_holds_each_value_once() -> None:
    values = ["USDT", "BTC", None, "USDT", "BTC", "USDT"]
    column = pa.chunked_array([_repeating(values[:3]), _repeating(values[3:])])

    one = _unique_dictionary(column)

    assert one.num_chunks == 1 and one.to_pylist() == values
    assert sorted(one.chunk(0).dictionary.to_pylist()) == ["BTC", "USDT"]
    assert one.to_pandas().tolist()[:2] == ["USDT", "BTC"]  # a Categorical needs each value once
    assert _unique_dictionary(pa.chunked_array([], column.type)).to_pylist() == []


def test_invariants_group_by_value_when_the_dictionary_repeats_one() -> None:
    """Rows of one asset reached by two dictionary codes are still one running-balance chain."""
    table = pa.Table.from_pylist(ledger_rows("exchangehubx", n=20), schema=LEDGER_SCHEMA)
    encoded = table.set_column(5, "asset", _repeating(table["asset"].to_pylist()))
    closing = {"USDT": Decimal("1000"), "BTC": Decimal("999")}

    plain, coded = ledger_invariants(table, WANTED, closing), ledger_invariants(encoded, WANTED, closing)

    assert coded.invariants["invariant_running_balance"].values.to_pylist().count(True) == 18
    for name in WANTED:
        assert coded.invariants[name].values.equals(plain.invariants[name].values), name
        for key, values in plain.invariants[name].context.items():
            assert coded.invariants[name].context[key].equals(values), (name, key)
    assert coded.notes == plain.notes


def test_the_frame_holds_the_partitions_values() -> None:
    rows = ledger_rows("coinbase", n=9)
    rows[2]["reference_id"], rows[4]["instrument"] = "r-2", "BTC-USD"
    table = pa.Table.from_pylist(rows, schema=LEDGER_SCHEMA)
    for name in ("venue", "account", "asset", "instrument", "raw_uri"):  # as read from dictionary pages
        i = table.schema.get_field_index(name)
        table = table.set_column(
            i, pa.field(name, pa.dictionary(pa.int32(), pa.string())), _repeating(table[name].to_pylist())
        )
    spec = load_suite("ledger", "coinbase")
    result = ledger_invariants(table, set(spec.invariant_columns), None)

    frame = _frame(result.table, result, spec.compared_columns)

    assert list(frame.columns) == [*LEDGER_SCHEMA.names, *result.invariants]
    for name in LEDGER_SCHEMA.names:
        assert [_plain(v) for v in frame[name]] == table[name].to_pylist(), name
    for name, inv in result.invariants.items():
        assert [_plain(v) for v in frame[name]] == inv.values.to_pylist(), name
    assert str(frame["venue"].dtype) == "category" and str(frame["entry_id"].dtype) == "string[pyarrow]"
    for name in ("details", "amount"):  # not read, or read for nulls only: a positional dictionary
        assert "dictionary" in str(frame[name].dtype), name


def test_positional_dictionary_keeps_values_and_nulls() -> None:
    values = pa.array(["a", None, "c", "d", None]).slice(1)  # an offset into its buffers
    for column in (pa.chunked_array([values]), pa.chunked_array([values, values])):
        encoded = _positional_dictionary(column)
        encoded.validate(full=True)
        assert encoded.to_pylist() == column.to_pylist()
        assert encoded.null_count == column.null_count
