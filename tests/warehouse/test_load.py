"""Loads replace exactly one (venue, account, interval), atomically, and only validated manifests."""

from __future__ import annotations

import io
import itertools
import os
import re
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from warehouse_lakedata import (
    STABLE_DROP,
    comparable,
    day_interval,
    in_interval,
    ledger_history,
    mark_validated,
    position_history,
    snapshot_history,
    write_large_ledger_partition,
    write_partition,
)

from ledgerlake.interval import Interval
from ledgerlake.lake import Lake, Manifest, ManifestFile, data_file_key
from ledgerlake.schema import DATASETS
from ledgerlake.warehouse import TABLES, LoadRefused, Warehouse, WarehouseError, WarehouseSettings, open_warehouse
from ledgerlake.warehouse.sql import schema_scripts

D0 = datetime(2026, 3, 1, tzinfo=UTC)
# The step that writes the new rows, after the old ones are deleted: where the failures below strike.
WRITE_STEP = {"postgres": "_insert_arrow", "duckdb": "_insert_file"}
TABLE_ORDER = {
    "ledger_entries": "venue, account, entry_id",
    "balance_snapshots": "venue, account, snapshot_type, snapshot_at, asset",
    "position_snapshots": "venue, account, snapshot_at, symbol",
}


def tables(wh: Warehouse) -> dict[str, list[dict[str, Any]]]:
    return {name: wh.query(f"SELECT * FROM {name} ORDER BY {order}").to_pylist() for name, order in TABLE_ORDER.items()}


def test_loaded_interval_equals_input_exactly(lake: Lake, warehouse: Warehouse) -> None:
    history = ledger_history("coinbase", "acct-1", D0, days=1, per_day=40, assets=("USD",))
    history[5]["amount"] = Decimal("-0.000000000000000001")  # smallest step of the scale
    history[6]["amount"] = Decimal("12345678901234567890.123456789012345678")  # 38 digits
    history[7]["instrument"] = ""  # an empty string stays an empty string, not NULL
    interval = day_interval(D0)
    stored = write_partition(lake, "coinbase", "acct-1", interval, history, files_per_day=3)

    summary = warehouse.load_partition(lake, "coinbase", "acct-1", interval)

    assert summary.inserted == {"ledger_entries": 40}
    loaded = warehouse.query("SELECT * FROM ledger_entries").to_pylist()
    assert comparable(loaded) == comparable(stored)
    by_id = {r["entry_id"]: r for r in loaded}
    assert str(by_id[history[5]["entry_id"]]["amount"].normalize()) == "-1E-18"
    assert by_id[history[6]["entry_id"]]["amount"] == Decimal("12345678901234567890.123456789012345678")
    assert by_id[history[7]["entry_id"]]["instrument"] == ""
    for row in loaded:
        assert row["occurred_at"].utcoffset() == timedelta(0)
        assert isinstance(row["amount"], Decimal)
    assert any(r["occurred_at"].microsecond % 1000 for r in loaded), "microseconds survive"
    loads = warehouse.query("SELECT * FROM loads").to_pylist()
    assert [(r["venue"], r["account"], r["interval_start"], r["interval_end"], r["rows"]) for r in loads] == [
        ("coinbase", "acct-1", interval.start, interval.end, 40)
    ]
    assert loads[0]["manifest_sha256"] == lake.manifest_sha256("coinbase", "acct-1", interval)


def test_snapshots_load_into_their_tables(lake: Lake, warehouse: Warehouse) -> None:
    interval = day_interval(D0, days=2)
    balances, positions = snapshot_history("main", D0, 2), position_history("main", D0, 2)
    stored = write_partition(
        lake, "binance", "main", interval, {"snapshots/balances": balances, "snapshots/positions": positions}
    )
    summary = warehouse.load_partition(lake, "binance", "main", interval)
    assert summary.inserted == {"balance_snapshots": len(balances), "position_snapshots": len(positions)}
    got = tables(warehouse)
    assert comparable(got["balance_snapshots"]) == comparable([r for r in stored if "snapshot_type" in r])
    assert comparable(got["position_snapshots"]) == comparable([r for r in stored if "symbol" in r])
    assert got["ledger_entries"] == []


def test_loading_three_times_gives_the_same_tables(lake: Lake, warehouse: Warehouse) -> None:
    history = ledger_history("exchangehubx", "main", D0, days=2, per_day=25, assets=("USDT", "BTC"))
    intervals = [day_interval(D0), day_interval(D0 + timedelta(days=1))]
    for interval in intervals:
        write_partition(lake, "exchangehubx", "main", interval, in_interval(history, interval))
    for interval in intervals:
        warehouse.load_partition(lake, "exchangehubx", "main", interval)
    once = tables(warehouse)
    for _ in range(2):
        for interval in intervals:
            summary = warehouse.load_partition(lake, "exchangehubx", "main", interval)
            assert summary.deleted == summary.inserted  # replaced, not added
    assert tables(warehouse) == once
    assert len(once["ledger_entries"]) == 50
    assert warehouse.query("SELECT COUNT(*) AS n FROM loads").to_pylist() == [{"n": 2}]


def test_backfills_in_any_order_and_overlapping_give_the_same_tables(lake: Lake, warehouse: Warehouse) -> None:
    venue, account = "pacifica", "wallet-9"
    history = ledger_history(venue, account, D0, days=4, per_day=12, assets=("USDC",))
    days = [day_interval(D0 + timedelta(days=d)) for d in range(4)]
    two_day = day_interval(D0 + timedelta(days=1), days=2)  # a backfill over days 1-2 beside the daily runs
    for interval in [*days, two_day]:
        write_partition(lake, venue, account, interval, in_interval(history, interval))

    expected = comparable([dict(r) for r in history], drop=STABLE_DROP)
    results = []
    for order in [(0, 1, 2, 3), (3, 1, 0, 2), (2, 3, 1, 0)]:
        for with_overlap in (False, True):
            schedule: list[Interval] = [days[i] for i in order]
            if with_overlap:
                schedule.insert(2, two_day)
            # a fresh start for each order: empty the tables through a reload of nothing is not possible,
            # so the same warehouse is reused and must converge regardless of what it held before
            for interval in schedule:
                warehouse.load_partition(lake, venue, account, interval)
            loaded = warehouse.query("SELECT * FROM ledger_entries").to_pylist()
            assert comparable(loaded, drop=STABLE_DROP) == expected
            if not with_overlap:
                results.append(comparable(loaded))
    # the same daily partitions, in whatever order, give identical rows down to entry_seq and raw_uri
    assert all(r == results[0] for r in results)


def test_a_load_failing_between_delete_and_insert_leaves_the_previous_state(
    lake: Lake, warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    interval = day_interval(D0)
    history = ledger_history("sunx", "uid-1", D0, days=1, per_day=20)
    write_partition(lake, "sunx", "uid-1", interval, history)
    warehouse.load_partition(lake, "sunx", "uid-1", interval)
    before = tables(warehouse)
    loads_before = warehouse.query("SELECT * FROM loads").to_pylist()

    # a re-extraction with different rows, then a load that dies after its delete has run
    write_partition(lake, "sunx", "uid-1", interval, history[:10])
    calls = []

    def explode(*args: Any) -> None:
        remaining = warehouse.query("SELECT COUNT(*) AS n FROM ledger_entries").to_pylist()[0]["n"]
        calls.append(remaining)
        raise RuntimeError("injected failure")

    monkeypatch.setattr(warehouse, WRITE_STEP[warehouse.settings.kind], explode)
    with pytest.raises(WarehouseError, match=r"sunx/uid-1 \[2026-03-01T00:00:00\+00:00, 2026-03-02.*injected failure"):
        warehouse.load_partition(lake, "sunx", "uid-1", interval)
    assert len(calls) == 1 and calls[0] < 20, "the failure struck after the transaction had deleted rows"
    assert tables(warehouse) == before
    assert warehouse.query("SELECT * FROM loads").to_pylist() == loads_before

    monkeypatch.undo()
    warehouse.load_partition(lake, "sunx", "uid-1", interval)
    assert len(tables(warehouse)["ledger_entries"]) == 10


KILL_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from ledgerlake.interval import Interval
    from ledgerlake.lake import Lake, S3Settings
    from ledgerlake.warehouse import WarehouseSettings, open_warehouse

    settings = WarehouseSettings.parse(sys.argv[1])
    lake = Lake(S3Settings(bucket=sys.argv[2], endpoint_url=sys.argv[3], access_key_id="testing",
                           secret_access_key="testing"))
    interval = Interval.parse(sys.argv[4], sys.argv[5])
    wh = open_warehouse(settings)

    def die(*args):
        n = wh.query("SELECT COUNT(*) AS n FROM ledger_entries").to_pylist()[0]["n"]
        print(f"deleted, {n} left; dying", flush=True)
        os._exit(9)  # no rollback, no close: as if the worker were killed

    setattr(wh, sys.argv[6], die)
    wh.load_partition(lake, "coinbase", "acct-k", interval)
    """
)


def test_a_killed_load_leaves_the_previous_state(
    lake: Lake, warehouse_settings: WarehouseSettings, tmp_path: Any
) -> None:
    interval = day_interval(D0)
    history = ledger_history("coinbase", "acct-k", D0, days=1, per_day=15, assets=("USD",))
    write_partition(lake, "coinbase", "acct-k", interval, history)
    with open_warehouse(warehouse_settings) as wh:
        wh.load_partition(lake, "coinbase", "acct-k", interval)
        before = tables(wh)
    write_partition(lake, "coinbase", "acct-k", interval, history[3:])

    target = warehouse_settings.path if warehouse_settings.kind == "duckdb" else warehouse_settings.dsn
    script = tmp_path / "kill.py"
    script.write_text(KILL_SCRIPT)
    s3 = lake.settings
    proc = subprocess.run(
        [
            sys.executable,
            str(script),
            str(target),
            s3.bucket,
            str(s3.endpoint_url),
            interval.start.isoformat(),
            interval.end.isoformat(),
            WRITE_STEP[warehouse_settings.kind],
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert proc.returncode == 9, proc.stderr
    assert "deleted, 0 left; dying" in proc.stdout

    with open_warehouse(warehouse_settings) as wh:
        assert tables(wh) == before


def test_refuses_partitions_not_fit_to_load(lake: Lake, warehouse: Warehouse) -> None:
    venue, account = "exchangehubx", "sub-2"
    history = ledger_history(venue, account, D0, days=3, per_day=5)
    first, second, third, fourth = (day_interval(D0 + timedelta(days=d)) for d in range(4))

    with pytest.raises(LoadRefused, match=r"exchangehubx/sub-2 \[2026-03-04.*no manifest"):
        warehouse.load_partition(lake, venue, account, fourth)

    write_partition(lake, venue, account, first, in_interval(history, first), validate=None)
    with pytest.raises(LoadRefused, match=r"exchangehubx/sub-2 \[2026-03-01.*not validated"):
        warehouse.load_partition(lake, venue, account, first)

    write_partition(lake, venue, account, second, in_interval(history, second), validate=False)
    with pytest.raises(LoadRefused, match=r"exchangehubx/sub-2 \[2026-03-02.*validation failed.*balance continuity"):
        warehouse.load_partition(lake, venue, account, second)

    # validated, then re-extracted: the record names the old manifest
    write_partition(lake, venue, account, third, in_interval(history, third))
    write_partition(lake, venue, account, third, in_interval(history, third)[:-1], validate=None)
    with pytest.raises(LoadRefused, match=r"exchangehubx/sub-2 \[2026-03-03.*validation is stale"):
        warehouse.load_partition(lake, venue, account, third)

    # a data file replaced behind the manifest's back
    mark_validated(lake, venue, account, third)
    key = data_file_key("ledger", venue, account, third, "2026-03-03", 0)
    lake.put_bytes(key, lake.get_bytes(key) + b"\0")
    with pytest.raises(LoadRefused, match=r"changed since its manifest"):
        warehouse.load_partition(lake, venue, account, third)

    assert tables(warehouse)["ledger_entries"] == []
    assert warehouse.query("SELECT COUNT(*) AS n FROM loads").to_pylist() == [{"n": 0}]


def test_rows_outside_the_interval_are_refused(lake: Lake, warehouse: Warehouse) -> None:
    interval = day_interval(D0)
    history = ledger_history("coinbase", "acct-x", D0, days=2, per_day=5, assets=("USD",))
    write_partition(lake, "coinbase", "acct-x", interval, history)  # the second day's rows do not belong
    with pytest.raises(WarehouseError, match=r"coinbase/acct-x .*occurred_at spans .* outside the interval"):
        warehouse.load_partition(lake, "coinbase", "acct-x", interval)
    assert tables(warehouse)["ledger_entries"] == []


def test_an_entry_id_loaded_under_another_interval_is_a_clear_error(lake: Lake, warehouse: Warehouse) -> None:
    history = ledger_history("coinbase", "acct-d", D0, days=2, per_day=5, assets=("USD",))
    first, second = day_interval(D0), day_interval(D0 + timedelta(days=1))
    write_partition(lake, "coinbase", "acct-d", first, in_interval(history, first))
    warehouse.load_partition(lake, "coinbase", "acct-d", first)
    clash = in_interval(history, second)
    clash[0]["entry_id"] = history[0]["entry_id"]
    write_partition(lake, "coinbase", "acct-d", second, clash)
    with pytest.raises(WarehouseError, match=r"coinbase/acct-d \[2026-03-02.*nothing changed"):
        warehouse.load_partition(lake, "coinbase", "acct-d", second)
    assert len(tables(warehouse)["ledger_entries"]) == 5


def test_closing_balances(lake: Lake, warehouse: Warehouse) -> None:
    history = ledger_history("exchangehubx", "main", D0, days=2, per_day=30, assets=("USDT", "BTC", "ETH"))
    for interval in (day_interval(D0), day_interval(D0 + timedelta(days=1))):
        write_partition(lake, "exchangehubx", "main", interval, in_interval(history, interval))
        warehouse.load_partition(lake, "exchangehubx", "main", interval)
    sunx = ledger_history("sunx", "main", D0, days=1, per_day=5)
    write_partition(lake, "sunx", "main", day_interval(D0), sunx)
    warehouse.load_partition(lake, "sunx", "main", day_interval(D0))

    for before in [
        D0,
        D0 + timedelta(hours=7),
        D0 + timedelta(days=1),
        history[31]["occurred_at"],
        D0 + timedelta(days=2),
    ]:
        expected: dict[str, Decimal] = {}
        for row in history:  # already in the venue's order
            if row["occurred_at"] < before:
                expected[row["asset"]] = row["balance_after"]
        assert warehouse.closing_balances("exchangehubx", "main", before) == expected
    assert warehouse.closing_balances("exchangehubx", "main", D0) == {}
    # Days 2 to 4 are not loaded: nothing leads up to day 5 without a gap, so there is no closing balance.
    assert warehouse.closing_balances("exchangehubx", "main", D0 + timedelta(days=5)) == {}
    assert warehouse.closing_balances("sunx", "main", D0 + timedelta(days=1)) == {}  # sunx reports none
    with pytest.raises(ValueError, match="time zone"):
        warehouse.closing_balances("exchangehubx", "main", datetime(2026, 3, 2))


def test_closing_balances_only_from_loads_that_reach_the_interval_without_a_gap(
    lake: Lake, warehouse: Warehouse
) -> None:
    """A backfill loads days in any order: with day 1 missing, day 0's balances must not stand in for day 1's."""
    days = [day_interval(D0 + timedelta(days=i)) for i in range(3)]
    history = ledger_history("exchangehubx", "main", D0, days=3, per_day=20, assets=("USDT", "BTC"))
    for i in (0, 2):
        write_partition(lake, "exchangehubx", "main", days[i], in_interval(history, days[i]))
        warehouse.load_partition(lake, "exchangehubx", "main", days[i])

    def last_balances(rows: list[dict]) -> dict[str, Decimal]:
        found: dict[str, Decimal] = {}
        for row in rows:  # already in the venue's order
            found[row["asset"]] = row["balance_after"]
        return found

    assert warehouse.closing_balances("exchangehubx", "main", days[1].end) == {}
    assert warehouse.closing_balances("exchangehubx", "main", days[2].end) == last_balances(
        in_interval(history, days[2])
    )
    write_partition(lake, "exchangehubx", "main", days[1], in_interval(history, days[1]))
    warehouse.load_partition(lake, "exchangehubx", "main", days[1])
    assert warehouse.closing_balances("exchangehubx", "main", days[1].end) == last_balances(
        in_interval(history, days[1])
    )


def test_the_schema_set_up_is_repeatable(warehouse_settings: WarehouseSettings) -> None:
    for _ in range(2):
        with open_warehouse(warehouse_settings) as wh:
            assert wh.query("SELECT * FROM reconciliation").num_rows == 0


def test_every_permutation_of_three_days_converges(lake: Lake, warehouse: Warehouse) -> None:
    history = ledger_history("coinbase", "acct-p", D0, days=3, per_day=6, assets=("USD",))
    days = [day_interval(D0 + timedelta(days=d)) for d in range(3)]
    for interval in days:
        write_partition(lake, "coinbase", "acct-p", interval, in_interval(history, interval))
    seen = []
    for order in itertools.permutations(days):
        for interval in order:
            warehouse.load_partition(lake, "coinbase", "acct-p", interval)
        seen.append(tables(warehouse))
    assert all(s == seen[0] for s in seen)
    assert len(seen[0]["ledger_entries"]) == 18


LOAD_SCRIPT = textwrap.dedent(
    """
    import sys
    from ledgerlake.interval import Interval
    from ledgerlake.lake import Lake, S3Settings
    from ledgerlake.warehouse import WarehouseSettings, open_warehouse

    settings = WarehouseSettings.parse(sys.argv[1])
    lake = Lake(S3Settings(bucket=sys.argv[2], endpoint_url=sys.argv[3], access_key_id="testing",
                           secret_access_key="testing"))
    with open_warehouse(settings) as wh:
        for spec in sys.argv[4:]:
            start, end = spec.split("/")
            wh.load_partition(lake, "exchangehubx", "acct-c", Interval.parse(start, end))
    """
)


@pytest.mark.slow  # three processes, each starting Python, boto3 and a database client
def test_overlapping_loads_at_the_same_time_neither_fail_nor_duplicate(
    lake: Lake, warehouse_settings: WarehouseSettings, tmp_path: Any
) -> None:
    """A backfill beside the scheduled runs: processes loading overlapping intervals at once. PostgreSQL
    serialises them per account (advisory lock), DuckDB per file (one writing process at a time)."""
    history = ledger_history("exchangehubx", "acct-c", D0, days=3, per_day=40, assets=("USDT",))
    days = [day_interval(D0 + timedelta(days=d)) for d in range(3)]
    wide = day_interval(D0, days=3)
    for interval in [*days, wide]:
        write_partition(lake, "exchangehubx", "acct-c", interval, in_interval(history, interval))
    with open_warehouse(warehouse_settings):
        pass  # the schema exists before the race starts
    script = tmp_path / "load.py"
    script.write_text(LOAD_SCRIPT)
    target = warehouse_settings.path if warehouse_settings.kind == "duckdb" else warehouse_settings.dsn
    s3 = lake.settings

    def spec(i: Interval) -> str:
        return f"{i.start.isoformat()}/{i.end.isoformat()}"

    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(target), s3.bucket, str(s3.endpoint_url), *map(spec, specs)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        for specs in ([wide, wide, wide], [days[1], days[2], days[0]], [days[2], days[0], days[1]])
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    with open_warehouse(warehouse_settings) as wh:
        loaded = wh.query("SELECT * FROM ledger_entries").to_pylist()
    assert comparable(loaded, drop=STABLE_DROP) == comparable(history, drop=STABLE_DROP)


def test_rows_breaking_the_contract_roll_back_with_a_clear_error(lake: Lake, warehouse: Warehouse) -> None:
    interval = day_interval(D0)
    history = ledger_history("coinbase", "acct-n", D0, days=1, per_day=6, assets=("USD",))
    write_partition(lake, "coinbase", "acct-n", interval, history)
    warehouse.load_partition(lake, "coinbase", "acct-n", interval)
    before = tables(warehouse)

    nulls = [dict(r) for r in history]
    nulls[2]["entry_type"] = None
    write_partition(lake, "coinbase", "acct-n", interval, nulls, nullable=True)
    with pytest.raises(WarehouseError, match=r"coinbase/acct-n \[2026-03-01.*ledger schema.*'entry_type' with null"):
        warehouse.load_partition(lake, "coinbase", "acct-n", interval)
    assert tables(warehouse) == before

    # the same entry twice in one partition: PostgreSQL's primary key stops the COPY itself
    twice = [dict(r) for r in history]
    twice[4]["entry_id"] = twice[3]["entry_id"]
    write_partition(lake, "coinbase", "acct-n", interval, twice)
    with pytest.raises(WarehouseError, match=r"coinbase/acct-n \[2026-03-01.*nothing changed: .*(duplicate key|twice)"):
        warehouse.load_partition(lake, "coinbase", "acct-n", interval)
    assert tables(warehouse) == before

    write_partition(lake, "coinbase", "acct-n", interval, history)  # fixed upstream: loads again
    warehouse.load_partition(lake, "coinbase", "acct-n", interval)
    assert len(tables(warehouse)["ledger_entries"]) == 6


@pytest.mark.slow  # 300k rows: more than two of DuckDB's row groups (122,880 rows), where its bulk writes change
def test_large_partitions_load_every_row_and_reload_to_one_copy(lake: Lake, warehouse: Warehouse) -> None:
    """DuckDB 2.0.0 silently lost every row of a staging table created in the load's transaction once it
    held a full row group: the load reported 200k rows and the table held none."""
    interval = day_interval(D0)
    rows = 300_000

    def held() -> dict[str, Any]:
        return warehouse.query(
            "SELECT COUNT(*) AS n, COUNT(DISTINCT entry_id) AS ids, SUM(amount) AS total, MAX(entry_seq) AS last "
            "FROM ledger_entries"
        ).to_pylist()[0]

    write_large_ledger_partition(lake, "exchangehubx", "big", interval, rows, files=3)
    exact_total = Decimal(rows * (rows - 1) // 2).scaleb(-18)
    for _ in range(2):  # the first load, then a re-load of the same manifest
        summary = warehouse.load_partition(lake, "exchangehubx", "big", interval)
        assert summary.inserted == {"ledger_entries": rows}
        assert held() == {"n": rows, "ids": rows, "total": exact_total, "last": rows - 1}

    # re-extracted with the first 1,000 entries gone: they leave, the rest stay once
    write_large_ledger_partition(lake, "exchangehubx", "big", interval, rows - 1_000, first_id=1_000)
    summary = warehouse.load_partition(lake, "exchangehubx", "big", interval)
    assert summary.deleted == {"ledger_entries": rows}
    total = exact_total - Decimal(1_000 * 999 // 2).scaleb(-18)
    assert held() == {"n": rows - 1_000, "ids": rows - 1_000, "total": total, "last": rows - 1_001}


def test_a_write_short_of_the_partition_rolls_back(
    lake: Lake, warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the database reports writing must be every row given, else nothing changes."""
    if warehouse.settings.kind != "duckdb":
        pytest.skip("PostgreSQL's COPY either writes every row or fails")
    interval = day_interval(D0)
    history = ledger_history("coinbase", "acct-s", D0, days=1, per_day=8, assets=("USD",))
    write_partition(lake, "coinbase", "acct-s", interval, history)
    real = warehouse._execute  # type: ignore[attr-defined]

    def short(sql: str, params: Any = ()) -> int:
        changed = real(sql, params)
        return changed - 1 if sql.startswith("INSERT INTO ledger_entries") else changed

    monkeypatch.setattr(warehouse, "_execute", short)
    with pytest.raises(WarehouseError, match=r"coinbase/acct-s \[2026-03-01.*wrote 7 of the partition's 8 rows"):
        warehouse.load_partition(lake, "coinbase", "acct-s", interval)
    monkeypatch.undo()
    assert tables(warehouse)["ledger_entries"] == []
    assert warehouse.query("SELECT COUNT(*) AS n FROM loads").to_pylist() == [{"n": 0}]


def test_rows_of_another_account_are_refused(lake: Lake, warehouse: Warehouse) -> None:
    """DuckDB reads the files itself: a row that is not the partition's shows as the interval holding fewer
    rows than written, and the load names the file and the column."""
    interval = day_interval(D0)
    history = ledger_history("coinbase", "acct-y", D0, days=1, per_day=5, assets=("USD",))
    history[2]["account"] = "acct-z"
    write_partition(lake, "coinbase", "acct-y", interval, history)
    with pytest.raises(WarehouseError, match=r"coinbase/acct-y .*file .*holds rows of another account than 'acct-y'"):
        warehouse.load_partition(lake, "coinbase", "acct-y", interval)
    assert tables(warehouse)["ledger_entries"] == []


def test_a_snapshot_key_twice_is_refused(lake: Lake, warehouse: Warehouse) -> None:
    interval = day_interval(D0)
    balances = snapshot_history("main", D0, 1)
    write_partition(lake, "binance", "main", interval, {"snapshots/balances": [*balances, dict(balances[1])]})
    with pytest.raises(WarehouseError, match=r"binance/main \[2026-03-01.*nothing changed: .*(duplicate key|twice)"):
        warehouse.load_partition(lake, "binance", "main", interval)
    assert tables(warehouse)["balance_snapshots"] == []


def test_files_in_other_types_that_convert_exactly_load_the_same(lake: Lake, warehouse: Warehouse) -> None:
    """Files whose types differ from the table's (another writer) take the Arrow path, which casts exactly."""
    venue, account, interval = "pacifica", "acct-t", day_interval(D0)
    stored = write_partition(lake, venue, account, interval, ledger_history(venue, account, D0, days=1, per_day=8))
    (f,) = lake.read_manifest(venue, account, interval).files  # type: ignore[union-attr]
    rows = pq.read_table(io.BytesIO(lake.get_bytes(f.key)))
    other = pa.schema(
        [
            pa.field(
                c.name, pa.large_string() if c.type == pa.string() else pa.int32() if c.name == "entry_seq" else c.type
            )
            for c in rows.schema
        ]
    )
    buffer = io.BytesIO()
    pq.write_table(rows.cast(other), buffer)
    written = lake.put_bytes(f.key, buffer.getvalue())
    file = ManifestFile(key=f.key, dataset="ledger", rows=f.rows, bytes=written.bytes, sha256=written.sha256)
    lake.write_manifest(Manifest.build(venue, account, interval, [file]))
    mark_validated(lake, venue, account, interval)

    warehouse.load_partition(lake, venue, account, interval)
    assert comparable(tables(warehouse)["ledger_entries"]) == comparable(stored)


def test_a_duckdb_file_with_the_old_primary_keys_is_rebuilt_without_them(lake: Lake, tmp_path: Any) -> None:
    """Files created while tables.sql declared the data tables' primary keys: the first open rebuilds those
    tables without them (DuckDB cannot drop one), rows and views kept; loads then replace rows as usual."""
    path = str(tmp_path / "old.duckdb")
    settings = WarehouseSettings(kind="duckdb", path=path)
    venue, account, interval = "coinbase", "acct-o", day_interval(D0)
    stored = write_partition(lake, venue, account, interval, ledger_history(venue, account, D0, days=1, per_day=10))
    scripts = schema_scripts("duckdb")
    keys = {t.name: t.key for t in TABLES}
    con = duckdb.connect(path)
    for statement in scripts.tables:  # the tables as the earlier tables.sql made them
        created = re.match(r"CREATE TABLE IF NOT EXISTS (\w+)", statement)
        if created and created[1] in keys:
            statement = re.sub(r"\)\s*$", f", PRIMARY KEY ({', '.join(keys[created[1]])}))", statement)
        con.execute(statement)
    for statement in scripts.views:
        con.execute(statement)
    con.execute("INSERT INTO ledgerlake_schema VALUES ('views', ?)", [scripts.views_sha256])
    ledger = DATASETS["ledger"][0]
    con.register("old_rows", pa.Table.from_pylist(stored, schema=ledger))
    con.execute(f"INSERT INTO ledger_entries ({', '.join(ledger.names)}) SELECT * FROM old_rows")
    assert (
        con.execute("SELECT COUNT(*) FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY'").fetchall()[0][0]
        == len(keys) + 2
    )  # and loads, ledgerlake_schema
    con.close()

    with open_warehouse(settings) as wh:
        keyed = wh.query("SELECT table_name FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY'")
        assert sorted(keyed.column("table_name").to_pylist()) == ["ledgerlake_schema", "loads"]
        assert comparable(tables(wh)["ledger_entries"]) == comparable(stored)
        assert wh.query("SELECT SUM(entries) AS n FROM ledger_days").to_pylist() == [{"n": 10}]
        summary = wh.load_partition(lake, venue, account, interval)
        assert summary.deleted == summary.inserted == {"ledger_entries": 10}
        assert comparable(tables(wh)["ledger_entries"]) == comparable(stored)
    with open_warehouse(settings) as wh:  # rebuilt once: the next open finds nothing to do
        assert comparable(tables(wh)["ledger_entries"]) == comparable(stored)


def test_overlapping_loads_in_one_process_take_turns(
    lake: Lake, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connections of one process share a DuckDB file. With no primary key to refuse a second copy of a key,
    a load beside another one of the same rows must wait for it, else each would check its keys against a
    snapshot without the other's rows and both would commit."""
    settings = WarehouseSettings(kind="duckdb", path=str(tmp_path / "shared.duckdb"))
    history = ledger_history("exchangehubx", "acct-t", D0, days=2, per_day=10)
    wide, day = day_interval(D0, days=2), day_interval(D0 + timedelta(days=1))
    for interval in (wide, day):
        write_partition(lake, "exchangehubx", "acct-t", interval, in_interval(history, interval))
    with open_warehouse(settings) as first, open_warehouse(settings) as second, ThreadPoolExecutor(2) as pool:
        inserted, resume = threading.Event(), threading.Event()
        write = first._insert_file  # type: ignore[attr-defined]

        def pausing(*args: Any) -> int:
            written: int = write(*args)
            inserted.set()
            resume.wait(60)
            return written

        monkeypatch.setattr(first, "_insert_file", pausing)
        wide_load = pool.submit(first.load_partition, lake, "exchangehubx", "acct-t", wide)
        try:
            assert inserted.wait(60)
            day_load = pool.submit(second.load_partition, lake, "exchangehubx", "acct-t", day)
            with pytest.raises(TimeoutError):
                day_load.result(timeout=1.0)  # waits for the wide load's transaction
        finally:
            resume.set()
        wide_load.result(timeout=60)
        day_load.result(timeout=60)
        held = second.query("SELECT COUNT(*) AS n, COUNT(DISTINCT entry_id) AS ids FROM ledger_entries")
        assert held.to_pylist() == [{"n": 20, "ids": 20}]
