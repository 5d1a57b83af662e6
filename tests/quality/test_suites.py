"""The suite files in include/expectations agree with the contract (ledgerlake.schema and unified-row.md),
every expectation in them is valid for Great Expectations, and an empty partition passes."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from ledgerlake.config import INCLUDE_DIR
from ledgerlake.lake import Lake
from ledgerlake.quality import validate_partition
from ledgerlake.quality.suites import SUITE_FILES, SuiteError, load_suite
from ledgerlake.schema import DATASETS, ENTRY_TYPES, LEDGER_VENUES

from .partitions import INTERVAL, write_partition

CONTRACT = (INCLUDE_DIR / "contracts" / "unified-row.md").read_text()


def _venues(dataset: str) -> tuple[str, ...]:
    return LEDGER_VENUES if dataset == "ledger" else ("binance",)


@pytest.mark.parametrize("dataset", sorted(SUITE_FILES))
def test_suite_columns_and_keys_are_the_contracts(dataset: str) -> None:
    schema, keys = DATASETS[dataset]
    for venue in _venues(dataset):
        spec = load_suite(dataset, venue)
        by_type = {e["type"]: e["kwargs"] for e in spec.expectations}
        assert by_type["expect_table_columns_to_match_set"]["column_set"] == schema.names
        assert tuple(by_type["expect_compound_columns_to_be_unique"]["column_list"]) == keys
        not_null = {
            e["kwargs"]["column"] for e in spec.expectations if e["type"] == "expect_column_values_to_not_be_null"
        }
        assert set(keys) <= not_null


@pytest.mark.parametrize("dataset", sorted(SUITE_FILES))
def test_every_expectation_is_valid_for_great_expectations(dataset: str) -> None:
    from ledgerlake.quality.expectations import build_gx_suite

    for venue in _venues(dataset):
        spec = load_suite(dataset, venue)
        suite = build_gx_suite(spec)
        assert len(suite.expectations) == len(spec.expectations) > 5


def test_documented_codes_cover_the_contracts_type_tables() -> None:
    """Every code the contract maps to a unified type is a documented code of its venue (so only codes
    the contract does not know warn)."""
    section = {v: CONTRACT.split(f"**{v}**", 1)[1].split("\n**", 1)[0] for v in LEDGER_VENUES}
    for venue in LEDGER_VENUES:
        codes = set(load_suite("ledger", venue).documented_codes() or [])
        mapping = next(line for line in section[venue].split("\n- ") if "-> entry_type" in line)
        table = mapping.split(":", 1)[1].split("(", 1)[0].replace("\n", " ")
        contract_codes = set()
        for segment in re.split(r"[,;.]", table):  # "1 deposit", "5 6 7 8 fee", "match trade"
            tokens = segment.split()
            if len(tokens) >= 2 and tokens[-1] in ENTRY_TYPES:
                contract_codes |= set(tokens[:-1])
        assert len(contract_codes) == {"exchangehubx": 16, "coinbase": 5, "pacifica": 10, "sunx": 29}[venue]
        assert contract_codes <= codes, (venue, contract_codes - codes)


def test_venue_filter_and_missing_suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "invariant_balance_arithmetic" in load_suite("ledger", "exchangehubx").invariant_columns
    assert "invariant_balance_arithmetic" not in load_suite("ledger", "coinbase").invariant_columns
    assert load_suite("ledger", "sunx").invariant_columns == ()
    assert load_suite("ledger", "sunx").no_balances_note()
    monkeypatch.setenv("LEDGERLAKE_EXPECTATIONS_DIR", str(tmp_path))
    with pytest.raises(SuiteError, match=r"ledger_rows\.json does not exist"):
        load_suite("ledger", "sunx")


def test_an_empty_partition_passes(lake: Lake, docs_dir: Path) -> None:
    write_partition(lake, "exchangehubx", "acct-1", {"ledger": []})
    outcome = validate_partition(lake, "exchangehubx", "acct-1", INTERVAL, data_docs_dir=docs_dir)
    assert outcome.passed, outcome.report()
    assert outcome.rows == {"ledger": 0}


def test_value_columns_are_the_columns_expectations_read() -> None:
    """Columns outside compared_columns reach GX as positional dictionaries (only their nulls or presence are
    checked), so value_columns must name every column an expectation reads, compared_columns every column read
    beyond null-ness, and both give up (None) when a row_condition could read any."""
    spec = load_suite("ledger", "exchangehubx")
    columns, compared = spec.value_columns, spec.compared_columns
    assert columns is not None and compared is not None
    assert {"venue", "account", "entry_id", "entry_seq", "occurred_at", "entry_type", "venue_entry_type"} <= compared
    assert set(spec.invariant_columns) <= compared
    assert {"amount", "balance_before", "balance_after"} <= columns - compared  # not-null only
    assert not {"details", "raw_uri", "reference_id", "instrument", "ingested_at"} & columns
    conditioned = dict(spec.expectations[1], kwargs={**spec.expectations[1]["kwargs"], "row_condition": "x"})
    assert replace(spec, expectations=(*spec.expectations, conditioned)).value_columns is None
    assert replace(spec, expectations=(*spec.expectations, conditioned)).compared_columns is None
    ranged = {"type": "expect_column_values_to_be_between", "kwargs": {"column": "amount", "min_value": 0}}
    assert "amount" in (replace(spec, expectations=(*spec.expectations, ranged)).compared_columns or ())


def test_typed_columns_keep_their_type_for_great_expectations() -> None:
    """Text columns outside typed_columns may reach GX dictionary-encoded (as pandas Categoricals), which only
    expectations comparing values for equality or null-ness see through: every column a type, range or order
    check reads must be typed, and an equality-only column must not be."""
    spec = load_suite("ledger", "exchangehubx")
    typed = spec.typed_columns
    assert typed is not None
    assert {"entry_id", "entry_seq", "occurred_at"} <= typed  # be_of_type, be_between
    assert not {"venue", "account", "asset", "entry_type", "venue_entry_type"} & typed  # not-null, in-set, unique
    assert not set(spec.invariant_columns) & typed
    ranged = {"type": "expect_column_value_lengths_to_be_between", "kwargs": {"column": "asset", "min_value": 1}}
    assert "asset" in (replace(spec, expectations=(*spec.expectations, ranged)).typed_columns or ())
    conditioned = dict(spec.expectations[1], kwargs={**spec.expectations[1]["kwargs"], "row_condition": "x"})
    assert replace(spec, expectations=(*spec.expectations, conditioned)).typed_columns is None
