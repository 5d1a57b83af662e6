"""Where the warehouse lives: a DuckDB file (the embedded default) or a PostgreSQL server."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ledgerlake.config import PROJECT_ROOT

WAREHOUSE_ENV = "LEDGERLAKE_WAREHOUSE"
# Beside the demo's lake and Airflow home, so `make demo` and `ledgerlake query` meet without configuration.
DEFAULT_DUCKDB_PATH = PROJECT_ROOT / ".demo" / "warehouse.duckdb"

WarehouseKind = Literal["duckdb", "postgres"]


@dataclass(frozen=True)
class WarehouseSettings:
    kind: WarehouseKind
    path: str | None = None  # duckdb: the database file
    dsn: str | None = field(default=None, repr=False)  # postgres: libpq URI or key=value string; may hold a password

    def __post_init__(self) -> None:
        if self.kind == "duckdb" and not self.path:
            raise ValueError("a DuckDB warehouse needs a file path")
        if self.kind == "postgres" and not self.dsn:
            raise ValueError("a PostgreSQL warehouse needs a DSN")
        if self.kind not in ("duckdb", "postgres"):
            raise ValueError(f"unknown warehouse kind {self.kind!r}: use duckdb or postgres")

    @classmethod
    def parse(cls, target: str) -> WarehouseSettings:
        """A postgres DSN (`postgresql://...`, `postgres://...` or `host=... dbname=...`) or a DuckDB file path."""
        target = target.strip()
        if target.startswith(("postgresql://", "postgres://")) or re.match(r"^\w+=", target):
            return cls(kind="postgres", dsn=target)
        return cls(kind="duckdb", path=str(Path(target).expanduser()))

    @classmethod
    def default(cls) -> WarehouseSettings:
        """$LEDGERLAKE_WAREHOUSE (a DSN or a path), else the demo's DuckDB file."""
        target = os.environ.get(WAREHOUSE_ENV, "").strip()
        return cls.parse(target) if target else cls(kind="duckdb", path=str(DEFAULT_DUCKDB_PATH))

    def describe(self) -> str:
        """A name for logs and errors: the path, or the DSN with any password masked."""
        if self.kind == "duckdb":
            return f"duckdb:{self.path}"
        return f"postgres:{mask_dsn(self.dsn or '')}"


def mask_dsn(dsn: str) -> str:
    dsn = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", dsn)
    return re.sub(r"(password\s*=\s*)('[^']*'|\S+)", r"\1***", dsn, flags=re.IGNORECASE)
