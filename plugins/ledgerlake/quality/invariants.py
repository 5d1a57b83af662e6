"""Ledger and snapshot invariants, vectorized over Arrow with exact decimal arithmetic.

Each invariant becomes a boolean column `invariant_<name>` aligned with the table it was computed on: true
where the rule holds, false where it breaks, null where it does not apply. The expectation suites check those
columns (so the invariants show up in the suite result and in Data Docs like any other expectation), and the
`context` arrays (expected values) go into the offending rows of a failure report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ledgerlake.schema import BALANCE_SNAPSHOT_SCHEMA, DECIMAL

# decimal128(38,18) + decimal128(38,18) would need precision 39, which decimal128 cannot hold. Narrowing to
# (37,18) first keeps sums in decimal128 (fast); a value of 10^19 or more falls back to decimal256.
_NARROW = pa.decimal128(37, 18)
_WIDE = pa.decimal256(60, 18)
_NARROW_MAX = Decimal(10) ** (_NARROW.precision - _NARROW.scale) - Decimal(10) ** -_NARROW.scale

# The columns each dataset's invariants need in the contract's types (the gate never reads them dictionary-encoded).
# The ledger's asset may come dictionary-encoded: rows are grouped by its codes, with no hashing of every row.
PLAIN_COLUMNS = {
    "ledger": ("entry_seq", "amount", "balance_before", "balance_after"),
    "snapshots/balances": ("snapshot_type", *(f.name for f in BALANCE_SNAPSHOT_SCHEMA if f.type == DECIMAL)),
    "snapshots/positions": ("symbol", "entry_price", "mark_price"),
}


@dataclass
class Invariant:
    column: str  # invariant_<name>
    values: pa.Array  # bool: true holds, false broken, null not applicable
    context: dict[str, pa.Array] = field(default_factory=dict)  # expected values shown with offending rows


@dataclass
class InvariantResult:
    table: pa.Table  # the table, possibly reordered; invariant arrays are aligned with it
    invariants: dict[str, Invariant] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _working_decimals(*columns: pa.ChunkedArray | pa.Array, wide: bool = False) -> list[pa.Array]:
    """The columns in one decimal type whose single sums stay exact (wide: any chain of sums; slower)."""
    arrays = [_one_array(c) for c in columns]
    if not wide:
        narrow = [_narrowed(a) for a in arrays]
        if all(a is not None for a in narrow):
            return narrow  # type: ignore[return-value]
    return [a.cast(_WIDE) for a in arrays]


def _one_array(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(column, pa.Array):
        return column
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _narrowed(values: pa.Array) -> pa.Array | None:
    """The values as _NARROW, or None when one does not fit (10^19 or more)."""
    t = values.type
    if not (pa.types.is_decimal128(t) and t.scale == _NARROW.scale):
        try:
            return values.cast(_NARROW)
        except pa.ArrowInvalid:
            return None
    low, high = pc.min_max(values).values()
    if low.is_valid and max(-low.as_py(), high.as_py()) > _NARROW_MAX:
        return None
    return values.view(_NARROW)  # same scale and bytes: a decimal128 is 16 bytes whatever its precision


def _null_bools(n: int) -> pa.Array:
    return pa.nulls(n, pa.bool_())


def _previous_of_same_asset(asset: pa.Array) -> np.ndarray:
    """For each row (in the venue's order), the index of the previous row with the same asset, or -1."""
    if pa.types.is_dictionary(asset.type):  # one code per value, even where the dictionary repeats a value
        unique = pc.dictionary_encode(asset.dictionary)
        indices, groups = unique.indices.take(asset.indices), len(unique.dictionary)
    else:
        encoded = pc.dictionary_encode(asset)
        indices, groups = encoded.indices, len(encoded.dictionary)
    # Rows without an asset share the code `groups` (they are unlinked below); 16-bit codes sort by radix.
    filled = indices.fill_null(groups) if indices.null_count else indices
    codes = np.asarray(filled).astype(np.int16 if groups < 2**15 else np.int64)
    order = np.argsort(codes, kind="stable")  # rows grouped by asset, each group still in the venue's order
    previous = np.full(len(codes), -1, dtype=np.int32)
    if len(order) > 1:
        same = codes[order[1:]] == codes[order[:-1]]
        previous[order[1:]] = np.where(same, order[:-1], -1)
    if indices.null_count:
        previous[np.asarray(indices.is_null())] = -1
    return previous


def ledger_invariants(
    table: pa.Table,
    wanted: set[str],
    previous_closing: Mapping[str, Decimal] | None,
) -> InvariantResult:
    """Compute the wanted invariant columns in the venue's order (entry_seq), per asset:
    invariant_balance_arithmetic, invariant_running_balance, invariant_previous_closing.

    previous_closing: closing balance per asset of the previous interval, or None when it is unknown.
    """
    seq_column = _one_array(table["entry_seq"])
    seq = np.asarray(seq_column.fill_null(-1) if seq_column.null_count else seq_column)
    if len(seq) > 1 and not bool(np.all(seq[1:] >= seq[:-1])):
        table = table.take(pc.sort_indices(table["entry_seq"]))  # extraction writes in order; this is rare
    result = InvariantResult(table=table)
    n = table.num_rows
    if not wanted:
        return result
    amount, before, after = _working_decimals(table["amount"], table["balance_before"], table["balance_after"])
    asset = _one_array(table["asset"])
    previous_row = _previous_of_same_asset(asset)
    first = previous_row < 0
    take_previous = pa.array(previous_row, mask=first)

    if "invariant_balance_arithmetic" in wanted:
        expected = pc.add(before, amount)
        result.invariants["invariant_balance_arithmetic"] = Invariant(
            "invariant_balance_arithmetic",
            # a missing balance is caught by the not-null expectations; here only the sum is judged
            pc.equal(expected, after),
            {"expected_balance_after": expected},
        )

    if "invariant_running_balance" in wanted:
        prev_after = after.take(take_previous)
        expected = pc.add(prev_after, amount)
        ok = pc.and_kleene(
            pc.equal(expected, after),
            pc.if_else(pc.is_null(before), True, pc.equal(before, prev_after)),
        )
        result.invariants["invariant_running_balance"] = Invariant(
            "invariant_running_balance",
            pc.if_else(pa.array(first), _null_bools(n), ok),
            {"previous_balance_after": prev_after, "expected_balance_after": expected},
        )

    if "invariant_previous_closing" in wanted:
        # Only an asset's first row continues the previous interval: computed on those rows, spread to all.
        first_rows = np.flatnonzero(first)
        first_assets = asset.take(first_rows).to_pylist()
        # a row without an asset fails the not-null expectation; here it is only left out
        assets_here = sorted({a for a in first_assets if a is not None})
        if previous_closing is None:
            result.notes.append(
                "continuity with the previous interval not checked: no previous closing balances were given"
            )
            closing_by_asset: dict[str, Decimal] = {}
        else:
            closing_by_asset = {a: previous_closing[a] for a in assets_here if a in previous_closing}
            for a in assets_here:
                if a not in previous_closing:
                    result.notes.append(
                        f"continuity with the previous interval skipped for asset {a}: "
                        "no earlier closing balance in the warehouse"
                    )
        starts = [(row, a) for row, a in zip(first_rows, first_assets, strict=True) if a in closing_by_asset]
        rows = pa.array([row for row, _ in starts], pa.int64())
        closing = pa.array([closing_by_asset[a] for _, a in starts], DECIMAL).cast(amount.type)
        expected = pc.add(closing, amount.take(rows))
        ok = pc.and_kleene(
            pc.equal(expected, after.take(rows)),
            pc.if_else(pc.is_null(before.take(rows)), True, pc.equal(before.take(rows), closing)),
        )
        spread = np.full(n, -1, dtype=np.int32)  # row -> its place among `rows`; null for every other row
        spread[rows.to_numpy()] = np.arange(len(rows))
        to_rows = pa.array(spread, mask=spread < 0)
        result.invariants["invariant_previous_closing"] = Invariant(
            "invariant_previous_closing",
            ok.take(to_rows),
            {  # dictionary-encoded: a few values, not a million decimals that are nearly all null
                "previous_closing": pa.DictionaryArray.from_arrays(to_rows, closing),
                "expected_balance_after": pa.DictionaryArray.from_arrays(to_rows, expected),
            },
        )
    return result


def _present(table: pa.Table, *columns: str) -> pa.Array:
    mask = pa.array([True] * table.num_rows, pa.bool_())
    for c in columns:
        mask = pc.and_(mask, pc.is_valid(table[c].combine_chunks()))
    return mask


def _equal(a: pa.Array, b: pa.Array) -> pa.Array:
    return pc.fill_null(pc.equal(a, b), False)


def balance_snapshot_invariants(table: pa.Table) -> InvariantResult:
    """Per snapshot_type: spot free + locked = total; margin net_asset = free + locked - borrowed - interest
    = total; futures wallet_balance and margin_balance given, total = wallet_balance."""
    n = table.num_rows
    result = InvariantResult(table=table)
    kind = table["snapshot_type"].combine_chunks()
    free, locked, borrowed, interest, net, wallet, total = _working_decimals(
        *(table[c] for c in ("free", "locked", "borrowed", "interest", "net_asset", "wallet_balance", "total")),
        wide=True,  # a few rows per day, and margin chains four terms
    )
    nulls = _null_bools(n)

    spot_sum = pc.add(free, locked)
    spot_ok = pc.and_(_present(table, "free", "locked"), _equal(spot_sum, total))
    result.invariants["invariant_spot_free_locked"] = Invariant(
        "invariant_spot_free_locked",
        pc.if_else(pc.equal(kind, "spot"), spot_ok, nulls),
        {"free_plus_locked": spot_sum},
    )

    margin_net = pc.subtract(pc.subtract(pc.add(free, locked), borrowed), interest)
    margin_ok = pc.and_(
        _present(table, "free", "locked", "borrowed", "interest", "net_asset"),
        pc.and_(_equal(margin_net, net), _equal(net, total)),
    )
    result.invariants["invariant_margin_net_asset"] = Invariant(
        "invariant_margin_net_asset",
        pc.if_else(pc.equal(kind, "margin"), margin_ok, nulls),
        {"free_plus_locked_minus_borrowed_minus_interest": margin_net},
    )

    futures_ok = pc.and_(_present(table, "wallet_balance", "margin_balance"), _equal(wallet, total))
    result.invariants["invariant_futures_balances"] = Invariant(
        "invariant_futures_balances",
        pc.if_else(pc.equal(kind, "futures"), futures_ok, nulls),
    )
    return result


def position_invariants(table: pa.Table) -> InvariantResult:
    result = InvariantResult(table=table)
    symbol = table["symbol"].combine_chunks()
    ok = pc.fill_null(pc.greater(pc.utf8_length(symbol), 0), False)
    for col in ("entry_price", "mark_price"):
        values = table[col].combine_chunks()
        not_negative = pc.fill_null(pc.greater_equal(values, pa.scalar(Decimal(0), values.type)), True)
        ok = pc.and_(ok, not_negative)
    result.invariants["invariant_position_well_formed"] = Invariant("invariant_position_well_formed", ok)
    return result
