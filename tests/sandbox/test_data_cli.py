"""The synthetic data itself (consistency, coverage, determinism, laziness) and the command line."""

from __future__ import annotations

import decimal
import itertools
import json
import os
import signal
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from sandbox_client import call, pacifica_get

from ledgerlake.interval import Interval
from ledgerlake.sandbox import Sandbox, SandboxOptions
from ledgerlake.sandbox.pytest_plugin import SANDBOX_NOW, TEST_DEFAULTS

HISTORY = Interval(datetime(2026, 11, 17, tzinfo=UTC), SANDBOX_NOW)
DOC_CODES = {
    "exchangehubx": {str(c) for c in range(1, 17)},
    "coinbase": set(["transfer", "match", "fee", "rebate", "conversion"]),
    "pacifica": set(
        [
            "deposit",
            "deposit_release",
            "withdraw",
            "trade",
            "market_liquidation",
            "backstop_liquidation",
            "adl_liquidation",
            "subaccount_transfer",
            "funding",
            "payout",
        ]
    ),
    "sunx": set(
        [
            "3",
            "4",
            "5",
            "6",
            "7",
            "8",
            "9",
            "10",
            "11",
            "12",
            "13",
            "14",
            "15",
            "19",
            "26",
            "28",
            "29",
            "30",
            "31",
            "34",
            "35",
            "36",
            "37",
            "38",
            "39",
            "46",
            "47",
            "66",
            "67",
        ]
    ),
}
ROOT = Path(__file__).resolve().parents[2]


def offline(**overrides: object) -> Sandbox:
    """Truth needs no servers."""
    return Sandbox(SandboxOptions(**{**TEST_DEFAULTS, **overrides}))


@pytest.fixture
def wide_decimals() -> Iterator[None]:
    """Python's default 28 significant digits round sums of decimal(38,18) values."""
    with decimal.localcontext() as ctx:
        ctx.prec = 60
        yield


@pytest.mark.usefixtures("wide_decimals")
def test_ledgers_are_consistent_and_cover_every_documented_case() -> None:
    sb = offline()
    for venue, codes in DOC_CODES.items():
        for acc in sb.accounts(venue):
            t = sb.truth(venue, acc.account, HISTORY).to_pylist()
            assert {r["venue_entry_type"] for r in t} == codes, venue
            assert [r["entry_seq"] for r in t] == list(range(len(t)))
            assert len({r["entry_id"] for r in t}) == len(t)
            times = [r["occurred_at"] for r in t]
            assert times == sorted(times)
            ms_stamps = [x.replace(microsecond=x.microsecond // 1000 * 1000) for x in times]
            assert len(set(ms_stamps)) < len(ms_stamps), "several entries in one millisecond"
            midnights = [x for x in times if x == x.replace(hour=0, minute=0, second=0, microsecond=0)]
            assert len(midnights) >= 3, "entries exactly on day boundaries"
            assert max(abs(r["amount"]) for r in t) > Decimal(10) ** 12
            if venue in ("exchangehubx", "sunx"):
                assert any(r["amount"].as_tuple().digits[-1] != 0 for r in t), "amounts using all 18 decimals"
            last: dict[str, Decimal] = {}
            for r in t:
                if venue == "exchangehubx":
                    assert r["balance_before"] + r["amount"] == r["balance_after"]
                    if r["asset"] in last:
                        assert last[r["asset"]] == r["balance_before"]
                elif venue in ("coinbase", "pacifica") and r["asset"] in last:
                    assert last[r["asset"]] + r["amount"] == r["balance_after"]  # balance = running sum
                if r["balance_after"] is not None:
                    last[r["asset"]] = r["balance_after"]
                    assert r["balance_after"] >= 0


def test_deterministic_for_a_seed() -> None:
    day = Interval(datetime(2026, 11, 18, tzinfo=UTC), datetime(2026, 11, 19, tzinfo=UTC))
    a, b, c = offline(), offline(), offline(seed=8)
    for venue in DOC_CODES:
        acc = a.accounts(venue)[0].account
        assert a.accounts(venue) == b.accounts(venue)
        assert a.truth(venue, acc, day).equals(b.truth(venue, acc, day))
        other = c.truth(venue, c.accounts(venue)[0].account, day)
        assert not a.truth(venue, acc, day).equals(other)
    bn = a.accounts("binance")[0].account
    assert a.snapshot_truth(bn, day)["snapshots/balances"].equals(b.snapshot_truth(bn, day)["snapshots/balances"])
    # the data of a day does not depend on `now`: a sandbox started a week later agrees on it
    later = offline(now=SANDBOX_NOW + timedelta(days=7), days=10)
    acc = a.accounts("exchangehubx")[0].account
    assert later.truth("exchangehubx", acc, day).equals(a.truth("exchangehubx", acc, day))


@pytest.mark.usefixtures("wide_decimals")
def test_millions_per_day_are_lazy() -> None:
    tracemalloc.start()
    sb = offline(entries_per_day=2_000_000, days=60)
    acc = sb.accounts("coinbase")[0].account
    midnight = datetime(2026, 10, 1, tzinfo=UTC)
    around = sb.truth("coinbase", acc, Interval(midnight - timedelta(seconds=2), midnight + timedelta(seconds=2)))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert 60 < around.num_rows < 250 and peak < 50 * 2**20
    rows = around.to_pylist()
    for prev, cur in itertools.pairwise(rows):  # consistent across the day boundary too
        assert prev["balance_after"] + cur["amount"] == cur["balance_after"]
    assert any(r["occurred_at"] == midnight for r in rows)


def test_accounts_config_and_connections(sandbox: Sandbox) -> None:
    config = sandbox.accounts_config()
    conns = sandbox.connections()
    assert set(config["venues"]) == {"exchangehubx", "binance", "pacifica", "coinbase", "sunx"}
    for venue, spec in config["venues"].items():
        for i, entry in enumerate(spec["accounts"]):
            conn = conns[entry["conn_id"]]
            assert entry["conn_id"] == f"ledgerlake_{venue}_{i}"
            assert conn["host"] == sandbox.base_url(venue) and conn["conn_type"] == "http"
    assert config["venues"]["coinbase"]["accounts"][0]["currency"] == "USD"
    assert config["venues"]["sunx"]["accounts"][0]["mar_acct"] == "USDT"
    assert config["venues"]["pacifica"]["accounts"][0]["settlement_asset"] == "USDC"
    assert conns["ledgerlake_coinbase_0"]["extra"]["passphrase"]


def test_cli_serves_with_json_and_stops_cleanly() -> None:
    cmd = [sys.executable, "-m", "ledgerlake.cli", "sandbox", "--json", "--seed", "3", "--accounts", "1",
           "--days", "2", "--entries-per-day", "50", "--now", "2026-11-20T12:00:00Z"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT / "plugins")}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        info = json.loads(line)
        assert set(info) == {"exchangehubx", "binance", "pacifica", "coinbase", "sunx"}
        pac = info["pacifica"]
        assert set(pac["accounts"][0]) >= {"account", "api_key", "api_secret", "passphrase", "options"}
        page = pacifica_get(pac["base_url"], {"account": pac["accounts"][0]["account"], "limit": 3}).json()
        assert page["success"] and len(page["data"]) == 3
        assert call("GET", info["coinbase"]["base_url"] + "/nope").status == 404
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_cli_truth_prints_json_lines_equal_to_truth() -> None:
    sb = Sandbox(SandboxOptions(seed=3, accounts_per_venue=1, days=2, entries_per_day=50, now=SANDBOX_NOW))
    acc = sb.accounts("sunx")[0].account
    day = Interval(datetime(2026, 11, 19, tzinfo=UTC), datetime(2026, 11, 20, tzinfo=UTC))
    cmd = [sys.executable, "-m", "ledgerlake.cli", "sandbox", "truth", "--venue", "sunx", "--account", acc,
           "--start", "2026-11-19", "--end", "2026-11-20", "--seed", "3", "--accounts", "1", "--days", "2",
           "--entries-per-day", "50", "--now", "2026-11-20T12:00:00Z"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT / "plugins")}
    started = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60, check=True).stdout
    lines = [json.loads(x) for x in out.splitlines()]
    want = sb.truth("sunx", acc, day)
    assert len(lines) == want.num_rows == 50 and time.time() - started < 30
    got = pa.Table.from_pylist(
        [{**r, "amount": Decimal(r["amount"]), "occurred_at": datetime.fromisoformat(r["occurred_at"])} for r in lines]
    )
    assert got.column("amount").to_pylist() == want.column("amount").to_pylist()
    assert got.column("entry_id").to_pylist() == want.column("entry_id").to_pylist()
    assert got.column("occurred_at").to_pylist() == want.column("occurred_at").to_pylist()
    assert lines[0]["amount"].count(".") == 1 and "E" not in lines[0]["amount"]
