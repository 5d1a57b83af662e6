"""The gate on Binance snapshot partitions: balances consistent with the document's fields per snapshot type,
positions well formed; each rule fails on a crafted bad partition and passes on the clean one."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ledgerlake.lake import Lake, read_validation
from ledgerlake.quality import ValidationOutcome, validate_partition

from .partitions import INGESTED, INTERVAL, write_partition

STAMP = INTERVAL.end - timedelta(seconds=1)  # Binance stamps snapshots about 23:59:59 UTC


def balance(kind: str, asset: str, **values: str) -> dict[str, Any]:
    fields = ("free", "locked", "borrowed", "interest", "net_asset", "wallet_balance", "margin_balance")
    row: dict[str, Any] = {f: Decimal(values[f]) if f in values else None for f in fields}
    total = {"spot": lambda: row["free"] + row["locked"], "margin": lambda: row["net_asset"]}.get(
        kind, lambda: row["wallet_balance"]
    )()
    return {
        "venue": "binance",
        "account": "main",
        "snapshot_type": kind,
        "snapshot_at": STAMP,
        "asset": asset,
        **row,
        "total": Decimal(values.get("total", total)),
        "details": '{"totalAssetOfBtc":"0.099"}',
        "raw_uri": "s3://lake/raw/venue=binance/page-000001.json.gz",
        "ingested_at": INGESTED,
    }


def clean_balances() -> list[dict[str, Any]]:
    return [
        balance("spot", "BTC", free="0.09905021", locked="0.00000000"),
        balance("spot", "USDT", free="1.89109409", locked="2.5"),
        balance("margin", "XRP", free="1", locked="0.5", borrowed="0.2", interest="0.01", net_asset="1.29"),
        balance("futures", "USDT", wallet_balance="120.23811389", margin_balance="118.99782335"),
    ]


def position(symbol: str = "BTCUSDT", **changes: str) -> dict[str, Any]:
    values = {"position_amt": "0.01", "entry_price": "7130.41", "mark_price": "7257.66239673"} | changes
    return {
        "venue": "binance",
        "account": "main",
        "snapshot_at": STAMP,
        "symbol": symbol,
        "position_amt": Decimal(values["position_amt"]),
        "entry_price": Decimal(values["entry_price"]),
        "mark_price": Decimal(values["mark_price"]),
        "unrealized_profit": Decimal("1.24029054"),
        "raw_uri": "s3://lake/raw/venue=binance/page-000001.json.gz",
        "ingested_at": INGESTED,
    }


def run(
    lake: Lake, docs_dir: Path, balances: list[dict[str, Any]], positions: list[dict[str, Any]]
) -> ValidationOutcome:
    write_partition(lake, "binance", "main", {"snapshots/balances": balances, "snapshots/positions": positions})
    return validate_partition(lake, "binance", "main", INTERVAL, data_docs_dir=docs_dir)


def test_clean_snapshots_pass(lake: Lake, docs_dir: Path) -> None:
    outcome = run(lake, docs_dir, clean_balances(), [position(), position("ETHUSDT")])

    assert outcome.passed, outcome.report()
    assert outcome.rows == {"snapshots/balances": 4, "snapshots/positions": 2}
    names = {c.name for c in outcome.checks}
    assert {"invariant_spot_free_locked", "invariant_margin_net_asset", "invariant_futures_balances"} <= names
    assert "invariant_position_well_formed" in names
    record = read_validation(lake, "binance", "main", INTERVAL)
    assert record is not None and record.passed


def test_snapshots_without_positions_pass(lake: Lake, docs_dir: Path) -> None:
    assert run(lake, docs_dir, clean_balances()[:2], []).passed


def _spoil(name: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str, str]:
    """(balances, positions, the failing check, the asset or symbol it names)."""
    balances, positions = clean_balances(), [position()]
    if name == "spot_total":
        balances[1]["total"] += Decimal("0.000000000000000001")
        return balances, positions, "invariant_spot_free_locked", "USDT"
    if name == "spot_locked_missing":
        balances[0]["locked"] = None
        return balances, positions, "invariant_spot_free_locked", "BTC"
    if name == "margin_net_asset":
        balances[2]["net_asset"] = balances[2]["total"] = Decimal("1.3")  # interest left out
        return balances, positions, "invariant_margin_net_asset", "XRP"
    if name == "futures_margin_missing":
        balances[3]["margin_balance"] = None
        return balances, positions, "invariant_futures_balances", "USDT"
    if name == "futures_total":
        balances[3]["total"] = balances[3]["margin_balance"]
        return balances, positions, "invariant_futures_balances", "USDT"
    if name == "duplicate_balance":
        balances.append(dict(balances[0]))
        return (
            balances,
            positions,
            "expect_compound_columns_to_be_unique(venue,account,snapshot_type,snapshot_at,asset)",
            "BTC",
        )
    if name == "unknown_snapshot_type":
        balances[0]["snapshot_type"] = "savings"
        return balances, positions, "expect_column_values_to_be_in_set(snapshot_type)", "BTC"
    if name == "snapshot_outside_interval":
        balances[0]["snapshot_at"] = INTERVAL.end
        return balances, positions, "expect_column_values_to_be_between(snapshot_at)", "BTC"
    if name == "negative_price":
        positions[0]["mark_price"] = Decimal("-1")
        return balances, positions, "invariant_position_well_formed", "BTCUSDT"
    if name == "empty_symbol":
        positions[0]["symbol"] = ""
        return balances, positions, "invariant_position_well_formed", ""
    if name == "duplicate_position":
        positions.append(dict(positions[0]))
        return balances, positions, "expect_compound_columns_to_be_unique(venue,account,snapshot_at,symbol)", "BTCUSDT"
    raise AssertionError(name)


@pytest.mark.parametrize(
    "name",
    [
        "spot_total",
        "spot_locked_missing",
        "margin_net_asset",
        "futures_margin_missing",
        "futures_total",
        "duplicate_balance",
        "unknown_snapshot_type",
        "snapshot_outside_interval",
        "negative_price",
        "empty_symbol",
        "duplicate_position",
    ],
)
def test_each_snapshot_rule_fails_on_a_crafted_partition(lake: Lake, docs_dir: Path, name: str) -> None:
    balances, positions, check, names = _spoil(name)

    outcome = run(lake, docs_dir, balances, positions)

    assert not outcome.passed
    failures = {c.name: c for c in outcome.failures}
    assert set(failures) == {check}, outcome.report()
    rows = failures[check].offending_rows
    assert rows and any(names in (r.get("asset"), r.get("symbol")) for r in rows), rows
