"""`ledgerlake demo` as a user runs it (small: one day, one account per venue): it ends all green with its
summary, leaves the warehouse, the lake copy and the Data Docs behind, and no process it started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _processes_mentioning(text: str) -> list[int]:
    """Processes whose environment mentions `text` (the demo's AIRFLOW_HOME is in every component's)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_demo_ends_all_green_and_stops_everything(tmp_path: Path) -> None:
    demo_dir = tmp_path / "demo"
    args = ["--days", "1", "--accounts-per-venue", "1", "--entries-per-day", "60", "--dir", str(demo_dir)]
    result = subprocess.run(
        [sys.executable, "-m", "ledgerlake.cli", "demo", *args],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    print(result.stdout[-6000:], result.stderr[-3000:])
    assert result.returncode == 0
    out = result.stdout
    assert "[OK  ] Airflow runs: 5 of 5 succeeded" in out
    assert "[OK  ] quality checks: 5 of 5 partitions passed" in out
    assert "[OK  ] reconciliation with reported balances" in out
    assert "all green" in out and "query it:" in out
    assert (demo_dir / "warehouse.duckdb").exists()
    assert any((demo_dir / "lake" / "manifests").rglob("*.json"))
    assert (demo_dir / "data_docs" / "index.html").exists()
    assert _processes_mentioning(str(demo_dir)) == []
    # The printed query command works after the demo ended.
    query = subprocess.run(
        [sys.executable, "-m", "ledgerlake.cli", "query", "SELECT COUNT(*) AS n FROM ledger_entries", "--warehouse",
         str(demo_dir / "warehouse.duckdb")],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert query.returncode == 0, query.stderr
    assert "240" in query.stdout  # 4 ledger venues x 1 account x 60 entries
