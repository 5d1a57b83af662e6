"""Helpers of the end-to-end tests: compare the warehouse with the sandbox's ground truth, snapshot what a
re-run must not change, run a backfill and explain failures."""

from __future__ import annotations

from datetime import datetime

import pytest

# Comparing the warehouse with the sandbox's ground truth --------------------------------------------------

LEDGER_KEY = ("entry_seq",)
BALANCE_KEY = ("snapshot_type", "snapshot_at", "asset")
POSITION_KEY = ("snapshot_at", "symbol")


def _rows(table, columns: list[str], key: tuple[str, ...]) -> list[tuple]:
    rows = [tuple(r[c] for c in columns) for r in table.select(columns).to_pylist()]
    index = [columns.index(k) for k in key]
    return sorted(rows, key=lambda r: tuple(r[i] for i in index))


def warehouse_differences(stack, start: datetime, end: datetime) -> list[str]:
    """Every (venue, account, day) whose warehouse rows differ from the sandbox's ground truth, row for row
    (all contract columns but raw_uri and ingested_at; decimals compared exactly). Empty when exact."""
    from ledgerlake.interval import Interval
    from ledgerlake.schema import LEDGER_VENUES
    from ledgerlake.warehouse import WarehouseSettings, open_warehouse

    sandbox = stack.sandbox
    problems: list[str] = []
    days = list(Interval(start, end).days())
    with open_warehouse(WarehouseSettings.parse(stack.options.warehouse), read_only=True) as wh:

        def compare(what: str, truth, table: str, time_column: str, where: list, key: tuple[str, ...]) -> None:
            columns = truth.column_names
            got = wh.query(
                f"SELECT {', '.join(columns)} FROM {table} WHERE venue = ? AND account = ? "
                f"AND {time_column} >= ? AND {time_column} < ?",
                where,
            )
            expected, actual = _rows(truth, columns, key), _rows(got, columns, key)
            if expected != actual:
                missing = [r for r in expected if r not in set(actual)][:2]
                extra = [r for r in actual if r not in set(expected)][:2]
                problems.append(
                    f"{what}: {len(actual)} rows in {table}, {len(expected)} in the truth; "
                    f"missing e.g. {missing}; unexpected e.g. {extra}"
                )

        for venue in LEDGER_VENUES:
            for account in sandbox.accounts(venue):
                for day in days:
                    truth = sandbox.truth(venue, account.account, day)
                    where = [venue, account.account, day.start, day.end]
                    compare(
                        f"{venue} {account.account} {day}", truth, "ledger_entries", "occurred_at", where, LEDGER_KEY
                    )
        for account in sandbox.accounts("binance"):
            for day in days:
                truth = sandbox.snapshot_truth(account.account, day)
                where = ["binance", account.account, day.start, day.end]
                what = f"binance {account.account} {day}"
                compare(what, truth["snapshots/balances"], "balance_snapshots", "snapshot_at", where, BALANCE_KEY)
                compare(what, truth["snapshots/positions"], "position_snapshots", "snapshot_at", where, POSITION_KEY)
    return problems


def warehouse_state(stack) -> dict[str, list[tuple]]:
    """Everything the warehouse holds but load times: for "a re-run changes nothing"."""
    from ledgerlake.warehouse import WarehouseSettings, open_warehouse

    state: dict[str, list[tuple]] = {}
    with open_warehouse(WarehouseSettings.parse(stack.options.warehouse), read_only=True) as wh:
        for table in ("ledger_entries", "balance_snapshots", "position_snapshots"):
            result = wh.query(f"SELECT * FROM {table}")
            columns = [c for c in result.column_names if c != "ingested_at"]
            state[table] = sorted((tuple(r[c] for c in columns) for r in result.to_pylist()), key=repr)
        result = wh.query("SELECT venue, account, interval_start, interval_end, rows FROM loads")
        state["loads"] = sorted((tuple(r.values()) for r in result.to_pylist()), key=repr)
    return state


def lake_keys(stack) -> set[str]:
    """Every object the readers trust or keep: raw pages, data files, manifests (validation records and Data
    Docs are rewritten on each run by design)."""
    from ledgerlake.lake import Lake

    lake = Lake(stack.s3.settings)
    keys: set[str] = set()
    for prefix in ("raw/", "ledger/", "snapshots/", "manifests/", "quarantine/"):
        keys.update(lake.list_keys(prefix))
    return keys


def run_backfill(stack, start: datetime, end: datetime, timeout: float = 900, **kwargs) -> list:
    """Create one backfill per DAG over REST and wait; on any failed run, fail with the failed tasks' logs."""
    import time

    began = time.monotonic()
    backfills = stack.backfill(start, end, **kwargs)
    assert all(b["id"] for b in backfills)
    try:
        progress = stack.wait(backfills, timeout=timeout)
    except Exception:
        print(stack.diagnostics())
        raise
    print(f"backfill {kwargs or ''} of {len(backfills)} DAGs took {time.monotonic() - began:.0f} s")
    failed = {p.dag_id: p.states for p in progress if p.failed or not p.done}
    if failed:
        pytest.fail(f"backfill runs failed: {failed}\n{stack.diagnostics()}", pytrace=False)
    return progress
