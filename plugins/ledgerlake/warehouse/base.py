"""The warehouse interface and the load every backend shares.

A load replaces exactly one (venue, account, interval) with what its manifest lists, in one transaction,
and only when the quality gate passed that very manifest. Backends supply the connection, the transaction
and the bulk insert; everything that decides *what* is loaded lives here, once.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ledgerlake.interval import Interval
from ledgerlake.lake import Lake, LakeError, Manifest, ManifestFile, manifest_key, read_validation, sha256_hex
from ledgerlake.schema import DATASETS
from ledgerlake.warehouse.settings import WarehouseSettings
from ledgerlake.warehouse.sql import VIEWS, SchemaScripts, schema_scripts

log = logging.getLogger(__name__)

# Lake objects fetched and parsed at once by one load.
READ_THREADS = 4


@dataclass(frozen=True)
class Table:
    """A warehouse table fed by one lake dataset."""

    name: str
    dataset: str
    time_column: str  # the column that places a row in an interval

    @property
    def schema(self) -> pa.Schema:
        return DATASETS[self.dataset][0]

    @property
    def columns(self) -> list[str]:
        return list(self.schema.names)

    @property
    def key(self) -> tuple[str, ...]:
        return DATASETS[self.dataset][1]


TABLES = (
    Table("ledger_entries", "ledger", "occurred_at"),
    Table("balance_snapshots", "snapshots/balances", "snapshot_at"),
    Table("position_snapshots", "snapshots/positions", "snapshot_at"),
)


class WarehouseError(RuntimeError):
    """A warehouse operation failed; the message says which partition and why, never a password."""


class LoadRefused(WarehouseError):
    """The partition is not fit to load (no manifest, not validated, validation failed or stale)."""


@dataclass(frozen=True)
class LoadSummary:
    venue: str
    account: str
    interval: Interval
    manifest_sha256: str
    inserted: dict[str, int]  # table -> rows now held for the interval
    deleted: dict[str, int]  # table -> rows the load replaced
    seconds: float

    @property
    def rows(self) -> int:
        return sum(self.inserted.values())

    def to_dict(self) -> dict[str, Any]:
        """Small and JSON-friendly (for XCom and logs)."""
        return {
            "venue": self.venue,
            "account": self.account,
            "interval_start": self.interval.start.isoformat(),
            "interval_end": self.interval.end.isoformat(),
            "manifest_sha256": self.manifest_sha256,
            "rows": self.rows,
            "inserted": dict(self.inserted),
            "deleted": dict(self.deleted),
            "seconds": round(self.seconds, 3),
        }


@dataclass
class _Partition:
    """What one load reads from the lake before it opens its transaction."""

    manifest: Manifest
    manifest_sha256: str
    # table, key, rows the manifest lists, the file as the backend's _prepare_file keeps it
    files: list[tuple[Table, str, int, Any]] = field(default_factory=list)


class Warehouse(ABC):
    """One warehouse connection. Use as a context manager, or call close()."""

    placeholder = "?"  # how the backend marks a query parameter

    def __init__(self, settings: WarehouseSettings) -> None:
        self.settings = settings

    # What a backend provides ------------------------------------------------------------------------

    @abstractmethod
    def _execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; return the rows it changed (or -1)."""

    @abstractmethod
    def _query(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        """Run one query; return its rows as Arrow."""

    @abstractmethod
    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """Commit on success, roll back on any exception."""

    @abstractmethod
    def _insert_arrow(self, table: Table, rows: pa.Table) -> None:
        """Bulk-insert rows (already in the table's Arrow schema) inside the open transaction."""

    def _prepare_file(self, data: bytes) -> Any:
        """One fetched lake file (sha256 already checked) as this backend's _replace_rows takes it. Runs in the
        fetch threads, before the transaction. This default decodes it to Arrow (the decoding releases the GIL)."""
        return pq.read_table(pa.BufferReader(data))

    def _replace_rows(
        self, table: Table, venue: str, account: str, interval: Interval, files: Sequence[tuple[str, int, Any]]
    ) -> tuple[int, int]:
        """Inside the load's transaction: make the table's rows of (venue, account, interval) exactly those of
        `files` ((key, rows its manifest lists, what _prepare_file made of it)). Returns (rows replaced, rows
        written). This default deletes the range, then bulk-inserts each file's conformed rows; the table's
        primary key refuses a key given twice or loaded under another interval."""
        deleted = self._execute(
            self._sql(
                f"DELETE FROM {table.name} WHERE venue = ? AND account = ? "
                f"AND {table.time_column} >= ? AND {table.time_column} < ?"
            ),
            [venue, account, interval.start, interval.end],
        )
        written = 0
        for key, expected_rows, parsed in files:
            rows = self._conform(table, key, parsed, expected_rows, venue, account, interval)
            self._insert_arrow(table, rows)
            written += rows.num_rows
        return deleted, written

    def _lock_partition(self, venue: str, account: str) -> None:
        """Serialise loads of one (venue, account) across processes (a no-op where the engine already does)."""
        return None

    def _schema_locked(self) -> None:
        """Serialise schema set-up across processes (a no-op where the engine already does)."""
        return None

    def _upgrade_tables(self, scripts: SchemaScripts) -> None:
        """Inside the schema set-up's transaction, before the tables are created: bring tables an earlier
        version created to what `scripts` define (a no-op where nothing changed)."""
        return None

    @abstractmethod
    def close(self) -> None: ...

    # Shared ----------------------------------------------------------------------------------------

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _sql(self, sql: str) -> str:
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    def ensure_schema(self, scripts: SchemaScripts | None = None) -> None:
        """Create missing tables and indexes; (re)build the views when their SQL changed."""
        scripts = scripts or schema_scripts(self.settings.kind)
        with self._transaction():
            self._schema_locked()
            self._upgrade_tables(scripts)
            for statement in scripts.tables:
                self._execute(statement)
            current = self._query("SELECT sha256 FROM ledgerlake_schema WHERE name = 'views'").to_pylist()
            if current and current[0]["sha256"] == scripts.views_sha256:
                return
            for view in reversed(VIEWS):
                self._execute(f"DROP VIEW IF EXISTS {view}")
            for statement in scripts.views:
                self._execute(statement)
            self._execute("DELETE FROM ledgerlake_schema WHERE name = 'views'")
            self._execute(
                self._sql("INSERT INTO ledgerlake_schema (name, sha256) VALUES ('views', ?)"), [scripts.views_sha256]
            )
        log.info("warehouse %s: views (re)built", self.settings.describe())

    def query(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        """Any read query, as Arrow (decimals exact, times in UTC)."""
        return self._query(self._sql(sql) if params else sql, params)

    def closing_balances(self, venue: str, account: str, before: datetime) -> dict[str, Decimal]:
        """Per asset, balance_after of the last ledger entry before `before` that has one, taken only from
        the loaded intervals that lead without a gap up to `before`.

        A backfill loads its days in any order: with day D still missing, the last balance before D+1 would
        be D-1's and the comparison would fail on a gap that is only "not loaded yet". So an asset whose last
        balance lies before the contiguous run of loaded intervals gets no closing balance (the gate skips it
        and says so). Ordered by (occurred_at, entry_seq): entries sharing a time share a partition, whose
        entry_seq is the venue's order. The quality gate compares the next interval's first balances with these."""
        if before.tzinfo is None:
            raise ValueError(f"closing_balances: {before.isoformat()} has no time zone; ledgerlake works in UTC")
        before = before.astimezone(UTC)
        loads = self._query(
            self._sql(
                "SELECT interval_start, interval_end FROM loads WHERE venue = ? AND account = ? AND interval_start < ? "
                "ORDER BY interval_end DESC"
            ),
            [venue, account, before],
        ).to_pylist()
        covered_from = before
        for load in loads:  # newest first: walk back while each interval ends where the covered run starts
            start, end = load["interval_start"].astimezone(UTC), load["interval_end"].astimezone(UTC)
            if end >= covered_from > start:
                covered_from = start
            elif end < covered_from:
                break
        if covered_from >= before:
            return {}
        rows = self._query(
            self._sql(
                """
                SELECT asset, balance_after FROM (
                    SELECT asset, balance_after,
                           ROW_NUMBER() OVER (
                               PARTITION BY asset ORDER BY occurred_at DESC, entry_seq DESC, entry_id DESC
                           ) AS newest_first
                    FROM ledger_entries
                    WHERE venue = ? AND account = ? AND occurred_at >= ? AND occurred_at < ?
                      AND balance_after IS NOT NULL
                ) latest
                WHERE newest_first = 1
                """
            ),
            [venue, account, covered_from, before],
        ).to_pylist()
        return {r["asset"]: r["balance_after"] for r in rows}

    def load_partition(self, lake: Lake, venue: str, account: str, interval: Interval) -> LoadSummary:
        """Replace (venue, account, interval) in every table with the validated manifest's rows, atomically."""
        where = f"{venue}/{account} {interval}"
        started = time.monotonic()
        partition = self._read_partition(lake, venue, account, interval)
        deleted: dict[str, int] = {}
        inserted: dict[str, int] = {t.name: 0 for t in TABLES}
        try:
            with self._transaction():
                self._lock_partition(venue, account)
                for table in TABLES:
                    files = [(key, rows, kept) for t, key, rows, kept in partition.files if t is table]
                    deleted[table.name], inserted[table.name] = self._replace_rows(
                        table, venue, account, interval, files
                    )
                self._execute(
                    self._sql(
                        "DELETE FROM loads WHERE venue = ? AND account = ? AND interval_start = ? AND interval_end = ?"
                    ),
                    [venue, account, interval.start, interval.end],
                )
                self._execute(
                    self._sql(
                        "INSERT INTO loads (venue, account, interval_start, interval_end, manifest_sha256, rows,"
                        " loaded_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                    ),
                    [
                        venue,
                        account,
                        interval.start,
                        interval.end,
                        partition.manifest_sha256,
                        sum(inserted.values()),
                        datetime.now(UTC),
                    ],
                )
        except WarehouseError as exc:
            if str(exc).startswith(("loading ", "refusing ")):  # already names the partition
                raise
            raise WarehouseError(
                f"loading {where} into {self.settings.describe()} failed, nothing changed: {exc}"
            ) from exc
        except Exception as exc:
            raise WarehouseError(
                f"loading {where} into {self.settings.describe()} failed, nothing changed: {_one_line(exc)}"
            ) from exc
        summary = LoadSummary(
            venue=venue,
            account=account,
            interval=interval,
            manifest_sha256=partition.manifest_sha256,
            inserted={k: v for k, v in inserted.items() if v or deleted.get(k)},
            deleted={k: v for k, v in deleted.items() if v > 0},
            seconds=time.monotonic() - started,
        )
        log.info(
            "loaded %s: %d rows (%s) replacing %d in %.2fs",
            where,
            summary.rows,
            summary.inserted,
            sum(summary.deleted.values()),
            summary.seconds,
        )
        return summary

    # Load steps ------------------------------------------------------------------------------------

    def _read_partition(self, lake: Lake, venue: str, account: str, interval: Interval) -> _Partition:
        """The manifest, its validation and its Parquet files, read before the transaction opens."""
        where = f"{venue}/{account} {interval}"
        try:
            key = manifest_key(venue, account, interval)
            if not lake.exists(key):
                raise LoadRefused(f"refusing to load {where}: no manifest in the lake (extraction has not finished)")
            manifest_bytes = lake.get_bytes(key)  # read once: the sha256 and the file list are of the same bytes
            manifest = Manifest.from_json(manifest_bytes)
            manifest_sha = sha256_hex(manifest_bytes)
            if (manifest.venue, manifest.account, manifest.interval) != (venue, account, interval):
                raise LoadRefused(
                    f"refusing to load {where}: its manifest names {manifest.venue}/{manifest.account} "
                    f"{manifest.interval}"
                )
            record = read_validation(lake, venue, account, interval)
            if record is None:
                raise LoadRefused(f"refusing to load {where}: not validated (no validation record in the lake)")
            if not record.passed:
                failures = "; ".join(record.failures[:5])
                raise LoadRefused(
                    f"refusing to load {where}: validation failed: {record.summary}"
                    + (f" ({failures})" if failures else "")
                )
            if record.manifest_sha256 != manifest_sha:
                raise LoadRefused(
                    f"refusing to load {where}: validation is stale: it passed manifest sha256 "
                    f"{record.manifest_sha256[:12]}, the lake now holds {manifest_sha[:12]} (re-run validation)"
                )
            partition = _Partition(manifest=manifest, manifest_sha256=manifest_sha)
            wanted = [(table, f) for table in TABLES for f in manifest.files_of(table.dataset)]

            def fetch(item: tuple[Table, ManifestFile]) -> tuple[Table, str, int, Any]:
                table, f = item
                data = lake.get_bytes(f.key)
                if sha256_hex(data) != f.sha256:
                    raise LoadRefused(
                        f"refusing to load {where}: {lake.uri(f.key)} changed since its manifest was written "
                        f"(sha256 differs)"
                    )
                try:
                    return table, f.key, f.rows, self._prepare_file(data)
                except WarehouseError as exc:
                    raise WarehouseError(f"loading {where}, file {f.key}: {exc}") from None
                except Exception as exc:
                    raise WarehouseError(
                        f"loading {where}, file {f.key}: not readable Parquet: {_one_line(exc)}"
                    ) from None

            # A day's files are fetched, checked and prepared side by side: S3 waits, sha256 and Parquet
            # decoding release the GIL. In manifest order, so the first bad file is the one named.
            with ThreadPoolExecutor(max_workers=min(READ_THREADS, len(wanted) or 1)) as pool:
                partition.files.extend(pool.map(fetch, wanted))
            return partition
        except LakeError as exc:
            raise WarehouseError(f"loading {where}: cannot read the lake: {exc}") from None

    @staticmethod
    def _conform(
        table: Table, key: str, rows: pa.Table, expected_rows: int, venue: str, account: str, interval: Interval
    ) -> pa.Table:
        """The file's rows in the table's exact schema, checked to belong to this partition."""
        where = f"{venue}/{account} {interval}, file {key}"
        missing = [c for c in table.columns if c not in rows.column_names]
        if missing:
            raise WarehouseError(f"loading {where}: columns missing: {', '.join(missing)}")
        try:
            rows = rows.select(table.columns).cast(table.schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, ValueError) as exc:
            raise WarehouseError(
                f"loading {where}: does not match the {table.dataset} schema: {_one_line(exc)}"
            ) from None
        if rows.num_rows != expected_rows:
            raise WarehouseError(f"loading {where}: {rows.num_rows} rows, its manifest says {expected_rows}")
        if rows.num_rows == 0:
            return rows
        for column, expected in (("venue", venue), ("account", account)):
            if not pc.all(pc.equal(rows[column], expected)).as_py():
                raise WarehouseError(f"loading {where}: holds rows of another {column} than {expected!r}")
        # A row outside [start, end) would escape this interval's delete and linger after a re-run.
        times = rows[table.time_column]
        lo, hi = pc.min(times).as_py(), pc.max(times).as_py()
        if lo < interval.start or hi >= interval.end:
            raise WarehouseError(
                f"loading {where}: {table.time_column} spans {lo.isoformat()} .. {hi.isoformat()}, outside the interval"
            )
        return rows


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
