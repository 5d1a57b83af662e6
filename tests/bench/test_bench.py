"""Smoke tests of the benchmark code paths on tiny sizes, so `make bench` cannot rot: the engine's stage times on
a real extraction, the floor against the sandbox and S3, the log parsers of the backfill, and the whole CLI
(throughput, memory, rate limits) end to end with its JSON, Markdown and chart."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ledgerlake.bench.backfill import work_seconds
from ledgerlake.bench.floor import floor_run
from ledgerlake.config import AccountConfig
from ledgerlake.engine import ExtractOptions, VenueCredentials, extract
from ledgerlake.interval import Interval
from ledgerlake.lake import Lake
from ledgerlake.sandbox import Sandbox
from ledgerlake.sandbox.pytest_plugin import SANDBOX_NOW
from ledgerlake.venues import VENUE_CLASSES

DAY = Interval.parse("2026-11-18", "2026-11-19")


def _account(sb: Sandbox, venue: str) -> tuple[AccountConfig, VenueCredentials]:
    spec = dict(sb.accounts_config()["venues"][venue]["accounts"][0])
    account = AccountConfig(venue, spec.pop("account"), spec.pop("conn_id"), spec)
    acc = sb.accounts(venue)[0]
    return account, VenueCredentials(sb.base_url(venue), acc.api_key, acc.api_secret, acc.passphrase)


@pytest.mark.parametrize("venue", ["coinbase", "sunx"])
def test_the_engine_reports_where_a_real_extraction_spent_its_time(sandbox: Sandbox, lake: Lake, venue: str) -> None:
    account, credentials = _account(sandbox, venue)
    summary = extract(venue, account, credentials, DAY, lake, options=ExtractOptions(rate_limit="off", now=SANDBOX_NOW))
    assert summary.rows["ledger"] == sandbox.truth(venue, account.account, DAY).num_rows > 0
    for stage in ("request", "parse", "wait_for_pages", "raw_archive", "normalize", "write_parquet"):
        assert stage in summary.stages, stage  # every step a ledger page goes through was timed
        assert 0 <= summary.stages[stage]["cpu_s"] <= summary.stages[stage]["wall_s"] + 0.05, stage
    assert summary.stages["request"]["wall_s"] + summary.stages["normalize"]["wall_s"] > 0
    # exclusive times per thread: the row-building thread's stages cannot add up to more than the run
    building = ("wait_for_pages", "raw_archive", "normalize", "spill", "wait_for_parquet", "upload_wait", "manifest")
    assert sum(summary.stages.get(s, {}).get("wall_s", 0.0) for s in building) <= summary.seconds + 0.05
    # timings differ from run to run, so they must stay out of the manifest (re-runs write identical objects)
    manifest = lake.get_bytes(summary.manifest_key or "")
    assert b"wait_for_pages" not in manifest and b"stages" not in manifest


@pytest.mark.parametrize("venue", ["exchangehubx", "coinbase", "pacifica", "sunx"])
def test_floor_fetches_every_page_and_writes_parquet_to_s3(
    sandbox: Sandbox, lake: Lake, s3_endpoint: str, venue: str
) -> None:
    account, credentials = _account(sandbox, venue)
    result = floor_run(venue, account, credentials, DAY, s3_endpoint, lake.settings.bucket, "floor/t.parquet")
    truth = sandbox.truth(venue, account.account, DAY).num_rows
    # the venue's inclusive ends may add an entry at the boundary; the floor does not filter
    assert truth <= result["rows"] <= (truth + 2 if venue != "pacifica" else truth * 4)  # Pacifica: from the newest
    written = pq.read_table(pa.BufferReader(lake.get_bytes("floor/t.parquet")))
    assert written.num_rows == result["rows"]
    assert result["pages"] >= truth // VENUE_CLASSES[venue].default_page_size


def test_backfill_reads_the_work_time_each_task_logs() -> None:
    assert work_seconds("extract", "x: done: 3 pages, rows {'ledger': 300}, 1.2 s; manifest s3://b/k") == 1.2
    assert work_seconds("validate", "timings (s): {'read ledger': 0.1, 'total': 2.5}") == 2.5
    two = "loaded a/b [x): 3 rows replacing 0 in 0.25s\nloaded a/c [x): 4 rows replacing 0 in 0.50s"
    assert work_seconds("load_warehouse", two) == 0.75
    assert work_seconds("extract", "nothing here") is None


@pytest.mark.slow
@pytest.mark.postgres
def test_bench_cli_runs_every_local_section_on_tiny_sizes(tmp_path: Path, pg_server_dsn: str) -> None:
    from ledgerlake.bench.__main__ import main

    logging.getLogger("ledgerlake.bench").setLevel(logging.WARNING)
    argv = ["--quick", "--entries", "3000", "--memory-days", "1,2", "--ratelimit-seconds", "1", "--out", str(tmp_path)]
    argv += ["--throughput-runs", "3"]
    code = main([*argv, "--only", "throughput,memory,ratelimits", "--pg", pg_server_dsn])
    results = json.loads((tmp_path / "results.json").read_text())
    assert code == 0, results.get("errors")
    venues = results["throughput"]["venues"]
    assert set(venues) == {"exchangehubx", "pacifica", "coinbase", "sunx"}
    for v in venues.values():
        assert v["rows"] == 3000 and v["end_to_end"]["rows_per_s"] > 0 and v["load_postgres"]["rows_per_s"] > 0
        # Three runs, round by round; the figures are those of the run with the median end-to-end rate.
        assert len(v["end_to_end_runs_rows_per_s"]) == 3
        assert v["end_to_end"]["rows_per_s"] == sorted(v["end_to_end_runs_rows_per_s"])[1]
        # Tiny sizes take the sandbox less CPU than the clock tick psutil reads (10 ms): it may show 0.
        assert v["serving"]["entries_per_s"] > 0 and v["serving"]["entries_per_sandbox_cpu_s"] >= 0
    memory = results["memory"]["runs"]
    assert [r["rows"] for r in memory] == [3000, 6000]
    assert all(100 < r["peak_rss_mib"] < 4096 for r in memory)
    limits = results["ratelimits"]
    assert set(limits) == {"exchangehubx", "coinbase", "sunx", "pacifica"}
    assert all(x["requests"] > 0 and "error" not in x for x in limits.values())
    markdown = (tmp_path / "results.md").read_text()
    for heading in ("## Throughput", "## The sandbox's own serving rate", "## Memory", "## Rate limits"):
        assert heading in markdown
    assert "each of the 3 runs in order" in markdown
    # Targets set for 1M- and 10M-entry intervals are not judged on tiny ones, either way.
    assert "not judged: set for 1,000,000 rows, this run had 3,000" in markdown
    assert "not judged: set for 10,000,000 rows, this run had 6,000" in markdown
    assert "missed" not in markdown.split("## Rate limits")[0]
    assert (tmp_path / "throughput.png").read_bytes()[:4] == b"\x89PNG"


def test_a_target_is_judged_only_at_the_size_it_was_set_for() -> None:
    from ledgerlake.bench.report import _met_at

    assert _met_at(True, 1_000_000, 1_000_000) == "met"
    assert _met_at(False, 1_000_000, 1_000_000) == "**missed**"
    assert _met_at(False, 999_999, 1_000_000) == "not judged: set for 1,000,000 rows, this run had 999,999"
