"""The warehouse's SQL lives in include/sql/: shared files both backends run, plus per-backend files."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from ledgerlake.config import INCLUDE_DIR

SQL_DIR = INCLUDE_DIR / "sql"

# Dependency order; dropped in reverse when the definitions change.
VIEWS = ("ledger_days", "daily_balances", "daily_flows", "fees_and_funding", "reconciliation")


@dataclass(frozen=True)
class SchemaScripts:
    tables: list[str]  # idempotent CREATE ... IF NOT EXISTS statements
    views: list[str]  # CREATE VIEW statements, in dependency order
    views_sha256: str  # of the view text, to rebuild views only when it changed


def split_statements(text: str) -> list[str]:
    """Statements of one file: separated by a semicolon at the end of a line; `--` comment lines dropped."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    parts = re.split(r";[ \t]*(?:\n|$)", "\n".join(lines))
    return [p.strip() for p in parts if p.strip()]


def schema_scripts(kind: str, sql_dir: Path = SQL_DIR) -> SchemaScripts:
    tables = split_statements((sql_dir / "tables.sql").read_text())
    for extra in sorted((sql_dir / kind).glob("*.sql")) if (sql_dir / kind).is_dir() else []:
        tables += split_statements(extra.read_text())
    view_text = (sql_dir / "views.sql").read_text()
    views = split_statements(view_text)
    return SchemaScripts(tables=tables, views=views, views_sha256=hashlib.sha256(view_text.encode()).hexdigest())
