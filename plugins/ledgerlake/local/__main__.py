"""`python -m ledgerlake.local airflow` (`make airflow`): Airflow with its UI, the venue sandbox and a local
S3 endpoint, connections and pools in place, until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from ledgerlake.config import PROJECT_ROOT


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ledgerlake.local", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("airflow", help="run Airflow (UI, scheduler, dag-processor, triggerer) on the local stack")
    p.add_argument("--home", type=Path, default=PROJECT_ROOT / ".airflow", help="AIRFLOW_HOME (default .airflow/)")
    p.add_argument("--port", type=int, default=8080, help="UI and API port (default 8080)")
    p.add_argument("--s3-port", type=int, default=0, help="local S3 port (default: a free one)")
    p.add_argument(
        "--warehouse",
        default=str(PROJECT_ROOT / ".demo" / "warehouse.duckdb"),
        help="DuckDB file or postgresql:// DSN (default .demo/warehouse.duckdb, where `ledgerlake query` looks)",
    )
    p.add_argument("--database", help="Airflow metadata database URL (default: SQLite in --home)")
    p.add_argument("--accounts-per-venue", type=int, default=2)
    p.add_argument("--days", type=int, default=30, help="days of history the sandbox serves (default 30)")
    p.add_argument("--entries-per-day", type=int, default=500)
    p.add_argument(
        "--rate-limits",
        default="fast",
        choices=("fast", "documented", "off"),
        help="sandbox rate limits (the venues' connections follow them): 'fast' (default: small budgets in "
        "one-second windows), 'documented' (published limits: Binance then takes a minute per account and day)",
    )
    p.add_argument("--faults", default="none", choices=("none", "flaky"), help="sandbox fault injection")
    args = parser.parse_args(argv)
    return run_airflow(args)


def run_airflow(args: argparse.Namespace) -> int:
    from ledgerlake.local.stack import LocalStack, StackOptions
    from ledgerlake.sandbox import SandboxOptions

    Path(args.warehouse).parent.mkdir(parents=True, exist_ok=True) if "://" not in args.warehouse else None
    options = StackOptions(
        home=args.home,
        sandbox=SandboxOptions(
            accounts_per_venue=args.accounts_per_venue,
            days=args.days,
            entries_per_day=args.entries_per_day,
            rate_limits=args.rate_limits,
            faults=args.faults,
        ),
        warehouse=args.warehouse,
        database=args.database,
        api_port=args.port,
        s3_port=args.s3_port,
        # Like any Airflow: DAGs start paused and, once unpaused, run on their schedule.
        scheduled_runs=True,
        paused_at_creation=True,
    )
    signal.signal(signal.SIGTERM, _raise_interrupt)
    stack = LocalStack(options)
    try:
        stack.start(
            ("api-server", "scheduler", "dag-processor", "triggerer"),
            on_step=lambda text: print(f"... {text}", flush=True),
        )
        assert stack.airflow is not None
        setup = stack.airflow.setup
        print(
            f"""
Airflow is up: {setup.api_url}
  login:      admin / {stack.airflow.password}   (kept in {setup.home}/simple_auth_manager_passwords.json.generated)
  DAGs:       {", ".join(sorted(stack.dag_ids))}
  local S3:   {stack.s3.endpoint_url}  bucket {stack.s3.bucket} (in memory: gone when this stops)
  warehouse:  {args.warehouse}
  sandbox:    {", ".join(f"{v} {stack.sandbox.base_url(v)}" for v in stack.sandbox.accounts_config()["venues"])}
  logs:       {setup.logs_folder}

Start a backfill: open a DAG, Trigger -> Backfill, pick a range within the last {args.days} days.
Query the warehouse afterwards: ledgerlake query "SELECT * FROM reconciliation LIMIT 20"
Ctrl-C stops Airflow, the sandbox and S3.""",
            flush=True,
        )
        while True:
            stack.airflow.check_alive()
            time.sleep(2)
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
        return 0
    except Exception as exc:
        print(f"ledgerlake.local: {exc}", file=sys.stderr)
        return 1
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
