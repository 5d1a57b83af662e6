"""The quality gate of one (venue, account, interval) partition.

validate_partition reads the partition's manifest and only the files it lists, checks each file against the
manifest (sha256, rows) and the contract's Arrow schema (exact types: decimals are decimal128(38, 18), so no
value has more than 18 decimals), computes the ledger/snapshot invariants (ledgerlake.quality.invariants),
runs the dataset's suite from include/expectations with Great Expectations, builds and publishes Data Docs,
and writes the ValidationRecord the load trusts. Plain Python; knows nothing of Airflow.
"""

from __future__ import annotations

import json
import math
import mimetypes
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ledgerlake.config import PROJECT_ROOT
from ledgerlake.interval import Interval
from ledgerlake.lake import (
    Lake,
    Manifest,
    ManifestFile,
    S3Settings,
    ValidationRecord,
    manifest_key,
    partition_prefix,
    sha256_hex,
    write_validation,
)
from ledgerlake.quality.expectations import ExpectationRun, ExpectationRunError, run_suite
from ledgerlake.quality.invariants import (
    PLAIN_COLUMNS,
    InvariantResult,
    balance_snapshot_invariants,
    ledger_invariants,
    position_invariants,
)
from ledgerlake.quality.suites import SuiteSpec, datasets_of, load_suite
from ledgerlake.schema import DATASETS, ENTRY_TYPES

DATA_DOCS_DIR_ENV = "LEDGERLAKE_DATA_DOCS_DIR"
DATA_DOCS_BASE_URL_ENV = "LEDGERLAKE_DATA_DOCS_BASE_URL"
DATA_DOCS_PREFIX = "data_docs/"
OFFENDING_ROWS = 5  # offending rows kept per failed check
REPORT_ROWS = 3  # offending rows shown per failed check in the short summary
PUBLISH_UPLOADS = 4  # Data Docs uploads in flight

PreviousClosing = Callable[[str, str, datetime], dict[str, Decimal]]

# Columns that identify a row in a failure report, per dataset.
_ROW_COLUMNS = {
    "ledger": ("entry_id", "entry_seq", "occurred_at", "asset", "amount", "balance_before", "balance_after"),
    "snapshots/balances": (
        "snapshot_type",
        "snapshot_at",
        "asset",
        "free",
        "locked",
        "borrowed",
        "interest",
        "net_asset",
        "wallet_balance",
        "margin_balance",
        "total",
    ),
    "snapshots/positions": ("snapshot_at", "symbol", "position_amt", "entry_price", "mark_price"),
}


class PartitionNotFound(LookupError):
    """The partition has no manifest in the lake (not extracted yet, or extracted elsewhere)."""


class QualityError(RuntimeError):
    """The gate could not decide (the warehouse or Great Expectations failed); says which partition."""


def default_data_docs_dir() -> Path:
    return Path(os.environ.get(DATA_DOCS_DIR_ENV, PROJECT_ROOT / ".airflow" / "data_docs"))


def validation_result_key(venue: str, account: str, interval: Interval) -> str:
    """The full result JSON, beside the ValidationRecord (validation/.../{interval_id}.json)."""
    return f"{partition_prefix('validation', venue, account)}/{interval.id}.result.json"


def data_docs_url(settings: S3Settings, key: str) -> str:
    """An http(s) address of a published Data Docs object, for the link in the Airflow UI.

    LEDGERLAKE_DATA_DOCS_BASE_URL (a web server or CDN in front of the lake's data_docs/) wins; otherwise the
    object's address on the S3 endpoint (readable when the bucket policy allows it; no presigned URL, since
    that would put a credential into XCom).
    """
    base = os.environ.get(DATA_DOCS_BASE_URL_ENV)
    if base:
        return f"{base.rstrip('/')}/{quote(key.removeprefix(DATA_DOCS_PREFIX))}"
    full = f"{settings.prefix}/{key}" if settings.prefix else key
    if settings.endpoint_url:
        return f"{settings.endpoint_url.rstrip('/')}/{settings.bucket}/{quote(full)}"
    return f"https://{settings.bucket}.s3.{settings.region}.amazonaws.com/{quote(full)}"


@dataclass
class CheckResult:
    """One expectation or invariant on one dataset of the partition."""

    name: str  # e.g. "invariant_running_balance", "expect_column_values_to_not_be_null(entry_id)"
    dataset: str
    description: str
    severity: str  # "critical" blocks the load; "warning" is reported only
    success: bool
    unexpected_count: int | None = None
    element_count: int | None = None
    offending_rows: list[dict[str, str | None]] = field(default_factory=list)
    detail: str | None = None  # observed value, or why the check could not run

    @property
    def blocking(self) -> bool:
        return not self.success and self.severity == "critical"

    def line(self, rows: int = REPORT_ROWS) -> str:
        count = (
            f"{self.unexpected_count} of {self.element_count} rows"
            if self.unexpected_count is not None and self.element_count is not None
            else (self.detail or "failed")
        )
        text = f"{self.name} [{self.dataset}]: {count} — {self.description}"
        if self.detail and self.unexpected_count is not None:
            text += f" ({self.detail})"
        for row in self.offending_rows[:rows]:
            text += "\n    " + ", ".join(f"{k}={v}" for k, v in row.items() if v is not None)
        return text


@dataclass
class ValidationOutcome:
    venue: str
    account: str
    interval: Interval
    passed: bool
    summary: str
    checks: list[CheckResult]
    notes: list[str]
    manifest_sha256: str
    rows: dict[str, int]
    record_key: str
    result_key: str
    data_docs_uri: str | None = None  # s3:// address of this validation's Data Docs page
    data_docs_url: str | None = None  # http(s) address of the same page
    data_docs_local: Path | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if c.blocking]

    @property
    def warnings(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.success and c.severity != "critical"]

    def report(self, rows: int = REPORT_ROWS) -> str:
        """The short summary a failing task shows: each failed check with a few offending rows."""
        lines = [self.summary]
        lines += [c.line(rows) for c in self.failures]
        lines += ["warning: " + c.line(rows) for c in self.warnings]
        if self.data_docs_url:
            lines.append(f"Data Docs: {self.data_docs_url}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Small and JSON-safe, for XCom."""
        return {
            "venue": self.venue,
            "account": self.account,
            "interval_start": self.interval.start.isoformat(),
            "interval_end": self.interval.end.isoformat(),
            "passed": self.passed,
            "summary": self.summary,
            "rows": self.rows,
            "failed": [c.name for c in self.failures],
            "warnings": [c.name for c in self.warnings],
            "manifest_sha256": self.manifest_sha256,
            "validation_key": self.record_key,
            "data_docs_uri": self.data_docs_uri,
            "data_docs_url": self.data_docs_url,
        }


# Reading -----------------------------------------------------------------------------------------------------


def _schema_problems(found: pa.Schema, contract: pa.Schema) -> tuple[list[str], list[str]]:
    """(type/column problems, decimal scale problems) of a file's schema against the contract."""
    problems: list[str] = []
    scale: list[str] = []
    if found.names != contract.names:
        missing = [n for n in contract.names if n not in found.names]
        extra = [n for n in found.names if n not in contract.names]
        problems.append(
            f"columns {found.names} differ from the contract's {contract.names}"
            + (f"; missing {missing}" if missing else "")
            + (f"; unexpected {extra}" if extra else "")
        )
    for want in contract:
        if want.name not in found.names:
            continue
        got = found.field(want.name).type
        if got == want.type:
            continue
        if pa.types.is_decimal(got) and pa.types.is_decimal(want.type):
            scale.append(f"column {want.name} is {got}; the contract says {want.type} (at most 18 decimals)")
        else:
            problems.append(f"column {want.name} is {got}; the contract says {want.type}")
    return problems, scale


def _dictionary_pages(metadata: pq.FileMetaData, name: str) -> bool:
    """Whether every row group stores column `name` dictionary-encoded (so it reads as a dictionary cheaply)."""
    index = metadata.schema.names.index(name) if name in metadata.schema.names else None
    if index is None:
        return False
    return all(metadata.row_group(rg).column(index).has_dictionary_page for rg in range(metadata.num_row_groups))


def _read_dataset(
    lake: Lake, manifest: Manifest, dataset: str, dictionary_columns: frozenset[str] = frozenset()
) -> tuple[pa.Table | None, list[CheckResult]]:
    """The dataset's files as one table of the contract's types, and the file checks.

    dictionary_columns: text columns no check reads other than for equality; those stored dictionary-encoded in
    every file are read as dictionaries (exact; not decoded, and cheap to filter, compare and group).
    """
    contract = DATASETS[dataset][0]
    schema_problems: list[str] = []
    scale_problems: list[str] = []
    files: list[tuple[ManifestFile, bytes, pq.ParquetFile, Future[str]]] = []
    with ThreadPoolExecutor(1) as hasher:  # hashlib releases the GIL: files hash while Parquet decodes
        for f in manifest.files_of(dataset):
            data = lake.get_bytes(f.key)
            digest = hasher.submit(sha256_hex, data)
            parquet = pq.ParquetFile(pa.BufferReader(data))
            problems, scale = _schema_problems(parquet.schema_arrow, contract)
            schema_problems += [f"{f.key}: {p}" for p in problems]
            scale_problems += [f"{f.key}: {p}" for p in scale]
            files.append((f, data, parquet, digest))
        table = None if schema_problems or scale_problems else _read_files(contract, files, dictionary_columns)
        integrity: list[str] = []
        for f, _, parquet, digest in files:
            found = digest.result()
            if found != f.sha256:
                integrity.append(f"{f.key}: sha256 {found[:12]}… differs from the manifest's {f.sha256[:12]}…")
            if parquet.metadata.num_rows != f.rows:
                integrity.append(f"{f.key}: {parquet.metadata.num_rows} rows, the manifest says {f.rows}")
    checks = [
        CheckResult(
            name="files_match_manifest",
            dataset=dataset,
            description="every file the manifest lists has the manifest's sha256 and row count",
            severity="critical",
            success=not integrity,
            detail="; ".join(integrity) or None,
        ),
        CheckResult(
            name="schema_matches_contract",
            dataset=dataset,
            description="column names, order and Arrow types are the contract's (ledgerlake.schema)",
            severity="critical",
            success=not schema_problems,
            detail="; ".join(schema_problems) or None,
        ),
        CheckResult(
            name="decimal_scale_within_18",
            dataset=dataset,
            description="decimal columns are decimal128(38, 18): exact, at most 18 decimals",
            severity="critical",
            success=not scale_problems,
            detail="; ".join(scale_problems) or None,
        ),
    ]
    return table, checks


def _read_files(
    contract: pa.Schema,
    files: list[tuple[ManifestFile, bytes, pq.ParquetFile, Future[str]]],
    dictionary_columns: frozenset[str],
) -> pa.Table:
    if not files:
        return contract.empty_table()
    as_dictionary = [
        field.name
        for field in contract
        if field.name in dictionary_columns
        and pa.types.is_string(field.type)
        and all(_dictionary_pages(parquet.metadata, field.name) for _, _, parquet, _ in files)
    ]
    schema = pa.schema(
        [f.with_type(pa.dictionary(pa.int32(), f.type)) if f.name in as_dictionary else f for f in contract]
    )
    tables = [
        pq.ParquetFile(pa.BufferReader(data), metadata=parquet.metadata, read_dictionary=as_dictionary).read()
        for _, data, parquet, _ in files
    ]
    # Nullability and metadata may differ after a Parquet round trip; the types are the contract's.
    return pa.concat_tables([pa.Table.from_arrays(t.columns, schema=schema) for t in tables])


# Great Expectations frame and results --------------------------------------------------------------------------


def _unique_dictionary(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """The column as one dictionary array holding each value once: files and row groups bring their own
    dictionaries, and a writer may repeat a value in one (a pandas Categorical needs each value once)."""
    combined = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()  # unifies dictionaries
    unique = pc.dictionary_encode(combined.dictionary)
    if len(unique.dictionary) < len(combined.dictionary):
        combined = pa.DictionaryArray.from_arrays(unique.indices.take(combined.indices), unique.dictionary)
    return pa.chunked_array([combined], column.type)


def _positional_dictionary(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """The column as one dictionary array that takes the values themselves as the dictionary (index i is row i):
    exact, built without hashing, and GX filtering the frame copies 4-byte indices, not values. The dictionary
    may repeat values, so it stays Arrow-backed (a pandas Categorical needs each value once).
    """
    values = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()  # one chunk per file
    # The values' validity bitmap serves the indices as is (index i is null where value i is), offset included.
    indices = pa.py_buffer(np.arange(-values.offset, len(values), dtype=np.int32))
    positions = pa.Array.from_buffers(
        pa.int32(), len(values), [values.buffers()[0], indices], values.null_count, values.offset
    )
    return pa.chunked_array([pa.DictionaryArray.from_arrays(positions, values)])


def _numpy_backed(t: pa.DataType) -> bool:
    return bool(pa.types.is_timestamp(t) or pa.types.is_integer(t))


def _frame(table: pa.Table, result: InvariantResult, compared_columns: frozenset[str] | None) -> Any:
    """The pandas frame GX validates: timestamps and integers as NumPy (GX vectorizes comparisons on those),
    columns read as dictionaries (_read_files) as pandas Categoricals, everything else Arrow-backed (no copy, no
    Python Decimal objects).

    GX copies the whole frame for each filter it applies (e.g. to the non-null rows of a column), so a column
    whose values no expectation compares (compared_columns; None: unknown) goes in as a positional dictionary:
    the same values and nulls, cheap to copy. Such columns are only checked for nulls or presence.
    Categoricals are cheap to copy too, and GX compares and hashes their codes instead of the text.
    """
    import pandas as pd

    for inv in result.invariants.values():
        table = table.append_column(inv.column, inv.values)
    columns: dict[str, Any] = {}
    for f, column in zip(table.schema, table.columns, strict=True):
        if _numpy_backed(f.type):
            columns[f.name] = column.to_pandas()
        elif pa.types.is_dictionary(f.type):
            columns[f.name] = _unique_dictionary(column).to_pandas()
        elif compared_columns is None or f.name in compared_columns or table.num_rows == 0:
            columns[f.name] = pd.arrays.ArrowExtensionArray(column)
        else:
            columns[f.name] = pd.arrays.ArrowExtensionArray(_positional_dictionary(column))
    return pd.DataFrame(columns, copy=False)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return f"{value.normalize():f}" if value else "0"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _rows(table: pa.Table, mask: pa.Array, columns: list[str], context: dict[str, pa.Array]) -> list[dict[str, Any]]:
    picked = pc.indices_nonzero(pc.fill_null(mask, False))[:OFFENDING_ROWS]
    if len(picked) == 0:
        return []
    rows = table.select([c for c in columns if c in table.column_names]).take(picked).to_pylist()
    for name, values in context.items():
        extra = values.take(picked).to_pylist()
        for row, v in zip(rows, extra, strict=True):
            row[name] = v
    return [{k: _text(v) for k, v in row.items()} for row in rows]


def _missing(value: Any) -> bool:
    """None, NaN, pandas NA or NaT: how GX reports a null."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return True
    return isinstance(value, float) and math.isnan(value)


def _value_mask(column: pa.ChunkedArray, values: list[Any]) -> pa.Array | None:
    """Rows whose value is one of GX's partial unexpected values (None: nulls)."""
    present = [v for v in values if not _missing(v)]
    mask = pc.is_null(column) if len(present) < len(values) else pa.array([False] * len(column))
    value_type = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
    if present:
        try:
            wanted = pa.array(present).cast(value_type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            try:
                wanted = pa.array([str(v) for v in present]).cast(value_type)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                return None
        mask = pc.or_(mask, pc.is_in(column, value_set=wanted))
    return mask


def _offending(
    table: pa.Table, result: InvariantResult, exp: dict[str, Any], columns: list[str]
) -> list[dict[str, Any]]:
    kwargs = exp["kwargs"]
    column = kwargs.get("column")
    partial = list(exp["result"].get("partial_unexpected_list") or [])
    if column in result.invariants:
        inv = result.invariants[column]
        return _rows(table, pc.equal(inv.values, False), columns, inv.context)
    if exp["type"] == "expect_compound_columns_to_be_unique" and partial:
        mask = pa.array([True] * table.num_rows)
        for col in kwargs["column_list"]:
            col_mask = _value_mask(table[col], [row.get(col) for row in partial if isinstance(row, dict)])
            if col_mask is None:
                return []
            mask = pc.and_(mask, col_mask)
        return _rows(table, mask, [*kwargs["column_list"], *columns], {})
    if column and column in table.column_names and (partial or exp["result"].get("unexpected_count")):
        mask = _value_mask(table[column], partial)
        return [] if mask is None else _rows(table, mask, [*columns, column], {})
    return []


def _checks_from_run(run: ExpectationRun, table: pa.Table, result: InvariantResult, dataset: str) -> list[CheckResult]:
    columns = [c for c in _ROW_COLUMNS[dataset] if c in table.column_names]
    checks = []
    for exp in run.results:
        kwargs = exp["kwargs"]
        target = kwargs.get("column") or ",".join(kwargs.get("column_list") or kwargs.get("column_set") or [])
        name = (
            kwargs["column"] if str(kwargs.get("column", "")).startswith("invariant_") else f"{exp['type']}({target})"
        )
        res = exp["result"]
        observed = res.get("observed_value")
        checks.append(
            CheckResult(
                name=name,
                dataset=dataset,
                description=exp["description"] or exp["type"],
                severity=exp["severity"],
                success=exp["success"],
                unexpected_count=res.get("unexpected_count"),
                element_count=res.get("element_count"),
                offending_rows=[] if exp["success"] else _offending(table, result, exp, columns),
                detail=exp["exception"] or (None if exp["success"] or observed is None else f"observed {observed}"),
            )
        )
    return checks


# The gate ------------------------------------------------------------------------------------------------------


def _invariants(dataset: str, table: pa.Table, spec: SuiteSpec, previous: dict[str, Decimal] | None) -> InvariantResult:
    if dataset == "ledger":
        return ledger_invariants(table, set(spec.invariant_columns), previous)
    if dataset == "snapshots/balances":
        return balance_snapshot_invariants(table)
    return position_invariants(table)


def _parameters(spec: SuiteSpec, venue: str, account: str, interval: Interval, table: pa.Table) -> dict[str, Any]:
    params: dict[str, Any] = {
        "partition_venue": [venue],
        "partition_account": [account],
        "interval_start": interval.start,
        "interval_end": interval.end,
        "last_entry_seq": max(table.num_rows - 1, 0),
        "unified_entry_types": list(ENTRY_TYPES),
    }
    codes = spec.documented_codes()
    if codes is not None:
        params["documented_venue_entry_types"] = codes
    return params


def _publish_docs(lake: Lake, docs_dir: Path, files: list[Path]) -> None:
    """Copy the Data Docs files a validation (re)wrote to the lake under data_docs/; the static assets only
    when the lake lacks them (they are the same for every page). A few uploads at a time: the first page in a
    lake brings some twenty static files."""
    static_in_lake: set[str] | None = None
    uploads: list[tuple[str, Path]] = []
    for path in files:
        rel = path.relative_to(docs_dir).as_posix()
        key = DATA_DOCS_PREFIX + rel
        if rel.startswith("static/"):
            if static_in_lake is None:
                static_in_lake = set(lake.list_keys(DATA_DOCS_PREFIX + "static/"))
            if key in static_in_lake:
                continue
        uploads.append((key, path))

    def upload(item: tuple[str, Path]) -> None:
        key, path = item
        lake.put_bytes(key, path.read_bytes(), mimetypes.guess_type(path.name)[0] or "application/octet-stream")

    with ThreadPoolExecutor(PUBLISH_UPLOADS) as pool:
        list(pool.map(upload, uploads))


def _summary(venue: str, account: str, interval: Interval, rows: dict[str, int], checks: list[CheckResult]) -> str:
    failed = [c for c in checks if c.blocking]
    warned = [c for c in checks if not c.success and c.severity != "critical"]
    counted = ", ".join(f"{n} {d} rows" for d, n in rows.items()) or "no rows"
    head = f"{venue}/{account} {interval}: "
    if failed:
        text = head + f"FAILED {len(failed)} of {len(checks)} checks on {counted}: " + ", ".join(c.name for c in failed)
    else:
        text = head + f"passed {len(checks)} checks on {counted}"
    if warned:
        text += f"; {len(warned)} warning(s): " + ", ".join(c.name for c in warned)
    return text


def validate_partition(
    lake: Lake,
    venue: str,
    account: str,
    interval: Interval,
    *,
    previous_closing: PreviousClosing | None = None,
    data_docs_dir: Path | None = None,
) -> ValidationOutcome:
    """Check one partition and write its ValidationRecord (validation/...) and full result; see module doc.

    previous_closing(venue, account, before) returns the closing balance per asset of the data already in the
    warehouse before `before` (Warehouse.closing_balances); None skips continuity with the previous interval.
    Raises PartitionNotFound when the lake has no manifest for the partition.
    """
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    key = manifest_key(venue, account, interval)
    if not lake.exists(key):
        raise PartitionNotFound(
            f"no manifest for {venue}/{account} {interval} at {lake.uri(key)}: extract the interval first"
        )
    # One read gives both the manifest and the sha256 the record names (no race with a concurrent re-run).
    manifest_bytes = lake.get_bytes(key)
    manifest = Manifest.from_json(manifest_bytes)
    manifest_sha256 = sha256_hex(manifest_bytes)
    docs_dir = (data_docs_dir or default_data_docs_dir()).resolve()

    checks: list[CheckResult] = []
    notes: list[str] = []
    rows: dict[str, int] = {}
    runs: list[ExpectationRun] = []
    previous: dict[str, Decimal] | None = None
    run_name = f"{venue}.{account}.{interval.id}"
    for dataset in datasets_of(venue):
        spec = load_suite(dataset, venue)
        t = time.perf_counter()
        typed = spec.typed_columns
        encodable = (
            frozenset()
            if typed is None
            else frozenset(DATASETS[dataset][0].names) - typed - set(PLAIN_COLUMNS[dataset])
        )
        table, file_checks = _read_dataset(lake, manifest, dataset, encodable)
        seconds[f"read {dataset}"] = time.perf_counter() - t
        checks += file_checks
        if table is None:
            notes.append(f"{dataset}: the files do not have the contract's schema, so no further check ran on them")
            continue
        rows[dataset] = table.num_rows
        if dataset == "ledger" and "invariant_previous_closing" in spec.invariant_columns and previous_closing:
            try:
                previous = {a: Decimal(v) for a, v in previous_closing(venue, account, interval.start).items()}
            except Exception as exc:
                raise QualityError(
                    f"{venue}/{account} {interval}: reading the previous interval's closing balances failed: {exc}"
                ) from exc
        if spec.no_balances_note():
            notes.append(spec.no_balances_note() or "")
        t = time.perf_counter()
        inv = _invariants(dataset, table, spec, previous)
        notes += inv.notes
        seconds[f"invariants {dataset}"] = time.perf_counter() - t
        t = time.perf_counter()
        frame = _frame(inv.table, inv, spec.compared_columns)
        try:
            run = run_suite(spec, frame, _parameters(spec, venue, account, interval, table), run_name, docs_dir)
        except ExpectationRunError as exc:
            raise QualityError(f"{venue}/{account} {interval}: {exc}") from exc
        seconds[f"great_expectations {dataset}"] = time.perf_counter() - t
        runs.append(run)
        checks += _checks_from_run(run, inv.table, inv, dataset)

    passed = not any(c.blocking for c in checks)
    summary = _summary(venue, account, interval, rows, checks)
    validated_at = datetime.now(UTC).isoformat()
    page = next((r.page for r in runs if r.page is not None and not r.success), None) or next(
        (r.page for r in runs if r.page is not None), None
    )
    data_docs_uri = data_docs_url_ = None
    if page is not None:
        page_key = DATA_DOCS_PREFIX + page.relative_to(docs_dir).as_posix()
        data_docs_uri, data_docs_url_ = lake.uri(page_key), data_docs_url(lake.settings, page_key)

    outcome = ValidationOutcome(
        venue=venue,
        account=account,
        interval=interval,
        passed=passed,
        summary=summary,
        checks=checks,
        notes=notes,
        manifest_sha256=manifest_sha256,
        rows=rows,
        record_key="",
        result_key=validation_result_key(venue, account, interval),
        data_docs_uri=data_docs_uri,
        data_docs_url=data_docs_url_,
        data_docs_local=page,
        seconds=seconds,
    )
    t = time.perf_counter()
    full = {
        "venue": venue,
        "account": account,
        "interval_start": interval.start.isoformat(),
        "interval_end": interval.end.isoformat(),
        "manifest_key": key,
        "manifest_sha256": manifest_sha256,
        "passed": passed,
        "summary": summary,
        "validated_at": validated_at,
        "rows": rows,
        "notes": notes,
        "checks": [asdict(c) for c in checks],
        "data_docs_uri": data_docs_uri,
        "data_docs_url": data_docs_url_,
        "great_expectations": {r.suite.gx_name: r.full for r in runs},
    }
    body = json.dumps(full, indent=1, sort_keys=True, default=str).encode()
    local_result = docs_dir / "results" / f"venue={venue}" / f"account={account}" / f"{interval.id}.json"
    local_result.parent.mkdir(parents=True, exist_ok=True)
    local_result.write_bytes(body)
    lake.put_bytes(outcome.result_key, body, "application/json")
    changed = sorted({p for r in runs for p in r.changed_files} | {local_result})
    _publish_docs(lake, docs_dir, changed)
    outcome.record_key = write_validation(
        lake,
        ValidationRecord(
            venue=venue,
            account=account,
            interval_start=interval.start.isoformat(),
            interval_end=interval.end.isoformat(),
            manifest_sha256=manifest_sha256,
            passed=passed,
            summary=summary,
            validated_at=validated_at,
            failures=tuple(c.line() for c in outcome.failures),
            data_docs_uri=data_docs_uri,
        ),
    )
    seconds["publish"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - started
    return outcome
