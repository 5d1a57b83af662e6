"""`ledgerlake query` and `ledgerlake report` as a user runs them: separate processes, real warehouses."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from warehouse_lakedata import day_interval, in_interval, ledger_history, set_amount, snapshot_history, write_partition

from ledgerlake.lake import Lake
from ledgerlake.warehouse import Warehouse, WarehouseSettings, open_warehouse

D0 = datetime(2026, 5, 1, tzinfo=UTC)


def target(settings: WarehouseSettings) -> str:
    return str(settings.path if settings.kind == "duckdb" else settings.dsn)


def ledgerlake(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ledgerlake.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def filled(lake: Lake, warehouse_settings: WarehouseSettings) -> list[dict[str, Any]]:
    """Loaded, and the connection closed: a DuckDB file open for writing locks other processes out."""
    with open_warehouse(warehouse_settings) as warehouse:
        return fill(lake, warehouse)


def fill(lake: Lake, warehouse: Warehouse) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    history = ledger_history("exchangehubx", "main", D0, 2, 20, assets=("USDT", "BTC"))
    set_amount(history, 3, Decimal("0.000000000000000001"))
    for d in range(2):
        interval = day_interval(D0 + timedelta(days=d))
        rows += write_partition(lake, "exchangehubx", "main", interval, in_interval(history, interval))
        warehouse.load_partition(lake, "exchangehubx", "main", interval)
        snaps = in_interval(snapshot_history("spot", D0, 2), interval, "snapshot_at")
        write_partition(lake, "binance", "spot", interval, {"snapshots/balances": snaps})
        warehouse.load_partition(lake, "binance", "spot", interval)
    return rows


def test_query_prints_a_readable_table(warehouse_settings: WarehouseSettings, filled: list[dict[str, Any]]) -> None:
    tiny = next(r for r in filled if r["amount"] == Decimal("1E-18"))
    result = ledgerlake(
        "query",
        f"SELECT entry_id, asset, amount, occurred_at FROM ledger_entries WHERE entry_id = '{tiny['entry_id']}'",
        "--warehouse",
        target(warehouse_settings),
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["entry_id", "asset", "amount", "occurred_at"]
    assert set(lines[1]) <= {"─", " "}
    assert "0.000000000000000001" in lines[2], "exact, without exponent"
    assert tiny["occurred_at"].strftime("%Y-%m-%d %H:%M:%S") in lines[2] and lines[2].rstrip().endswith("Z")
    assert lines[-1] == "(1 row)"


def test_query_limits_the_terminal_but_not_the_files(
    warehouse_settings: WarehouseSettings, filled: list[dict[str, Any]], tmp_path: Path
) -> None:
    sql = "SELECT entry_id, amount, balance_after, occurred_at FROM ledger_entries ORDER BY entry_id"
    shown = ledgerlake("query", sql, "--limit", "5", "--warehouse", target(warehouse_settings))
    assert shown.returncode == 0, shown.stderr
    assert "(5 of 40 rows shown" in shown.stdout

    out_csv, out_parquet = tmp_path / "rows.csv", tmp_path / "rows.parquet"
    files = ledgerlake(
        "query", sql, "--csv", str(out_csv), "--parquet", str(out_parquet), "--warehouse", target(warehouse_settings)
    )
    assert files.returncode == 0, files.stderr
    expected = sorted(filled, key=lambda r: r["entry_id"])
    with out_csv.open() as f:
        got = list(csv.DictReader(f))
    assert [(r["entry_id"], Decimal(r["amount"]), Decimal(r["balance_after"])) for r in got] == [
        (r["entry_id"], r["amount"], r["balance_after"]) for r in expected
    ]
    assert all("E" not in r["amount"] for r in got)
    parquet = pq.read_table(out_parquet).to_pylist()
    assert [(r["entry_id"], r["amount"], r["occurred_at"]) for r in parquet] == [
        (r["entry_id"], r["amount"], r["occurred_at"]) for r in expected
    ]


def test_query_errors_are_one_clear_line(
    warehouse_settings: WarehouseSettings, filled: list[dict[str, Any]], tmp_path: Path
) -> None:
    for sql, pattern in [
        ("SELEC 1", r"syntax error"),
        ("SELECT * FROM no_such_table", r"no_such_table"),
        ("DELETE FROM ledger_entries", r"read.only"),
    ]:
        result = ledgerlake("query", sql, "--warehouse", target(warehouse_settings))
        assert result.returncode == 1
        assert result.stderr.startswith("ledgerlake query: the query failed:")
        assert re.search(pattern, result.stderr, re.IGNORECASE), result.stderr
        assert "Traceback" not in result.stderr
    count = ledgerlake("query", "SELECT COUNT(*) AS n FROM ledger_entries", "--warehouse", target(warehouse_settings))
    assert count.stdout.splitlines()[2].strip() == "40", "the DELETE changed nothing"

    missing = ledgerlake("query", "SELECT 1", "--warehouse", str(tmp_path / "nowhere.duckdb"))
    assert missing.returncode == 1 and "does not exist yet" in missing.stderr and "Traceback" not in missing.stderr


def test_query_reads_the_warehouse_from_the_environment(
    warehouse_settings: WarehouseSettings, filled: list[dict[str, Any]], tmp_path: Path
) -> None:
    sql_file = tmp_path / "q.sql"
    sql_file.write_text("SELECT COUNT(*) AS entries FROM ledger_entries")
    result = ledgerlake("query", "-f", str(sql_file), env={"LEDGERLAKE_WAREHOUSE": target(warehouse_settings)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[2].strip() == "40"


def test_report_is_one_self_contained_page(
    warehouse_settings: WarehouseSettings, filled: list[dict[str, Any]], tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    result = ledgerlake("report", "--out", str(out), "--warehouse", target(warehouse_settings))
    assert result.returncode == 0, result.stderr
    html = out.read_text()
    assert html.startswith("<!doctype html>") and html.rstrip().endswith("</html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?https?:|<script|@import""", html, re.I)
    assert html.count("<svg") >= 5  # status grid, 3 balance charts (BTC, USDT, binance...), flow charts
    for text in ("Reconciliation", "Daily balances", "Flows by type", "exchangehubx", "binance", "report only"):
        assert text in html
    assert "all 4 checked account-days reconcile" in html  # 2 days x 2 assets of exchangehubx
    # the figures behind the charts are exact
    closing = max((r for r in filled if r["asset"] == "BTC"), key=lambda r: (r["occurred_at"], r["entry_seq"]))
    whole, _, frac = format(closing["balance_after"], "f").partition(".")
    assert f"{int(whole):,}.{frac.rstrip('0')}" in html

    empty = ledgerlake("report", "--out", str(out), "--warehouse", str(tmp_path / "none.duckdb"))
    assert empty.returncode == 1 and "does not exist yet" in empty.stderr
