"""Throughput of one account-day per ledger venue, stage by stage, end to end, and the floor beside it.

Per venue, in this process (the sandbox and the S3 server run in their own):
0. the sandbox prepares the day (generates and serialises it) before any clock starts: its generation is not
   what is measured, its serving is (the serving rate is reported);
1. extract(): the engine's real run, with the stage times the engine reports itself (engine.stages);
2. validate_partition(): the quality gate (invariants + Great Expectations + Data Docs + record), its own
   per-step seconds;
3. load_partition() into a fresh DuckDB file (open_warehouse included in the wall time);
4. load_partition() into a scratch PostgreSQL database;
5. the floor (bench.floor) over the same pages; the sandbox's serving rate from its fetch step.
End to end = wall time of 1 + 2 + 3 (sandbox pages -> DuckDB, checks included).
Every venue is measured `--throughput-runs` times, round by round; its figures are those of its median run
(this 2-core VM's speed moves 10-20% within minutes), with every run's end-to-end rate beside them.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from ledgerlake.bench.floor import floor_run
from ledgerlake.bench.services import MotoProcess, SandboxProcess, empty_lake
from ledgerlake.interval import Interval

LEDGER_VENUES = ("exchangehubx", "pacifica", "coinbase", "sunx")
log = logging.getLogger("ledgerlake.bench")


def _rate(rows: int, seconds: float) -> float:
    return round(rows / seconds) if seconds > 0 else 0.0


def warm_imports() -> dict[str, float]:
    """Import cost paid once per process (an Airflow task pays it per task); kept out of the stage figures."""
    out = {}
    t = time.perf_counter()
    import great_expectations  # noqa: F401

    out["great_expectations"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    import duckdb  # noqa: F401
    import psycopg  # noqa: F401

    out["duckdb+psycopg"] = round(time.perf_counter() - t, 2)
    return out


def measure_venue(
    venue: str,
    sandbox: SandboxProcess,
    moto: MotoProcess,
    interval: Interval,
    now: Any,
    pg_dsn: str | None,
    workdir: Path,
    data_docs_dir: Path,
) -> dict[str, Any]:
    from ledgerlake.engine import ExtractOptions, extract
    from ledgerlake.quality import validate_partition
    from ledgerlake.warehouse import WarehouseSettings, open_warehouse

    lake = moto.lake()
    account, credentials = sandbox.account(venue), sandbox.credentials(venue)
    result: dict[str, Any] = {"venue": venue, "account": account.account, "interval": str(interval)}
    prepared = sandbox.prepare(venue, 0, interval.start, interval.end)
    sandbox_cpu0, moto_cpu0 = sandbox.cpu_seconds(), moto.cpu_seconds()
    served0 = sandbox.stats()[venue]["entries_served"]

    # 1. extract, stage by stage
    t0, c0 = time.perf_counter(), time.process_time()
    summary = extract(venue, account, credentials, interval, lake, options=ExtractOptions(rate_limit="off", now=now))
    extract_s, extract_cpu = time.perf_counter() - t0, time.process_time() - c0
    rows = summary.rows.get("ledger", 0)
    result["entries_prepared"] = prepared
    result["rows"] = rows
    result["pages"] = summary.pages
    result["extract"] = {
        "seconds": round(extract_s, 3),
        "cpu_s": round(extract_cpu, 3),
        "rows_per_s": _rate(rows, extract_s),
        "stages": summary.stages,  # engine.stages: {stage: {wall_s, cpu_s}}, each on its own thread
        "sandbox_cpu_s": round(sandbox.cpu_seconds() - sandbox_cpu0, 2),
        "s3_server_cpu_s": round(moto.cpu_seconds() - moto_cpu0, 2),
        "entries_served": sandbox.stats()[venue]["entries_served"] - served0,
    }

    # 2. validate
    t0, c0 = time.perf_counter(), time.process_time()
    outcome = validate_partition(lake, venue, account.account, interval, data_docs_dir=data_docs_dir)
    validate_s, validate_cpu = time.perf_counter() - t0, time.process_time() - c0
    if not outcome.passed:
        raise RuntimeError(f"{venue}: the quality gate failed on sandbox data: {outcome.summary}")
    result["validate"] = {
        "seconds": round(validate_s, 3),
        "cpu_s": round(validate_cpu, 3),
        "rows_per_s": _rate(rows, validate_s),
        "steps_s": {k: round(v, 3) for k, v in outcome.seconds.items()},
    }

    # 3. DuckDB
    t0, c0 = time.perf_counter(), time.process_time()
    with open_warehouse(WarehouseSettings(kind="duckdb", path=str(workdir / f"{venue}.duckdb"))) as wh:
        loaded = wh.load_partition(lake, venue, account.account, interval)
    duck_s, duck_cpu = time.perf_counter() - t0, time.process_time() - c0
    assert loaded.rows == rows, (loaded.rows, rows)
    result["load_duckdb"] = {
        "seconds": round(duck_s, 3),
        "load_partition_s": round(loaded.seconds, 3),
        "rows_per_s": _rate(rows, loaded.seconds),
    }
    e2e, e2e_cpu = extract_s + validate_s + duck_s, extract_cpu + validate_cpu + duck_cpu
    result["end_to_end"] = {
        "seconds": round(e2e, 3),
        "cpu_s": round(e2e_cpu, 3),
        "rows_per_s": _rate(rows, e2e),
        "rows_per_cpu_s": _rate(rows, e2e_cpu),
    }

    # 4. PostgreSQL
    if pg_dsn:
        with open_warehouse(WarehouseSettings(kind="postgres", dsn=pg_dsn)) as wh:
            loaded = wh.load_partition(lake, venue, account.account, interval)
        result["load_postgres"] = {"seconds": round(loaded.seconds, 3), "rows_per_s": _rate(rows, loaded.seconds)}
    empty_lake(lake)

    # 5. the floor; its fetch step and the sandbox's CPU meanwhile give the sandbox's serving rate
    cpu0, t0 = sandbox.cpu_seconds(), time.process_time()
    floor = floor_run(venue, account, credentials, interval, moto.endpoint_url, lake.settings.bucket, "floor/x.parquet")
    floor_sandbox_cpu, floor_cpu = sandbox.cpu_seconds() - cpu0, time.process_time() - t0
    result["floor"] = {
        "seconds": round(floor["seconds"], 3),
        "cpu_s": round(floor_cpu, 3),
        "rows": floor["rows"],
        "rows_per_s": _rate(floor["rows"], floor["seconds"]),
        "steps_s": {k: round(v, 3) for k, v in floor["steps"].items()},
    }
    fetch_s = floor["steps"]["fetch"]
    result["serving"] = {
        "requests": floor["pages"],
        "entries": floor["rows"],
        # as one client saw it: the time from sending a request to having its whole answer
        "requests_per_s": _rate(floor["pages"], fetch_s),
        "entries_per_s": _rate(floor["rows"], fetch_s),
        "sandbox_cpu_s": round(floor_sandbox_cpu, 2),
        # what one sandbox core serves when it is busy only with this
        "entries_per_sandbox_cpu_s": _rate(floor["rows"], floor_sandbox_cpu),
        "requests_per_sandbox_cpu_s": _rate(floor["pages"], floor_sandbox_cpu),
    }
    empty_lake(lake)
    return result


def measure_binance(
    sandbox: SandboxProcess, moto: MotoProcess, interval: Interval, now: Any, workdir: Path, data_docs_dir: Path
) -> dict[str, Any]:
    """Binance has one snapshot a day per type: per-request figures of a 29-day window, limits off."""
    from ledgerlake.engine import ExtractOptions, extract
    from ledgerlake.quality import validate_partition
    from ledgerlake.warehouse import WarehouseSettings, open_warehouse

    lake = moto.lake()
    account, credentials = sandbox.account("binance"), sandbox.credentials("binance")
    t0 = time.perf_counter()
    summary = extract(
        "binance", account, credentials, interval, lake, options=ExtractOptions(rate_limit="off", now=now)
    )
    extract_s = time.perf_counter() - t0
    snapshots = summary.rows.get("snapshots/balances", 0) + summary.rows.get("snapshots/positions", 0)
    out: dict[str, Any] = {
        "venue": "binance",
        "interval": str(interval),
        "requests": summary.requests,
        "rows": dict(summary.rows),
        "extract_s": round(extract_s, 3),
        "ms_per_request": round(1000 * extract_s / max(summary.requests, 1), 1),
        "rows_per_request": round(snapshots / max(summary.requests, 1), 1),
    }
    try:  # a failure here is a finding to report, not a reason to lose the other figures
        t0 = time.perf_counter()
        outcome = validate_partition(lake, "binance", account.account, interval, data_docs_dir=data_docs_dir)
        out["validate_s"] = round(time.perf_counter() - t0, 3)
        out["validate_passed"] = outcome.passed
        if outcome.passed:
            with open_warehouse(WarehouseSettings(kind="duckdb", path=str(workdir / "binance.duckdb"))) as wh:
                out["load_duckdb_s"] = round(wh.load_partition(lake, "binance", account.account, interval).seconds, 3)
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"[:300]
        log.error("binance: %s", out["error"])
    empty_lake(lake)
    return out


def run(
    sandbox: SandboxProcess, moto: MotoProcess, day: Interval, now: Any, pg_dsn: str | None, runs: int = 1
) -> dict[str, Any]:
    """Each venue measured `runs` times, round by round (so a slow spell of the machine falls on every venue);
    a venue's figures are those of its run with the median end-to-end time, and every run's rate is kept.
    PostgreSQL is loaded in the first round only: later rounds would replace its rows, a different measurement."""
    sandbox.set_rate_limits("off")
    out: dict[str, Any] = {"imports_s": warm_imports(), "venues": {}, "runs": runs}
    with tempfile.TemporaryDirectory(prefix="ledgerlake-bench-") as tmp:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        # One Data Docs folder for every run: Great Expectations' context is made once per folder and process,
        # as a task pays it once (with the imports).
        docs = Path(tmp) / "data_docs"
        # Warm-up on a few minutes of data: lazy imports and first-call costs stay out of the figures.
        warm = Interval(day.end - timedelta(minutes=5), day.end)
        measure_venue("exchangehubx", sandbox, moto, warm, now, None, Path(tmp) / "warm", docs)
        measured: dict[str, list[dict[str, Any]]] = {venue: [] for venue in LEDGER_VENUES}
        for round_no in range(runs):
            for venue in LEDGER_VENUES:
                log.info("throughput: %s (run %d of %d)", venue, round_no + 1, runs)
                workdir = Path(tmp) / f"run{round_no}"
                result = measure_venue(venue, sandbox, moto, day, now, pg_dsn if round_no == 0 else None, workdir, docs)
                measured[venue].append(result)
                log.info(
                    "throughput: %s: %s rows, end to end %s rows/s, floor %s rows/s",
                    venue,
                    result["rows"],
                    result["end_to_end"]["rows_per_s"],
                    result["floor"]["rows_per_s"],
                )
        for venue, results in measured.items():
            median = dict(sorted(results, key=lambda r: r["end_to_end"]["seconds"])[len(results) // 2])
            if "load_postgres" in results[0]:
                median["load_postgres"] = results[0]["load_postgres"]
            median["end_to_end_runs_rows_per_s"] = [r["end_to_end"]["rows_per_s"] for r in results]
            out["venues"][venue] = median
        binance = Interval(day.end - timedelta(days=29), day.end)
        out["binance"] = measure_binance(sandbox, moto, binance, now, Path(tmp), docs)
    return out
