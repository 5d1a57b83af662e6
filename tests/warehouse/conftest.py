"""Every warehouse test runs twice: on a DuckDB file and on a fresh PostgreSQL database (pg_dsn)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ledgerlake.warehouse import Warehouse, WarehouseSettings, open_warehouse


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_settings(request: pytest.FixtureRequest, tmp_path: Path) -> WarehouseSettings:
    if request.param == "duckdb":
        return WarehouseSettings(kind="duckdb", path=str(tmp_path / "warehouse.duckdb"))
    return WarehouseSettings(kind="postgres", dsn=request.getfixturevalue("pg_dsn"))


@pytest.fixture
def warehouse(warehouse_settings: WarehouseSettings) -> Iterator[Warehouse]:
    with open_warehouse(warehouse_settings) as wh:
        yield wh
