"""`ledgerlake sandbox`: run the venue sandbox until stopped, or print its ground truth as JSON lines.

ledgerlake sandbox [--json] [--seed 7] [--accounts 2] [--days 10] [--entries-per-day 500] [--faults none]
                   [--rate-limits documented] [--port-base 18000] [--host 127.0.0.1] [--now ISO]
ledgerlake sandbox truth --venue coinbase --account ID --start 2026-11-01 --end 2026-11-02 [same options]
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from datetime import datetime
from decimal import Decimal
from typing import Any

from ledgerlake.interval import Interval, parse_instant
from ledgerlake.sandbox.options import FAULT_PROFILES, RATE_LIMIT_PROFILES, SandboxOptions
from ledgerlake.sandbox.server import Sandbox


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=("serve", "truth"), default="serve", help="default: serve")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--accounts", type=int, default=2, help="accounts per venue")
    parser.add_argument("--days", type=int, default=10, help="whole UTC days of history before today")
    parser.add_argument("--entries-per-day", type=int, default=500, help="per ledger account and day")
    parser.add_argument("--faults", default="none", choices=sorted(FAULT_PROFILES))
    parser.add_argument("--rate-limits", default="documented", choices=sorted(RATE_LIMIT_PROFILES))
    parser.add_argument("--pacifica-paging", default="offset", choices=("offset", "cursor"))
    parser.add_argument("--now", help="ISO instant the sandbox treats as now (default: the wall clock)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port-base", type=int, help="fixed ports: exchangehubx, binance, pacifica, coinbase, sunx")
    parser.add_argument("--json", action="store_true", help="print one JSON object keyed by venue")
    parser.add_argument("--venue", help="truth: the venue")
    parser.add_argument("--account", help="truth: the account identifier")
    parser.add_argument("--start", help="truth: interval start (ISO, inclusive)")
    parser.add_argument("--end", help="truth: interval end (ISO, exclusive)")


def options_from(args: argparse.Namespace) -> SandboxOptions:
    return SandboxOptions(
        seed=args.seed,
        accounts_per_venue=args.accounts,
        days=args.days,
        entries_per_day=args.entries_per_day,
        faults=args.faults,
        rate_limits=args.rate_limits,
        now=parse_instant(args.now) if args.now else None,
        host=args.host,
        port_base=args.port_base,
        pacifica_paging=args.pacifica_paging,
    )


def run(args: argparse.Namespace) -> int:
    try:
        options = options_from(args)
    except ValueError as exc:
        print(f"ledgerlake sandbox: {exc}", file=sys.stderr)
        return 2
    if args.action == "truth":
        return _truth(args, options)
    return _serve(args, options)


def _serve(args: argparse.Namespace, options: SandboxOptions) -> int:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        sandbox = Sandbox(options).start()
    except RuntimeError as exc:
        print(f"ledgerlake sandbox: {exc}", file=sys.stderr)
        return 1
    try:
        described = describe(sandbox)
        if args.json:
            print(json.dumps(described), flush=True)
        else:
            print(f"ledgerlake sandbox (seed {options.seed}, faults {options.faults}, rate limits "
                  f"{options.rate_limits}); Ctrl-C stops it")  # fmt: skip
            for venue, info in described.items():
                print(f"\n{venue}: {info['base_url']}")
                for acc in info["accounts"]:
                    secret = f" secret={acc['api_secret']}" if acc["api_secret"] else ""
                    phrase = f" passphrase={acc['passphrase']}" if acc["passphrase"] else ""
                    print(f"  account={acc['account']} key={acc['api_key']}{secret}{phrase} {acc['options'] or ''}")
            sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    finally:
        sandbox.stop()
    return 0


def describe(sandbox: Sandbox) -> dict[str, Any]:
    """{venue: {base_url, accounts: [{account, api_key, api_secret, passphrase, options}]}}."""
    out: dict[str, Any] = {}
    for venue in sandbox.venues:
        out[venue] = {
            "base_url": sandbox.base_url(venue),
            "accounts": [
                {
                    "account": a.account,
                    "api_key": a.api_key,
                    "api_secret": a.api_secret,
                    "passphrase": a.passphrase,
                    "options": a.options,
                    "conn_id": a.conn_id,
                }
                for a in sandbox.accounts(venue)
            ],
        }
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value


def _truth(args: argparse.Namespace, options: SandboxOptions) -> int:
    missing = [n for n in ("venue", "account", "start", "end") if not getattr(args, n)]
    if missing:
        print(f"ledgerlake sandbox truth: missing --{', --'.join(missing)}", file=sys.stderr)
        return 2
    try:
        interval = Interval.parse(args.start, args.end)
        sandbox = Sandbox(options)  # the data needs no servers
        if args.venue == "binance":
            tables = sandbox.snapshot_truth(args.account, interval)
        else:
            tables = {"ledger": sandbox.truth(args.venue, args.account, interval)}
    except (ValueError, KeyError) as exc:
        print(f"ledgerlake sandbox truth: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    for dataset, table in tables.items():
        for row in table.to_pylist():
            line = {k: _jsonable(v) for k, v in row.items()}
            if args.venue == "binance":
                line = {"dataset": dataset, **line}
            sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
    return 0
