"""The embedded warehouse: one DuckDB file. Arrow tables go in by reference (no copy through Python rows)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from ledgerlake.warehouse.base import Table, Warehouse, WarehouseError
from ledgerlake.warehouse.settings import WarehouseSettings

# DuckDB lets one process at a time open a file for writing (and readers in other processes only while
# no process writes): parallel Airflow loads wait their turn; an analyst's query waits less.
LOCK_WAIT_SECONDS = 300.0
READ_LOCK_WAIT_SECONDS = 30.0


class DuckDBWarehouse(Warehouse):
    def __init__(self, settings: WarehouseSettings, read_only: bool = False, lock_wait: float | None = None):
        super().__init__(settings)
        path = Path(settings.path or "")
        if read_only and not path.exists():
            raise WarehouseError(f"warehouse {settings.describe()} does not exist yet (nothing loaded?)")
        path.parent.mkdir(parents=True, exist_ok=True)
        wait = lock_wait if lock_wait is not None else READ_LOCK_WAIT_SECONDS if read_only else LOCK_WAIT_SECONDS
        self._con = self._connect(path, read_only, wait)
        self._con.execute("SET TimeZone = 'UTC'")

    def _connect(self, path: Path, read_only: bool, lock_wait: float) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + lock_wait
        delay = 0.1
        while True:
            try:
                return duckdb.connect(str(path), read_only=read_only)
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise WarehouseError(f"cannot open warehouse {self.settings.describe()}: {exc}") from None
                if time.monotonic() > deadline:
                    raise WarehouseError(
                        f"warehouse {self.settings.describe()} stayed locked by another process for {lock_wait:.0f}s "
                        f"(a load running?): {' '.join(str(exc).split())}"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        result = self._con.execute(sql, list(params) if params else None)
        row = result.fetchone() if result.description else None
        # DuckDB answers DML with one row holding the count of changed rows.
        if row is not None and result.description and result.description[0][0] == "Count":
            return int(row[0])
        if row is not None:
            result.fetchall()
        return -1

    def _query(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        relation = self._con.sql(sql, params=list(params) if params else None)
        if relation is None:  # a statement that returns nothing
            return pa.table({})
        return relation.to_arrow_table()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._con.begin()
        try:
            yield
        except BaseException:
            self._con.rollback()
            raise
        self._con.commit()

    def _insert_arrow(self, table: Table, rows: pa.Table) -> None:
        self._con.register("ledgerlake_incoming", rows)
        try:
            columns = ", ".join(table.columns)
            self._con.execute(f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM ledgerlake_incoming")
        finally:
            self._con.unregister("ledgerlake_incoming")

    def close(self) -> None:
        self._con.close()
