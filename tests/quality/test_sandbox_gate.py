"""The gate on real extractions from the venue sandbox over HTTP: a clean run passes and loads; one page the
venue silently dropped is caught for every venue that reports balances, inside an interval and between two
runs (against the closing balances the previous load left in a DuckDB warehouse)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledgerlake.config import AccountConfig
from ledgerlake.engine import ExtractOptions, VenueCredentials, extract
from ledgerlake.interval import Interval
from ledgerlake.lake import Lake
from ledgerlake.quality import ValidationOutcome, validate_partition
from ledgerlake.sandbox import Sandbox
from ledgerlake.sandbox.pytest_plugin import SANDBOX_NOW
from ledgerlake.warehouse import LoadRefused, Warehouse, WarehouseSettings, open_warehouse

DAY1 = Interval.parse("2026-11-18", "2026-11-19")
DAY2 = Interval.parse("2026-11-19", "2026-11-20")
PAGE = 100  # the venues' page size: one page of entries


def extract_day(sb: Sandbox, lake: Lake, venue: str, interval: Interval) -> str:
    spec = dict(sb.accounts_config()["venues"][venue]["accounts"][0])
    account, conn_id = spec.pop("account"), spec.pop("conn_id")
    acc = sb.accounts(venue)[0]
    extract(
        venue,
        AccountConfig(venue, account, conn_id, spec),
        VenueCredentials(sb.base_url(venue), api_key=acc.api_key, api_secret=acc.api_secret, passphrase=acc.passphrase),
        interval,
        lake,
        options=ExtractOptions(now=SANDBOX_NOW, rate_limit="off"),
    )
    return str(account)


def validate(
    lake: Lake, docs_dir: Path, venue: str, account: str, interval: Interval, wh: Warehouse
) -> ValidationOutcome:
    return validate_partition(
        lake, venue, account, interval, previous_closing=wh.closing_balances, data_docs_dir=docs_dir
    )


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    wh = open_warehouse(WarehouseSettings(kind="duckdb", path=str(tmp_path / "warehouse.duckdb")))
    yield wh  # type: ignore[misc]
    wh.close()


def clean_first_day(sb: Sandbox, lake: Lake, docs_dir: Path, venue: str, wh: Warehouse) -> str:
    """Day 1 extracted, validated and loaded, as the previous scheduled run left it."""
    account = extract_day(sb, lake, venue, DAY1)
    first = validate(lake, docs_dir, venue, account, DAY1, wh)
    assert first.passed, first.report()
    wh.load_partition(lake, venue, account, DAY1)
    assert wh.closing_balances(venue, account, DAY2.start)
    return account


@pytest.mark.parametrize("venue", ["exchangehubx", "coinbase", "pacifica"])
def test_clean_runs_pass_and_load(
    sandbox: Sandbox, lake: Lake, docs_dir: Path, warehouse: Warehouse, venue: str
) -> None:
    account = clean_first_day(sandbox, lake, docs_dir, venue, warehouse)
    extract_day(sandbox, lake, venue, DAY2)

    outcome = validate(lake, docs_dir, venue, account, DAY2, warehouse)

    assert outcome.passed, outcome.report()
    assert not any("skipped" in n for n in outcome.notes), outcome.notes  # continuity really was checked
    assert warehouse.load_partition(lake, venue, account, DAY2).rows > 0


@pytest.mark.parametrize("venue", ["exchangehubx", "coinbase", "pacifica"])
def test_a_page_dropped_inside_the_interval_is_caught(
    sandbox: Sandbox, lake: Lake, docs_dir: Path, warehouse: Warehouse, venue: str
) -> None:
    account = clean_first_day(sandbox, lake, docs_dir, venue, warehouse)
    truth = sandbox.truth(venue, account, DAY2)
    assert truth.num_rows > 2 * PAGE
    ids = truth.sort_by("entry_seq")["entry_id"].to_pylist()[PAGE : 2 * PAGE]
    assert sandbox.drop_entries(venue, account, ids) == PAGE
    extract_day(sandbox, lake, venue, DAY2)

    outcome = validate(lake, docs_dir, venue, account, DAY2, warehouse)

    assert not outcome.passed
    assert [c.name for c in outcome.failures] == ["invariant_running_balance"], outcome.report()
    with pytest.raises(LoadRefused):
        warehouse.load_partition(lake, venue, account, DAY2)


@pytest.mark.parametrize("venue", ["exchangehubx", "coinbase", "pacifica"])
def test_a_page_lost_between_two_runs_is_caught(
    sandbox: Sandbox, lake: Lake, docs_dir: Path, warehouse: Warehouse, venue: str
) -> None:
    account = clean_first_day(sandbox, lake, docs_dir, venue, warehouse)
    truth = sandbox.truth(venue, account, DAY2)
    ids = truth.sort_by("entry_seq")["entry_id"].to_pylist()[:PAGE]  # the first page after the last run
    assert sandbox.drop_entries(venue, account, ids) == PAGE
    extract_day(sandbox, lake, venue, DAY2)

    outcome = validate(lake, docs_dir, venue, account, DAY2, warehouse)

    assert not outcome.passed
    assert "invariant_previous_closing" in [c.name for c in outcome.failures], outcome.report()


@pytest.mark.parametrize("venue", ["exchangehubx", "coinbase", "pacifica"])
def test_out_of_order_backfill_days_pass(
    sandbox: Sandbox, lake: Lake, docs_dir: Path, warehouse: Warehouse, venue: str
) -> None:
    """A backfill validates days in any order: with the day before not loaded yet, continuity is skipped (and
    said), not failed against an older day's balances; once it is loaded, continuity is checked and holds."""
    day0 = Interval.parse("2026-11-17", "2026-11-18")
    account = extract_day(sandbox, lake, venue, day0)
    assert validate(lake, docs_dir, venue, account, day0, warehouse).passed
    warehouse.load_partition(lake, venue, account, day0)
    for day in (DAY1, DAY2):
        extract_day(sandbox, lake, venue, day)

    early = validate(lake, docs_dir, venue, account, DAY2, warehouse)  # DAY1 not loaded yet
    assert early.passed, early.report()
    assert any("skipped" in n for n in early.notes), early.notes

    assert validate(lake, docs_dir, venue, account, DAY1, warehouse).passed
    warehouse.load_partition(lake, venue, account, DAY1)
    late = validate(lake, docs_dir, venue, account, DAY2, warehouse)
    assert late.passed, late.report()
    assert not any("skipped" in n for n in late.notes), late.notes
