"""`ledgerlake query "SQL"`: run SQL against the warehouse; a readable table, or CSV / Parquet files.

The warehouse is $LEDGERLAKE_WAREHOUSE (a DuckDB file path or a postgresql:// DSN), else the demo's DuckDB
file; --warehouse overrides both. Queries run read-only: analysts cannot change the warehouse by accident.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from ledgerlake.warehouse.settings import WAREHOUSE_ENV, WarehouseSettings

MAX_CELL = 48


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "examples:\n"
        "  ledgerlake query \"SELECT * FROM daily_balances WHERE asset = 'USDT' ORDER BY day\"\n"
        "  ledgerlake query -f include/sql/examples/fees_last_month.sql --csv fees.csv\n"
        "  ledgerlake query \"SELECT * FROM reconciliation WHERE status = 'mismatch'\" "
        "--warehouse postgresql://analyst@db/ledgerlake\n"
        "tables: ledger_entries, balance_snapshots, position_snapshots, loads\n"
        "views:  daily_balances, daily_flows, fees_and_funding, reconciliation, ledger_days"
    )
    parser.add_argument("sql", nargs="?", help="the query ('-' reads it from standard input)")
    parser.add_argument("-f", "--file", type=Path, help="read the query from this file instead")
    parser.add_argument(
        "--warehouse",
        help=f"a DuckDB file or a postgresql:// DSN (default: ${WAREHOUSE_ENV}, else .demo/warehouse.duckdb)",
    )
    parser.add_argument("--csv", type=Path, metavar="FILE", help="write every row to this CSV file")
    parser.add_argument("--parquet", type=Path, metavar="FILE", help="write every row to this Parquet file")
    parser.add_argument(
        "--limit", type=int, default=100, help="rows to show on the terminal (default 100; files get all)"
    )


def run(args: argparse.Namespace) -> int:
    from ledgerlake.warehouse import WarehouseError, open_warehouse

    sql = _read_sql(args)
    if sql is None:
        print("ledgerlake query: give a query, '-' for standard input, or --file FILE", file=sys.stderr)
        return 2
    try:
        settings = WarehouseSettings.parse(args.warehouse) if args.warehouse else WarehouseSettings.default()
        with open_warehouse(settings, read_only=True) as warehouse:
            result = warehouse.query(sql)
    except WarehouseError as exc:
        print(f"ledgerlake query: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # the database's own message says what is wrong with the SQL
        print(f"ledgerlake query: the query failed: {_message(exc)}", file=sys.stderr)
        return 1
    if args.csv:
        write_csv(result, args.csv)
        print(f"wrote {result.num_rows} rows to {args.csv}", file=sys.stderr)
    if args.parquet:
        import pyarrow.parquet as pq

        pq.write_table(result, args.parquet)
        print(f"wrote {result.num_rows} rows to {args.parquet}", file=sys.stderr)
    if not (args.csv or args.parquet):
        print(format_table(result, limit=args.limit))
    return 0


def _read_sql(args: argparse.Namespace) -> str | None:
    if args.file:
        return str(args.file.read_text())
    if args.sql == "-":
        return sys.stdin.read()
    return str(args.sql) if args.sql and args.sql.strip() else None


def _message(exc: BaseException) -> str:
    text = str(exc).strip()
    # DuckDB prefixes the error class ("Catalog Error: ..."), psycopg gives the server's lines.
    return text if text else type(exc).__name__


# Formatting -------------------------------------------------------------------------------------------


def plain(value: Any, full: bool = False) -> str:
    """A value as people read it: decimals without exponent (trailing zeros dropped unless full), UTC times."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        text = format(value, "f")
        if not full and "." in text:
            text = text.rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else text
    if isinstance(value, datetime):
        if value.tzinfo is not None and value.utcoffset() is not None and not value.utcoffset():
            text = value.replace(tzinfo=None).isoformat(sep=" ")
            return text + "Z"
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _is_number(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def format_table(table: pa.Table, limit: int = 100) -> str:
    """Columns aligned, numbers right-aligned on their decimal point, long text cut, a row count below."""
    names = table.column_names
    if not names:
        return "(no result)"
    shown = table.slice(0, max(limit, 0)).to_pylist()
    columns: list[list[str]] = []
    for name, field in zip(names, table.schema, strict=True):
        cells = [plain(row[name]) for row in shown]
        cells = _align_points(cells) if _is_number(field.type) else [_one_line(c) for c in cells]
        columns.append(cells)
    widths = [max([len(n)] + [len(c) for c in cells]) for n, cells in zip(names, columns, strict=True)]
    numeric = [_is_number(f.type) for f in table.schema]

    def line(cells: list[str]) -> str:
        parts = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric, strict=True)]
        return "  ".join(parts)

    out = [line(names), "  ".join("─" * w for w in widths)]
    out += [line([col[i] for col in columns]) for i in range(len(shown))]
    total = table.num_rows
    if total > len(shown):
        out.append(f"({len(shown)} of {total} rows shown; --csv FILE or --parquet FILE writes them all)")
    else:
        out.append(f"({total} row{'s' if total != 1 else ''})")
    terminal = shutil.get_terminal_size((200, 24)).columns
    if sys.stdout.isatty() and sum(widths) + 2 * len(widths) > terminal:
        out.append("(wider than the terminal: try `| less -S`)")
    return "\n".join(out)


def _one_line(text: str) -> str:
    text = text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", " ")
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def _align_points(cells: list[str]) -> list[str]:
    fractions = [len(c.split(".", 1)[1]) if "." in c else 0 for c in cells]
    most = max(fractions, default=0)
    aligned = []
    for cell, digits in zip(cells, fractions, strict=True):
        if not cell:
            aligned.append("")
        elif most and digits == 0:
            aligned.append(cell + " " * (most + 1))
        else:
            aligned.append(cell + " " * (most - digits))
    return aligned


def write_csv(table: pa.Table, path: Path) -> None:
    """Every row, decimals written in full (no exponent), times ISO 8601 in UTC."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(table.column_names)
        for batch in table.to_batches(max_chunksize=10_000):
            for row in batch.to_pylist():
                writer.writerow([plain(v, full=True) for v in row.values()])
