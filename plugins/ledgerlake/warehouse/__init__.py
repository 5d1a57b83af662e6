"""The warehouse: idempotent loads of validated lake partitions, and the analyst views.

Plain Python (no Airflow). `open_warehouse(settings)` gives a `Warehouse` over DuckDB (a file, the embedded
default) or PostgreSQL (a server); both run the same SQL in include/sql/.
"""

from __future__ import annotations

from ledgerlake.warehouse.base import TABLES, LoadRefused, LoadSummary, Warehouse, WarehouseError
from ledgerlake.warehouse.settings import DEFAULT_DUCKDB_PATH, WAREHOUSE_ENV, WarehouseSettings

__all__ = [
    "DEFAULT_DUCKDB_PATH",
    "TABLES",
    "WAREHOUSE_ENV",
    "LoadRefused",
    "LoadSummary",
    "Warehouse",
    "WarehouseError",
    "WarehouseSettings",
    "open_warehouse",
]


def open_warehouse(settings: WarehouseSettings | None = None, *, read_only: bool = False) -> Warehouse:
    """Connect (settings default to $LEDGERLAKE_WAREHOUSE or the demo's DuckDB file). Unless read_only, the
    tables and views are created or brought up to date first. read_only never writes: for analysts."""
    settings = settings or WarehouseSettings.default()
    warehouse: Warehouse
    if settings.kind == "duckdb":
        from ledgerlake.warehouse.duckdb_backend import DuckDBWarehouse

        warehouse = DuckDBWarehouse(settings, read_only=read_only)
    else:
        from ledgerlake.warehouse.postgres_backend import PostgresWarehouse

        warehouse = PostgresWarehouse(settings, read_only=read_only)
    if not read_only:
        try:
            warehouse.ensure_schema()
        except BaseException:
            warehouse.close()
            raise
    return warehouse
