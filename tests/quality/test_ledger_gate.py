"""The quality gate on crafted ledger partitions: each expectation and invariant fails on a bad partition and
passes on the clean one; the record, the full result and the Data Docs land in the lake."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ledgerlake.lake import Lake, read_validation, sha256_hex
from ledgerlake.quality import PartitionNotFound, ValidationOutcome, validate_partition, validation_result_key
from ledgerlake.schema import LEDGER_SCHEMA

from .partitions import INTERVAL, Closing, closing_of, ledger_rows, read_json, write_ledger

BALANCE_VENUES = ("exchangehubx", "coinbase", "pacifica")


def run(lake: Lake, docs_dir: Path, venue: str, closing: Closing | None = None) -> ValidationOutcome:
    return validate_partition(lake, venue, "acct-1", INTERVAL, previous_closing=closing, data_docs_dir=docs_dir)


def failed(outcome: ValidationOutcome) -> dict[str, object]:
    return {c.name: c for c in outcome.failures}


@pytest.mark.parametrize("venue", ["exchangehubx", "coinbase", "pacifica", "sunx"])
def test_clean_partition_passes_and_is_recorded(lake: Lake, docs_dir: Path, venue: str) -> None:
    rows = ledger_rows(venue)
    write_ledger(lake, rows)
    closing = Closing({"USDT": Decimal("1000"), "BTC": Decimal("1000")})

    outcome = run(lake, docs_dir, venue, closing)

    assert outcome.passed, outcome.report()
    assert outcome.rows == {"ledger": len(rows)}
    record = read_validation(lake, venue, "acct-1", INTERVAL)
    assert record is not None and record.passed and record.failures == ()
    assert record.manifest_sha256 == lake.manifest_sha256(venue, "acct-1", INTERVAL)
    assert record.data_docs_uri and record.data_docs_uri.startswith(f"s3://{lake.settings.bucket}/data_docs/")
    full = read_json(lake, validation_result_key(venue, "acct-1", INTERVAL))
    assert full["passed"] is True and full["manifest_sha256"] == record.manifest_sha256
    names = {c["name"] for c in full["checks"]}
    if venue == "sunx":
        assert not any(n.startswith("invariant_") for n in names)
        assert any("SunX" in n and "no balances" in n for n in outcome.notes)
        assert closing.calls == []
    else:
        assert {"invariant_running_balance", "invariant_previous_closing"} <= names
        assert closing.calls == [(venue, "acct-1", INTERVAL.start)]
    assert ("invariant_balance_arithmetic" in names) == (venue == "exchangehubx")


def test_missing_manifest_is_a_clear_error(lake: Lake, docs_dir: Path) -> None:
    with pytest.raises(PartitionNotFound, match=r"no manifest for coinbase/acct-1 .*extract the interval first"):
        run(lake, docs_dir, "coinbase")


def _bad(name: str, venue: str = "exchangehubx"):  # type: ignore[no-untyped-def]
    """Clean rows of `venue`, spoiled by `name`; returns (rows, the check expected to fail, a row it names)."""
    rows = ledger_rows(venue)
    if name == "null_key":
        rows[3]["entry_id"] = None
        return rows, "expect_column_values_to_not_be_null(entry_id)", None
    if name == "duplicate_key":
        rows[4]["entry_id"] = rows[2]["entry_id"]
        return rows, "expect_compound_columns_to_be_unique(venue,account,entry_id)", rows[2]["entry_id"]
    if name == "at_interval_end":
        rows[-1]["occurred_at"] = INTERVAL.end  # belongs to the next interval
        return rows, "expect_column_values_to_be_between(occurred_at)", rows[-1]["entry_id"]
    if name == "before_interval":
        rows[0]["occurred_at"] = INTERVAL.start - timedelta(microseconds=1)
        return rows, "expect_column_values_to_be_between(occurred_at)", rows[0]["entry_id"]
    if name == "unknown_entry_type":
        rows[6]["entry_type"] = "bonus"
        return rows, "expect_column_values_to_be_in_set(entry_type)", rows[6]["entry_id"]
    if name == "foreign_account":
        rows[1]["account"] = "acct-2"
        return rows, "expect_column_values_to_be_in_set(account)", rows[1]["entry_id"]
    if name == "entry_seq_gap":
        rows[-1]["entry_seq"] = len(rows) + 3
        return rows, "expect_column_values_to_be_between(entry_seq)", rows[-1]["entry_id"]
    if name == "entry_seq_repeated":
        rows[-1]["entry_seq"] = rows[-2]["entry_seq"]
        return rows, "expect_column_values_to_be_unique(entry_seq)", rows[-1]["entry_id"]
    if name == "null_asset":  # also the first row of no asset for the continuity check: no crash there
        rows[0]["asset"] = None
        return rows, "expect_column_values_to_not_be_null(asset)", None
    if name == "balance_missing":
        rows[5]["balance_after"] = None
        return rows, "expect_column_values_to_not_be_null(balance_after)", rows[5]["entry_id"]
    if name == "balance_arithmetic":
        rows[5]["balance_before"] += Decimal("0.000000000000000001")  # one unit in the 18th decimal
        return rows, "invariant_balance_arithmetic", rows[5]["entry_id"]
    raise AssertionError(name)


@pytest.mark.parametrize(
    "name",
    [
        "null_key",
        "duplicate_key",
        "at_interval_end",
        "before_interval",
        "unknown_entry_type",
        "foreign_account",
        "entry_seq_gap",
        "entry_seq_repeated",
        "balance_missing",
        "null_asset",
        "balance_arithmetic",
    ],
)
def test_each_expectation_fails_on_a_crafted_partition(lake: Lake, docs_dir: Path, name: str) -> None:
    rows, check, entry_id = _bad(name)
    write_ledger(lake, rows)

    outcome = run(lake, docs_dir, "exchangehubx")

    assert not outcome.passed
    failures = failed(outcome)
    assert check in failures, outcome.report()
    if entry_id is not None:
        offending = failures[check].offending_rows  # type: ignore[attr-defined]
        assert entry_id in [r.get("entry_id") for r in offending], offending
    report = outcome.report()
    assert check in report and (entry_id is None or f"entry_id={entry_id}" in report)
    record = read_validation(lake, "exchangehubx", "acct-1", INTERVAL)
    assert record is not None and not record.passed
    assert any(check in f for f in record.failures)


def test_unknown_venue_code_warns_but_passes(lake: Lake, docs_dir: Path) -> None:
    rows = ledger_rows("coinbase")
    rows[2]["venue_entry_type"], rows[2]["entry_type"] = "staking_reward", "other"
    write_ledger(lake, rows)

    outcome = run(lake, docs_dir, "coinbase")

    assert outcome.passed, outcome.report()
    [warning] = outcome.warnings
    assert warning.name == "expect_column_values_to_be_in_set(venue_entry_type)"
    assert warning.offending_rows[0]["venue_entry_type"] == "staking_reward"
    assert "warning" in outcome.summary and "staking_reward" in outcome.report()


@pytest.mark.parametrize("venue", BALANCE_VENUES)
def test_running_balance_catches_a_lost_page_inside_the_partition(lake: Lake, docs_dir: Path, venue: str) -> None:
    rows = ledger_rows(venue, n=30)
    lost = rows[10:14]  # a "page" of four entries the venue or the pipeline lost
    kept = [r for r in rows if r not in lost]
    for seq, r in enumerate(kept):
        r["entry_seq"] = seq  # the extractor numbers what it got: nothing looks missing
    write_ledger(lake, kept)

    outcome = run(lake, docs_dir, venue)

    assert not outcome.passed
    check = failed(outcome)["invariant_running_balance"]
    first_after_gap = {r["asset"]: r["entry_id"] for r in reversed(rows[14:])}  # first kept row per asset
    assert set(first_after_gap.values()) == {r["entry_id"] for r in check.offending_rows}  # type: ignore[attr-defined]
    assert "expected_balance_after" in check.offending_rows[0]  # type: ignore[attr-defined]


@pytest.mark.parametrize("venue", BALANCE_VENUES)
def test_continuity_with_the_previous_interval_catches_a_gap(lake: Lake, docs_dir: Path, venue: str) -> None:
    rows = ledger_rows(venue, n=20, opening={"USDT": Decimal("500"), "BTC": Decimal("2")})
    # The previous run loaded the interval before; its closing balances are in the warehouse.
    warehouse = Closing({"USDT": Decimal("500"), "BTC": Decimal("2")})
    write_ledger(lake, rows)
    assert run(lake, docs_dir, venue, warehouse).passed

    # The first two entries (one per asset) fell between the two runs.
    later = rows[2:]
    for seq, r in enumerate(later):
        r["entry_seq"] = seq
    write_ledger(lake, later)
    outcome = run(lake, docs_dir, venue, warehouse)

    assert not outcome.passed
    assert set(failed(outcome)) == {"invariant_previous_closing"}, outcome.report()
    offending = failed(outcome)["invariant_previous_closing"].offending_rows  # type: ignore[attr-defined]
    assert {r["entry_id"] for r in offending} == {later[0]["entry_id"], later[1]["entry_id"]}
    assert {r["previous_closing"] for r in offending} == {"500", "2"}


def test_previous_closing_skipped_per_asset_without_history(lake: Lake, docs_dir: Path) -> None:
    rows = ledger_rows("pacifica", assets=("USDC",), opening={"USDC": Decimal("7")})
    write_ledger(lake, rows)

    no_history = run(lake, docs_dir, "pacifica", Closing({}))
    not_given = run(lake, docs_dir, "pacifica", None)
    wrong_history = run(lake, docs_dir, "pacifica", Closing({"USDC": Decimal("6.5")}))

    assert no_history.passed and any("skipped for asset USDC" in n for n in no_history.notes)
    assert not_given.passed and any("not checked" in n for n in not_given.notes)
    assert not wrong_history.passed and set(failed(wrong_history)) == {"invariant_previous_closing"}
    assert closing_of(rows)  # the crafted chain really has balances


def _put_table(lake: Lake, table: pa.Table) -> None:
    """Replace the partition's only data file with `table`, keeping the manifest's sha256 consistent."""
    manifest = lake.read_manifest("exchangehubx", "acct-1", INTERVAL)
    assert manifest is not None
    [f] = manifest.files_of("ledger")
    buf = io.BytesIO()
    pq.write_table(table, buf)
    lake.put_bytes(f.key, buf.getvalue())
    body = json.loads(manifest.to_json())
    body["files"][0]["sha256"] = sha256_hex(buf.getvalue())
    body["files"][0]["bytes"] = len(buf.getvalue())
    lake.put_bytes(f"manifests/venue=exchangehubx/account=acct-1/{INTERVAL.id}.json", json.dumps(body).encode())


def test_wrong_types_and_decimal_scale_fail_the_schema_checks(lake: Lake, docs_dir: Path) -> None:
    rows = ledger_rows("exchangehubx")
    write_ledger(lake, rows)
    table = pa.Table.from_pylist(rows, schema=LEDGER_SCHEMA)

    floats = table.set_column(6, "amount", table["amount"].cast(pa.float64()))
    _put_table(lake, floats)
    outcome = run(lake, docs_dir, "exchangehubx")
    assert not outcome.passed and "schema_matches_contract" in failed(outcome)
    assert "column amount is double" in outcome.report()

    scale20 = table.set_column(6, "amount", table["amount"].cast(pa.decimal128(38, 20)))
    _put_table(lake, scale20)
    outcome = run(lake, docs_dir, "exchangehubx")
    assert set(failed(outcome)) == {"decimal_scale_within_18"}, outcome.report()


def test_a_file_changed_after_its_manifest_fails(lake: Lake, docs_dir: Path) -> None:
    rows = ledger_rows("exchangehubx")
    manifest = write_ledger(lake, rows)
    [f] = manifest.files_of("ledger")
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows[:-1], schema=LEDGER_SCHEMA), buf)
    lake.put_bytes(f.key, buf.getvalue())

    outcome = run(lake, docs_dir, "exchangehubx")

    assert not outcome.passed and "files_match_manifest" in failed(outcome)
    assert "differs from the manifest" in outcome.report() and f"{len(rows) - 1} rows" in outcome.report()


def test_several_files_are_read_from_the_manifest_only(lake: Lake, docs_dir: Path) -> None:
    from .partitions import write_partition

    rows = ledger_rows("coinbase", n=25)
    write_partition(lake, "coinbase", "acct-1", {"ledger": rows}, files_per_dataset=3)
    # An object of the interval the manifest does not list (a crashed run's leftover) is ignored.
    stray = pa.Table.from_pylist([{**rows[0], "entry_id": "stray"}], schema=LEDGER_SCHEMA)
    buf = io.BytesIO()
    pq.write_table(stray, buf)
    lake.put_bytes(f"ledger/venue=coinbase/account=acct-1/date=2026-11-01/{INTERVAL.id}-0099.parquet", buf.getvalue())

    outcome = run(lake, docs_dir, "coinbase")

    assert outcome.passed, outcome.report()
    assert outcome.rows == {"ledger": 25}


def test_data_docs_show_the_failure_locally_and_in_the_lake(lake: Lake, docs_dir: Path) -> None:
    rows = ledger_rows("coinbase", n=10)
    del rows[4]
    for seq, r in enumerate(rows):
        r["entry_seq"] = seq
    write_ledger(lake, rows)

    outcome = run(lake, docs_dir, "coinbase")

    assert not outcome.passed
    page = outcome.data_docs_local
    assert page is not None and page.is_file() and page.is_relative_to(docs_dir)
    html = page.read_text()
    assert "invariant_running_balance" in html and "Ledger invariant: running-balance continuity" in html
    assert (docs_dir / "index.html").is_file()
    key = outcome.data_docs_uri.removeprefix(f"s3://{lake.settings.bucket}/")  # type: ignore[union-attr]
    assert key.startswith("data_docs/validations/")
    assert lake.get_bytes(key).decode() == html
    assert lake.head(key)["ContentType"].startswith("text/html")
    assert lake.exists("data_docs/index.html")
    assert any(k.startswith("data_docs/static/") for k in lake.list_keys("data_docs/static/"))
    # The full result is kept beside the Data Docs too, locally and in the lake.
    local_result = docs_dir / "results" / "venue=coinbase" / "account=acct-1" / f"{INTERVAL.id}.json"
    assert json.loads(local_result.read_text())["passed"] is False
    assert lake.exists(f"data_docs/results/venue=coinbase/account=acct-1/{INTERVAL.id}.json")
    assert outcome.data_docs_url and outcome.data_docs_url.endswith(key.removeprefix(""))
