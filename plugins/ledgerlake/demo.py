"""`ledgerlake demo` (`make demo`): the whole pipeline on this machine, on real Airflow.

Starts the venue sandbox and a local S3 endpoint, runs Airflow (SQLite metadata database, LocalExecutor:
api-server, scheduler and dag-processor as child processes), backfills all five DAGs over the last days
through Airflow's REST API (as the UI's Backfill form does), shows progress, and ends with a summary: rows
per venue and account, the quality checks, the reconciliation with the venues' reported balances, and
where everything is. Everything it started is stopped at the end, on Ctrl-C and on failure.

What stays in .demo/ afterwards: warehouse.duckdb (what `ledgerlake query` reads by default), lake/ (the
bucket's objects: moto keeps them in memory only, so they are copied out at the end), data_docs/ (Great
Expectations' Data Docs), airflow/ (AIRFLOW_HOME: SQLite database and every task's log).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from ledgerlake.config import PROJECT_ROOT
from ledgerlake.warehouse.settings import DEFAULT_DUCKDB_PATH

DEFAULT_DIR = PROJECT_ROOT / ".demo"
QUERY_EXAMPLE = "SELECT venue, account, asset, day, status, difference FROM reconciliation ORDER BY 1, 2, 3, 4"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--days", type=int, default=3, help="whole UTC days to backfill, ending today (default 3)")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="where the demo keeps its files (.demo/)")
    parser.add_argument("--accounts-per-venue", type=int, default=2, help="sandbox accounts per venue (2)")
    parser.add_argument("--entries-per-day", type=int, default=500, help="ledger entries per account and day (500)")
    parser.add_argument(
        "--rate-limits",
        default="fast",
        choices=("fast", "documented", "off"),
        help="sandbox rate limits: 'fast' (small budgets, one-second windows: the limiter works, the demo "
        "stays short), 'documented' (the venues' published limits: Binance alone then takes minutes), 'off'",
    )
    parser.add_argument("--faults", default="none", choices=("none", "flaky"), help="sandbox fault injection")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds to wait for the backfills (1200)")
    parser.add_argument("--seed", type=int, default=7, help="sandbox seed (same seed, same ledgers)")


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, _raise_interrupt)
    demo = Demo(args)
    try:
        return demo.run()
    except KeyboardInterrupt:
        print("\ninterrupted: stopping everything the demo started ...", flush=True)
        return 130
    except Exception as exc:  # Airflow or a service failed: say what, show the logs that explain it
        print(f"\nledgerlake demo failed: {exc}", file=sys.stderr, flush=True)
        if demo.stack is not None:
            print(demo.stack.diagnostics(), file=sys.stderr, flush=True)
        return 1
    finally:
        demo.stop()


@dataclass
class Paths:
    root: Path

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def data_docs(self) -> Path:
        return self.root / "data_docs"

    @property
    def airflow(self) -> Path:
        return self.root / "airflow"

    def reset(self) -> None:
        """A fresh start: a new Airflow database means the backfill runs every interval again."""
        self.root.mkdir(parents=True, exist_ok=True)
        for path in (self.lake, self.data_docs, self.airflow):
            shutil.rmtree(path, ignore_errors=True)
        for path in (self.warehouse, self.warehouse.with_suffix(".duckdb.wal")):
            path.unlink(missing_ok=True)


@dataclass
class Demo:
    args: argparse.Namespace
    stack: Any = None
    started: float = field(default_factory=time.monotonic)

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:5.0f}s] {text}", flush=True)

    def run(self) -> int:
        from ledgerlake.local.stack import LocalStack, StackOptions
        from ledgerlake.sandbox import SandboxOptions

        a = self.args
        paths = Paths(Path(a.dir).resolve())
        paths.reset()
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        start, end = today - timedelta(days=a.days), today
        print(
            f"ledgerlake demo: five venues, {a.accounts_per_venue} accounts each, {a.days} days "
            f"({start:%Y-%m-%d} to {end - timedelta(days=1):%Y-%m-%d}), on real Airflow; files in {paths.root}",
            flush=True,
        )
        self.stack = LocalStack(
            StackOptions(
                home=paths.airflow,
                sandbox=SandboxOptions(
                    seed=a.seed,
                    accounts_per_venue=a.accounts_per_venue,
                    days=max(a.days + 1, 3),
                    entries_per_day=a.entries_per_day,
                    rate_limits=a.rate_limits,
                    faults=a.faults,
                ),
                warehouse=str(paths.warehouse),
                env={"LEDGERLAKE_DATA_DOCS_DIR": str(paths.data_docs)},
            )
        )
        self.stack.start(on_step=self.say)
        self.say("creating one backfill per DAG through Airflow's REST API")
        backfills = self.stack.backfill(start, end)
        progress = ProgressView(self.started)
        try:
            result = self.stack.wait(backfills, timeout=a.timeout, on_progress=progress.show)
        finally:
            progress.close()
        self.say("all runs finished; copying the lake out of the local S3 server")
        objects = _export_lake(self.stack, paths)
        summary = Summary.collect(self.stack, paths, start, end, result, objects, expected_runs=a.days)
        print(summary.render(), flush=True)
        if not summary.runs_ok:
            print(self.stack.client.failed_task_logs(sorted(self.stack.dag_ids), max_logs=3), flush=True)
        return 0 if summary.all_green else 1

    def stop(self) -> None:
        if self.stack is not None:
            self.say("stopping Airflow, the sandbox and the local S3 server")
            self.stack.stop()
            self.stack = None


def _export_lake(stack: Any, paths: Paths) -> int:
    from ledgerlake.local.services import export_bucket

    return export_bucket(stack.s3.settings, paths.lake)


class ProgressView:
    """One line per DAG: intervals done of total, the intervals running now, failures. Redrawn in place on
    a terminal; on a pipe or in CI, a line is printed whenever something changed."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.tty = sys.stdout.isatty()
        self.drawn = 0
        self.last: list[str] = []

    def show(self, progress: list[Any]) -> None:
        lines = []
        for p in sorted(progress, key=lambda p: p.dag_id):
            bar_width = 20
            filled = int(bar_width * p.finished / p.total) if p.total else 0
            bar = "#" * filled + "." * (bar_width - filled)
            tasks = f"  tasks {p.tasks_done}/{p.tasks_total}" if p.tasks_total else ""
            running = f"  now: {', '.join(p.running)}" if p.running else ""
            failed = f"  FAILED {p.failed}" if p.failed else ""
            lines.append(f"  {p.dag_id:<20} [{bar}] {p.finished}/{p.total} days{tasks}{failed}{running}")
        if lines == self.last:
            return
        self.last = lines
        elapsed = f"  ({time.monotonic() - self.started:.0f}s)"
        if self.tty:
            if self.drawn:
                sys.stdout.write(f"\x1b[{self.drawn}F")
            sys.stdout.write("".join(f"\x1b[2K{line}\n" for line in [*lines, elapsed]))
            self.drawn = len(lines) + 1
        else:
            sys.stdout.write("\n".join(lines) + f"\n{elapsed}\n")
        sys.stdout.flush()

    def close(self) -> None:
        self.drawn = 0


@dataclass
class Summary:
    paths: Paths
    start: datetime
    end: datetime
    runs: list[Any]
    rows: list[tuple[str, str, str, int]]  # venue, account, table, rows
    checks: list[tuple[str, str, str, bool, str]]  # venue, account, interval, passed, summary
    reconciliation: dict[str, int]  # status -> days
    mismatches: list[tuple[Any, ...]]
    lake_objects: int
    expected_runs: int  # per DAG: one per day

    @classmethod
    def collect(
        cls,
        stack: Any,
        paths: Paths,
        start: datetime,
        end: datetime,
        runs: list[Any],
        objects: int,
        expected_runs: int,
    ) -> Summary:
        from ledgerlake.interval import Interval
        from ledgerlake.lake import Lake, read_validation
        from ledgerlake.warehouse import WarehouseSettings, open_warehouse

        lake = Lake(stack.s3.settings)
        checks = []
        config = stack.sandbox.accounts_config()["venues"]
        for venue, spec in config.items():
            for acc in spec["accounts"]:
                for day in Interval(start, end).days():
                    record = read_validation(lake, venue, acc["account"], day)
                    passed = bool(record and record.passed)
                    text = record.summary if record else "no validation record (not validated)"
                    checks.append((venue, acc["account"], f"{day.start:%Y-%m-%d}", passed, text))
        rows: list[tuple[str, str, str, int]] = []
        reconciliation: dict[str, int] = {}
        mismatches: list[tuple[Any, ...]] = []
        if paths.warehouse.exists():
            with open_warehouse(WarehouseSettings(kind="duckdb", path=str(paths.warehouse)), read_only=True) as wh:
                for table in ("ledger_entries", "balance_snapshots", "position_snapshots"):
                    result = wh.query(
                        f"SELECT venue, account, COUNT(*) AS n FROM {table} GROUP BY venue, account ORDER BY 1, 2"
                    )
                    rows += [(r["venue"], r["account"], table, int(r["n"])) for r in result.to_pylist()]
                for r in wh.query("SELECT status, COUNT(*) AS n FROM reconciliation GROUP BY status").to_pylist():
                    reconciliation[str(r["status"])] = int(r["n"])
                mismatches = [
                    tuple(r.values())
                    for r in wh.query(
                        "SELECT venue, account, asset, day, difference, entry_breaks FROM reconciliation "
                        "WHERE status = 'mismatch' ORDER BY 1, 2, 3, 4 LIMIT 10"
                    ).to_pylist()
                ]
        return cls(paths, start, end, runs, rows, checks, reconciliation, mismatches, objects, expected_runs)

    @property
    def runs_ok(self) -> bool:
        return all(p.done and p.failed == 0 and p.total == self.expected_runs for p in self.runs)

    @property
    def checks_ok(self) -> bool:
        return bool(self.checks) and all(c[3] for c in self.checks)

    @property
    def reconciles(self) -> bool:
        return bool(self.reconciliation) and self.reconciliation.get("mismatch", 0) == 0

    @property
    def all_green(self) -> bool:
        return self.runs_ok and self.checks_ok and self.reconciles

    def query_command(self) -> str:
        command = f'{_ledgerlake_command()} query "{QUERY_EXAMPLE}"'
        if self.paths.warehouse.resolve() != DEFAULT_DUCKDB_PATH.resolve():
            command += f" --warehouse {self.paths.warehouse}"  # elsewhere than where query looks by default
        return command

    def render(self) -> str:
        def mark(ok: bool) -> str:
            return "OK  " if ok else "FAIL"

        out = ["", "=" * 78, f"ledgerlake demo: {self.start:%Y-%m-%d} to {self.end - timedelta(days=1):%Y-%m-%d}"]
        out.append("=" * 78)
        total_runs = sum(p.total for p in self.runs)
        ok_runs = sum(p.states.get("success", 0) for p in self.runs)
        out.append(f"[{mark(self.runs_ok)}] Airflow runs: {ok_runs} of {total_runs} succeeded")
        for p in self.runs:
            if p.failed or not p.done or p.total != self.expected_runs:
                out.append(f"         {p.dag_id}: {p.states} ({p.total} runs, {self.expected_runs} expected)")
        passed = sum(1 for c in self.checks if c[3])
        out.append(f"[{mark(self.checks_ok)}] quality checks: {passed} of {len(self.checks)} partitions passed")
        for venue, account, day, ok, text in self.checks:
            if not ok:
                out.append(f"         {venue} {account} {day}: {text[:200]}")
        recon = ", ".join(f"{n} {status}" for status, n in sorted(self.reconciliation.items())) or "no rows"
        out.append(f"[{mark(self.reconciles)}] reconciliation with reported balances (days): {recon}")
        for m in self.mismatches:
            out.append(f"         mismatch: {m}")
        out.append("")
        out.append("rows in the warehouse:")
        out.append(f"  {'venue':<14} {'account':<44} {'table':<20} {'rows':>8}")
        for venue, account, table, n in self.rows:
            out.append(f"  {venue:<14} {account[:44]:<44} {table:<20} {n:>8}")
        total = sum(r[3] for r in self.rows)
        out.append(f"  {'total':<14} {'':<44} {'':<20} {total:>8}")
        out.append("")
        docs = self.paths.data_docs / "index.html"
        out += [
            f"warehouse   {self.paths.warehouse}",
            f"lake        {self.paths.lake}/  ({self.lake_objects} objects copied from the demo's S3 bucket)",
            f"Data Docs   {docs if docs.exists() else self.paths.lake / 'data_docs'}",
            f"Airflow     {self.paths.airflow}/  (task logs in logs/; `make airflow` shows the UI)",
            "",
            "query it:",
            f"  {self.query_command()}",
            "",
            "all green: every run succeeded, every check passed, the ledgers reconcile"
            if self.all_green
            else "NOT all green: see the lines marked FAIL above",
        ]
        return "\n".join(out)


def _ledgerlake_command() -> str:
    venv_bin = PROJECT_ROOT / ".venv" / "bin" / "ledgerlake"
    if not venv_bin.exists():
        return "ledgerlake"
    return ".venv/bin/ledgerlake" if Path.cwd().resolve() == PROJECT_ROOT else str(venv_bin)
