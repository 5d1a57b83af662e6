"""The sandbox's ground truth (an independent reading of the venue documents) through lake and warehouse:
loaded rows equal the truth exactly, and the views reconcile where the venue reports balances."""

from __future__ import annotations

import decimal
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from warehouse_lakedata import comparable, day_interval, write_partition

from ledgerlake.interval import Interval
from ledgerlake.lake import Lake
from ledgerlake.sandbox.pytest_plugin import SANDBOX_NOW
from ledgerlake.schema import LEDGER_VENUES, RUN_COLUMNS
from ledgerlake.warehouse import Warehouse

FIRST_DAY = SANDBOX_NOW.replace(hour=0) - timedelta(days=2)
DAYS = [day_interval(FIRST_DAY + timedelta(days=d)) for d in range(2)]


def test_sandbox_truth_loads_exactly_and_reconciles(
    lake: Lake, warehouse: Warehouse, sandbox_factory: Callable[..., Any]
) -> None:
    sb = sandbox_factory(entries_per_day=120)
    truth: list[dict[str, Any]] = []
    for venue in LEDGER_VENUES:
        account = sb.accounts(venue)[0].account
        for interval in DAYS:
            rows = sb.truth(venue, account, interval).to_pylist()
            assert rows, f"{venue}: the sandbox has entries on {interval}"
            truth += rows
            write_partition(lake, venue, account, interval, rows)
        for interval in reversed(DAYS):  # out of order, and twice
            warehouse.load_partition(lake, venue, account, interval)
            warehouse.load_partition(lake, venue, account, interval)

    loaded = warehouse.query("SELECT * FROM ledger_entries").to_pylist()
    assert comparable(loaded, drop=RUN_COLUMNS) == comparable(truth)

    status = warehouse.query(
        "SELECT venue, status, COUNT(*) AS days FROM reconciliation GROUP BY venue, status"
    ).to_pylist()
    by_venue = {(r["venue"], r["status"]) for r in status}
    assert by_venue == {
        ("exchangehubx", "ok"),
        ("coinbase", "ok"),
        ("pacifica", "ok"),
        ("sunx", "not_reported"),
    }, status

    with decimal.localcontext(prec=80):  # balances reach 10^13 with 18 decimals: past the default 28 digits
        for venue in LEDGER_VENUES:
            account = sb.accounts(venue)[0].account
            rows = sorted((r for r in truth if r["venue"] == venue), key=lambda r: (r["occurred_at"], r["entry_seq"]))
            closing: dict[str, Any] = {}
            running: dict[str, decimal.Decimal] = {}
            for r in rows:
                running[r["asset"]] = running.get(r["asset"], decimal.Decimal(0)) + r["amount"]
                if r["balance_after"] is not None:
                    closing[r["asset"]] = r["balance_after"]
            assert warehouse.closing_balances(venue, account, DAYS[-1].end) == closing
            last_day = warehouse.query(
                "SELECT asset, closing_balance, source FROM daily_balances WHERE venue = ? AND day = ?",
                [venue, DAYS[-1].start.date()],
            ).to_pylist()
            expected = closing if closing else running
            assert {r["asset"]: r["closing_balance"] for r in last_day} == expected
            assert {r["source"] for r in last_day} == {"balance_after" if closing else "running_sum"}


def test_sandbox_binance_snapshots_load_exactly(
    lake: Lake, warehouse: Warehouse, sandbox_factory: Callable[..., Any]
) -> None:
    sb = sandbox_factory()
    account = sb.accounts("binance")[0].account
    expected: dict[str, list[dict[str, Any]]] = {"snapshots/balances": [], "snapshots/positions": []}
    for interval in DAYS:
        tables = sb.snapshot_truth(account, interval)
        rows = {dataset: t.to_pylist() for dataset, t in tables.items()}
        for dataset, dataset_rows in rows.items():
            expected[dataset] += dataset_rows
        write_partition(lake, "binance", account, interval, rows)
        warehouse.load_partition(lake, "binance", account, Interval(interval.start, interval.end))
    assert expected["snapshots/balances"], "the sandbox has snapshots in these days"
    balances = warehouse.query("SELECT * FROM balance_snapshots").to_pylist()
    positions = warehouse.query("SELECT * FROM position_snapshots").to_pylist()
    assert comparable(balances, drop=RUN_COLUMNS) == comparable(expected["snapshots/balances"], drop=RUN_COLUMNS)
    assert comparable(positions, drop=RUN_COLUMNS) == comparable(expected["snapshots/positions"], drop=RUN_COLUMNS)
    daily = warehouse.query("SELECT DISTINCT source FROM daily_balances").to_pylist()
    assert daily == [{"source": "snapshot"}]
