"""The expectation suites, as reviewed files in include/expectations (one per dataset).

A suite file is a Great Expectations 1.x suite in JSON (name, expectations with type/kwargs/meta/description/
severity) plus `dataset` (the lake dataset it checks) and `meta` (venue code lists and notes). An expectation
with `meta.venues` applies to those venues only; `invariant_*` columns are computed by
ledgerlake.quality.invariants. Reading a suite needs no Great Expectations import.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledgerlake.config import INCLUDE_DIR

EXPECTATIONS_DIR_ENV = "LEDGERLAKE_EXPECTATIONS_DIR"
INVARIANT_PREFIX = "invariant_"
# Expectation kwargs that name columns whose values the expectation reads (column_set names columns only).
VALUE_COLUMN_KWARGS = ("column", "column_A", "column_B", "column_list")
# Expectations that read values only for null-ness, and those that read them only for equality and null-ness:
# Great Expectations answers the same on any exact encoding of such a column (e.g. text as a pandas Categorical),
# unlike type, range or order checks.
NULL_EXPECTATIONS = frozenset({"expect_column_values_to_not_be_null", "expect_column_values_to_be_null"})
EQUALITY_EXPECTATIONS = NULL_EXPECTATIONS | frozenset(
    {
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_not_be_in_set",
        "expect_column_values_to_be_unique",
        "expect_compound_columns_to_be_unique",
    }
)

# Lake dataset -> suite file. Binance partitions carry both snapshot datasets; the others carry ledger rows.
SUITE_FILES = {
    "ledger": "ledger_rows.json",
    "snapshots/balances": "balance_snapshots.json",
    "snapshots/positions": "positions.json",
}


class SuiteError(ValueError):
    """A suite file is missing or malformed; the message names the file."""


def expectations_dir() -> Path:
    return Path(os.environ.get(EXPECTATIONS_DIR_ENV, INCLUDE_DIR / "expectations"))


def datasets_of(venue: str) -> tuple[str, ...]:
    """The datasets a (venue, account, interval) partition holds."""
    return ("snapshots/balances", "snapshots/positions") if venue == "binance" else ("ledger",)


def _read_columns(expectation: dict[str, Any]) -> list[str]:
    """The columns an expectation's kwargs name as read (VALUE_COLUMN_KWARGS)."""
    kwargs = expectation["kwargs"]
    names: list[str] = []
    for value in (kwargs[k] for k in VALUE_COLUMN_KWARGS if k in kwargs):
        names += [value] if isinstance(value, str) else value
    return names


@dataclass(frozen=True)
class SuiteSpec:
    """One suite file, narrowed to one venue."""

    name: str
    dataset: str
    venue: str
    path: Path
    expectations: tuple[dict[str, Any], ...]
    meta: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def gx_name(self) -> str:
        """The suite's name in the Great Expectations project: one per (suite, venue), since filtering differs."""
        return f"{self.name}.{self.venue}"

    @property
    def invariant_columns(self) -> tuple[str, ...]:
        cols = (str(e["kwargs"].get("column", "")) for e in self.expectations)
        return tuple(c for c in cols if c.startswith(INVARIANT_PREFIX))

    @property
    def value_columns(self) -> frozenset[str] | None:
        """The columns whose values some expectation reads, or None when the kwargs cannot tell (a row_condition
        may read any column; so may an expectation that names no column and is not table-level)."""
        names: set[str] = set()
        for exp in self.expectations:
            named = _read_columns(exp)
            if "row_condition" in exp["kwargs"] or (not named and not exp["type"].startswith("expect_table_")):
                return None
            names.update(named)
        return frozenset(names)

    @property
    def typed_columns(self) -> frozenset[str] | None:
        """The value columns some expectation reads other than for equality (EQUALITY_EXPECTATIONS): their exact
        type matters to it. The other columns may reach GX dictionary-encoded. None when value_columns is."""
        return self._read_except(EQUALITY_EXPECTATIONS)

    @property
    def compared_columns(self) -> frozenset[str] | None:
        """The value columns some expectation reads beyond null-ness (NULL_EXPECTATIONS); the others only need
        their nulls where they are. None when value_columns is."""
        return self._read_except(NULL_EXPECTATIONS)

    def _read_except(self, kinds: frozenset[str]) -> frozenset[str] | None:
        if self.value_columns is None:
            return None
        return frozenset(c for e in self.expectations if e["type"] not in kinds for c in _read_columns(e))

    def documented_codes(self) -> list[str] | None:
        """The venue's documented venue_entry_type codes, or None when the suite lists none for the venue."""
        codes = (self.meta.get("documented_venue_entry_types") or {}).get(self.venue)
        return sorted(codes["codes"]) if codes else None

    def no_balances_note(self) -> str | None:
        note = (self.meta.get("no_balances") or {}).get(self.venue)
        return str(note) if note else None

    def describe(self, expectation: dict[str, Any]) -> str:
        return str(expectation.get("description") or expectation["type"])


def load_suite(dataset: str, venue: str, directory: Path | None = None) -> SuiteSpec:
    path = (directory or expectations_dir()) / SUITE_FILES[dataset]
    try:
        body = json.loads(path.read_text())
    except FileNotFoundError:
        raise SuiteError(f"expectation suite {path} does not exist (set {EXPECTATIONS_DIR_ENV}?)") from None
    except json.JSONDecodeError as exc:
        raise SuiteError(f"expectation suite {path} is not valid JSON: {exc}") from None
    if body.get("dataset") != dataset:
        raise SuiteError(f"expectation suite {path} is for dataset {body.get('dataset')!r}, not {dataset!r}")
    chosen: list[dict[str, Any]] = []
    for i, exp in enumerate(body.get("expectations") or []):
        if not isinstance(exp, dict) or not isinstance(exp.get("type"), str) or not isinstance(exp.get("kwargs"), dict):
            raise SuiteError(f"{path}: expectations[{i}] needs a 'type' (text) and 'kwargs' (object)")
        venues = (exp.get("meta") or {}).get("venues")
        if venues is None or venue in venues:
            chosen.append(exp)
    notes = body.get("notes") or ()
    return SuiteSpec(
        name=str(body["name"]),
        dataset=dataset,
        venue=venue,
        path=path,
        expectations=tuple(chosen),
        meta=dict(body.get("meta") or {}),
        notes=tuple([notes] if isinstance(notes, str) else notes),
    )
