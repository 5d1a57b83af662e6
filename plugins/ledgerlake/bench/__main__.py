"""`make bench` = `python -m ledgerlake.bench [--quick] [--only throughput,memory,ratelimits,backfill]`.

Writes results.json, results.md and throughput.png to include/benchmarks/ (a --quick run to a scratch
directory unless --out is given; an --only run updates just its sections of an existing results.json), and
prints the Markdown at the end.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SECTIONS = ("throughput", "memory", "ratelimits", "backfill")
# The sandbox's fixed "now" for throughput, memory and rate limits: the data never depends on the day.
NOW = datetime(2026, 11, 20, tzinfo=UTC)

log = logging.getLogger("ledgerlake.bench")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from ledgerlake.config import PROJECT_ROOT

    p = argparse.ArgumentParser(prog="python -m ledgerlake.bench", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes for a fast look (about 3 minutes)")
    p.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections: {', '.join(SECTIONS)}")
    p.add_argument("--out", type=Path, help="results directory (default include/benchmarks; --quick: a temp dir)")
    p.add_argument("--entries", type=int, help="entries per account-day (default 1,000,000; --quick 20,000)")
    p.add_argument(
        "--throughput-runs",
        type=int,
        help="runs per venue of the throughput section, the median reported (default 3; --quick 1)",
    )
    p.add_argument("--memory-days", default="1,10", help="interval lengths in days for the memory runs")
    p.add_argument("--memory-venue", default="coinbase", help="venue of the memory runs (default: newest first)")
    p.add_argument("--ratelimit-seconds", type=float, help="run length per venue (default 30; --quick 4)")
    p.add_argument("--backfill-days", type=int, help="days to backfill (default 30; --quick 2)")
    p.add_argument("--backfill-accounts", type=int, default=3, help="accounts per venue in the backfill")
    p.add_argument("--backfill-entries", type=int, default=50, help="entries per account-day in the backfill")
    p.add_argument(
        "--backfill-budget",
        type=float,
        help="seconds to let the backfill run before measuring what finished; a backfill cut short reports a "
        "projection (default 1800: the whole 30 days took 21-26 minutes here; --quick 240)",
    )
    p.add_argument(
        "--pg",
        default=os.environ.get("LEDGERLAKE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="PostgreSQL server DSN to create scratch databases on ('none' skips PostgreSQL)",
    )
    p.add_argument("--no-chart", action="store_true")
    p.add_argument("--render", action="store_true", help="only re-render results.md and the chart from results.json")
    args = p.parse_args(argv)
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        p.error(f"unknown sections {sorted(unknown)}; known: {', '.join(SECTIONS)}")
    args.entries = args.entries or (20_000 if args.quick else 1_000_000)
    args.throughput_runs = args.throughput_runs or (1 if args.quick else 3)
    args.ratelimit_seconds = args.ratelimit_seconds or (4.0 if args.quick else 30.0)
    args.backfill_days = args.backfill_days or (2 if args.quick else 30)
    args.backfill_budget = args.backfill_budget or (240.0 if args.quick else 1800.0)
    if args.out is None:
        args.out = (
            Path(tempfile.gettempdir()) / "ledgerlake-bench-quick"
            if args.quick
            else PROJECT_ROOT / "include" / "benchmarks"
        )
    return args


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_reference() -> dict[str, float]:
    """How fast this machine is right now, to compare figures between runs and machines: the seconds of a fixed
    pure-Python loop, of parsing a fixed 27 MB of ledger-like JSON into Python objects (allocation-heavy, as
    the pipeline is), and of writing 64 MiB of memory never touched before (page faults). A yardstick, not a
    correction: on the VM of these figures it read about the same before two throughput runs whose rows/s
    differed by 1.7x, so compare ratios within a run and CPU seconds first."""
    import orjson

    t = time.perf_counter()
    total = 0
    for i in range(3_000_000):
        total += i
    loop = time.perf_counter() - t
    record = {"id": 1, "asset": "USDT", "amount": "-26.1483", "balance": "50632469.296062078663954439", "ts": 1}
    page = orjson.dumps({"data": [dict(record, id=i) for i in range(100)]})
    t = time.perf_counter()
    for _ in range(3000):
        orjson.loads(page)
    parse = time.perf_counter() - t
    t = time.perf_counter()
    fresh = bytearray(64 << 20)  # zero pages, touched below one per 4 KiB
    for offset in range(0, len(fresh), 4096):
        fresh[offset] = 1
    touch = time.perf_counter() - t
    del fresh
    return {"python_loop_s": round(loop, 3), "json_parse_s": round(parse, 3), "fresh_64mib_s": round(touch, 3)}


class _Timed:
    """Records when a section ran, how long it took, the machine's load meanwhile and its speed at the start
    (an --only run keeps the other sections' records)."""

    def __init__(self, results: dict[str, Any], section: str) -> None:
        self.record = results.setdefault("section_meta", {})
        self.section = section

    def __enter__(self) -> None:
        self.reference = machine_reference()
        self.started, self.load = time.monotonic(), os.getloadavg()

    def __exit__(self, *exc: object) -> None:
        self.record[self.section] = {
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "seconds": round(time.monotonic() - self.started, 1),
            "load_start": [round(x, 2) for x in self.load],
            "load_end": [round(x, 2) for x in os.getloadavg()],
            "machine_reference": self.reference,
        }


def run_sections(args: argparse.Namespace, results: dict[str, Any]) -> None:
    from contextlib import ExitStack

    from ledgerlake.bench.services import MotoProcess, SandboxProcess, scratch_database
    from ledgerlake.interval import Interval
    from ledgerlake.sandbox import SandboxOptions

    errors: dict[str, str] = results.setdefault("errors", {})
    day = Interval(NOW - timedelta(days=1), NOW)
    memory_days = sorted(int(d) for d in args.memory_days.split(","))

    def section(name: str, measure: Callable[[], Any]) -> None:
        if name not in args.sections:
            return
        with _Timed(results, name):
            try:
                results[name] = measure()
                errors.pop(name, None)
            except Exception:
                errors[name] = traceback.format_exc()[-3000:]
                log.error("%s failed:\n%s", name, errors[name])

    def throughput() -> Any:
        from ledgerlake.bench import throughput

        with ExitStack() as pg:
            dsn = None if args.pg == "none" else pg.enter_context(scratch_database(args.pg, "warehouse"))
            return throughput.run(sandbox, moto, day, NOW, dsn, args.throughput_runs)

    def memory() -> Any:
        from ledgerlake.bench.memory import measure

        runs = []
        for days in memory_days:
            credentials = vars(sandbox.credentials(args.memory_venue))
            job = {
                "venue": args.memory_venue,
                "account": vars(sandbox.account(args.memory_venue)),
                "credentials": {k: credentials[k] for k in ("base_url", "api_key", "api_secret", "passphrase")},
                "s3": vars(moto.lake().settings),
                "start": (NOW - timedelta(days=days)).isoformat(),
                "end": NOW.isoformat(),
                "now": NOW.isoformat(),
            }
            log.info("memory: %s, %d day(s) in one interval", args.memory_venue, days)
            runs.append(measure(job))
            log.info("memory: %s", runs[-1])
        return {"runs": runs}

    def ratelimits() -> Any:
        from ledgerlake.bench import ratelimits

        log.info("rate limits: all venues at once, about %.0f s (Pacifica and Binance ~65 s)", args.ratelimit_seconds)
        return ratelimits.run(sandbox, moto, args.entries, args.ratelimit_seconds, NOW, NOW)

    def backfill() -> Any:
        from ledgerlake.bench import backfill

        return backfill.run(
            args.backfill_days, args.backfill_accounts, args.backfill_entries, args.backfill_budget, log
        )

    with ExitStack() as stack:
        if any(s != "backfill" for s in args.sections):
            log.info("starting the sandbox (%s entries per account-day) and the S3 server", f"{args.entries:,}")
            options = SandboxOptions(
                accounts_per_venue=1,
                days=max([*memory_days, 2]),
                entries_per_day=args.entries,
                rate_limits="off",
                now=NOW,
            )
            sandbox = stack.enter_context(SandboxProcess(options))
            moto = stack.enter_context(MotoProcess())
        section("throughput", throughput)
        section("memory", memory)
        section("ratelimits", ratelimits)
    section("backfill", backfill)  # Airflow brings its own sandbox and S3 (ledgerlake.local)


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # so that every started process (sandbox, S3, Airflow) is stopped on the way out


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _stop)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("TQDM_DISABLE", "1")  # Great Expectations' progress bars
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    log.setLevel(logging.INFO)
    args = parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / "results.json"
    results: dict[str, Any] = {}
    if args.render:
        results = json.loads(json_path.read_text())
        return _publish(args, results)
    partial = set(args.sections) != set(SECTIONS)
    if partial and json_path.exists():
        results = json.loads(json_path.read_text())  # keep the other sections of the last run
    started = time.monotonic()
    load_start = os.getloadavg()
    run_sections(args, results)
    results["meta"] = {
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m ledgerlake.bench " + " ".join(sys.argv[1:] if argv is None else argv),
        "sections_run": args.sections,
        "quick": args.quick,
        "entries_per_account_day": args.entries,
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "load_start": [round(x, 2) for x in load_start],
        "load_end": [round(x, 2) for x in os.getloadavg()],
        "seconds": round(time.monotonic() - started, 1),
        "python": platform.python_version(),
    }
    if not results.get("errors"):
        results.pop("errors", None)
    json_path.write_text(json.dumps(results, indent=1, sort_keys=True, default=str) + "\n")
    return _publish(args, results)


def _publish(args: argparse.Namespace, results: dict[str, Any]) -> int:
    from ledgerlake.bench import report

    markdown = report.markdown(results)
    (args.out / "results.md").write_text(markdown)
    if "throughput" in results and not args.no_chart:
        report.chart(results, args.out / "throughput.png")
    print(markdown, flush=True)
    print(f"results: {args.out}", flush=True)
    return 1 if results.get("errors") else 0


if __name__ == "__main__":
    sys.exit(main())
