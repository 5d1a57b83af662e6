"""Rows -> date-partitioned Parquet files on S3, streamed: local temp files rolled every `file_rows` rows,
uploaded in the background while fetching goes on, with the manifest entry (rows, bytes, sha256) of each.
Also the background uploader the raw archive shares."""

from __future__ import annotations

import hashlib
import itertools
import os
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ledgerlake.engine.stages import StageClock
from ledgerlake.interval import Interval
from ledgerlake.lake import Lake, ManifestFile, data_file_key

US_PER_DAY = 86_400_000_000
# Dictionary encoding pays only on columns with few distinct values; on ids and details JSON it costs time
# and saves nothing (measured: 1.5x faster writes, smaller files).
DICTIONARY_COLUMNS = ["venue", "account", "asset", "entry_type", "venue_entry_type", "instrument", "raw_uri",
                      "snapshot_type", "symbol"]  # fmt: skip
PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "compression_level": 1}


def parquet_writer(path: str, schema: pa.Schema) -> pq.ParquetWriter:
    return pq.ParquetWriter(
        path, schema, use_dictionary=[c for c in DICTIONARY_COLUMNS if c in schema.names], **PARQUET_OPTIONS
    )


class Uploader:
    """A few background threads for S3 puts; at most `max_pending` queued, so memory stays bounded."""

    def __init__(self, workers: int = 3, max_pending: int = 8) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ledgerlake-upload")
        self._slots = threading.Semaphore(max_pending)
        self._futures: list[Future[ManifestFile]] = []

    def submit(self, job: Callable[[], ManifestFile]) -> None:
        self._slots.acquire()
        self._raise_first_error()

        def run() -> ManifestFile:
            try:
                return job()
            finally:
                self._slots.release()

        self._futures.append(self._pool.submit(run))

    def _raise_first_error(self) -> None:
        for f in self._futures:
            if f.done() and f.exception() is not None:
                raise f.exception()  # type: ignore[misc]

    def wait(self) -> list[ManifestFile]:
        done = [f.result() for f in self._futures]
        self._futures.clear()
        return done

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def upload_local_file(lake: Lake, key: str, path: str, dataset: str, rows: int) -> ManifestFile:
    try:
        size = os.path.getsize(path)
        digest = file_sha256(path)
        lake.upload_file(key, path)
        return ManifestFile(key=key, dataset=dataset, rows=rows, bytes=size, sha256=digest)
    finally:
        os.unlink(path)


@dataclass
class _OpenFile:
    day: str
    number: int
    path: str
    writer: pq.ParquetWriter
    rows: int = 0


class PartitionedParquetWriter:
    """One dataset of one (venue, account, interval): tables in, Parquet files under date=YYYY-MM-DD out.

    Tables must come in time order (ledger rows) or carry few rows (snapshots); a day's file closes when a
    later day starts or it reaches `file_rows`.
    """

    def __init__(
        self,
        lake: Lake,
        uploader: Uploader,
        dataset: str,
        schema: pa.Schema,
        venue: str,
        account: str,
        interval: Interval,
        time_column: str,
        tmpdir: str,
        file_rows: int,
        row_group_rows: int,
        time_ordered: bool = True,
    ) -> None:
        self.lake, self.uploader, self.dataset, self.schema = lake, uploader, dataset, schema
        self.venue, self.account, self.interval = venue, account, interval
        self.time_column, self.tmpdir = time_column, tmpdir
        self.file_rows, self.row_group_rows = file_rows, row_group_rows
        self.time_ordered = time_ordered
        self._open: dict[str, _OpenFile] = {}
        self._next_number: dict[str, int] = {}
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        table = table.select(self.schema.names).cast(self.schema)
        us = table.column(self.time_column).combine_chunks().cast(pa.int64()).to_numpy()
        days = us // US_PER_DAY
        if self.time_ordered:
            cuts = np.flatnonzero(np.diff(days)) + 1
            bounds = [0, *cuts.tolist(), len(days)]
            parts = [(int(days[a]), table.slice(a, b - a)) for a, b in itertools.pairwise(bounds)]
        else:
            parts = [(int(d), table.filter(pa.array(days == d))) for d in np.unique(days)]
        for day_no, part in parts:
            day = np.datetime64(day_no, "D").astype(str)
            if self.time_ordered:
                for other in [d for d in self._open if d < day]:
                    self._close(other)
            self._write_day(day, part)

    def _write_day(self, day: str, table: pa.Table) -> None:
        offset = 0
        while offset < table.num_rows:
            f = self._open.get(day) or self._start(day)
            take = min(table.num_rows - offset, self.file_rows - f.rows)
            f.writer.write_table(table.slice(offset, take), row_group_size=self.row_group_rows)
            f.rows += take
            self.rows += take
            offset += take
            if f.rows >= self.file_rows:
                self._close(day)

    def _start(self, day: str) -> _OpenFile:
        number = self._next_number.get(day, 0)
        self._next_number[day] = number + 1
        fd, path = tempfile.mkstemp(suffix=".parquet", dir=self.tmpdir)
        os.close(fd)
        writer = parquet_writer(path, self.schema)
        f = _OpenFile(day, number, path, writer)
        self._open[day] = f
        return f

    def _close(self, day: str) -> None:
        f = self._open.pop(day)
        f.writer.close()
        key = data_file_key(self.dataset, self.venue, self.account, self.interval, f.day, f.number)
        lake, dataset, rows, path = self.lake, self.dataset, f.rows, f.path
        self.uploader.submit(lambda: upload_local_file(lake, key, path, dataset, rows))

    def close(self) -> None:
        for day in sorted(self._open):
            self._close(day)

    def abort(self) -> None:
        for f in self._open.values():
            f.writer.close()
            os.unlink(f.path)
        self._open.clear()


class BackgroundWriter:
    """A PartitionedParquetWriter driven from one background thread, in submission order.

    Parquet encoding runs in pyarrow without the GIL, so on its own thread it overlaps the building of the
    next batches instead of adding to it. At most `max_pending` tables wait (memory stays bounded); the first
    failure is raised on the next call from the owning thread.
    """

    def __init__(self, writer: PartitionedParquetWriter, clock: StageClock, max_pending: int = 2) -> None:
        self.writer = writer
        self.clock = clock
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledgerlake-parquet")
        self._slots = threading.Semaphore(max_pending)
        self._futures: list[Future[None]] = []

    @property
    def rows(self) -> int:
        return self.writer.rows

    def _check(self) -> None:
        done = [f for f in self._futures if f.done()]
        for f in done:
            self._futures.remove(f)
            f.result()  # raises the writer's error here, on the owning thread

    def write(self, table: pa.Table) -> None:
        self._check()
        with self.clock("wait_for_parquet"):
            self._slots.acquire()

        def run() -> None:
            try:
                with self.clock("write_parquet"):
                    self.writer.write(table)
            finally:
                self._slots.release()

        self._futures.append(self._pool.submit(run))

    def flush(self) -> None:
        """Wait until every submitted table is written; raises the first failure."""
        for f in self._futures:
            f.result()
        self._futures.clear()

    def close(self) -> None:
        try:
            with self.clock("wait_for_parquet"):
                self.flush()
            with self.clock("write_parquet"):
                self.writer.close()
        finally:
            self._pool.shutdown(wait=True)

    def abort(self) -> None:
        for f in self._futures:
            f.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.writer.abort()
