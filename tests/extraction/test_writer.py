"""Parquet files streamed to S3 as multipart uploads while they are written (engine.writer.S3FileSink)."""

from __future__ import annotations

import hashlib
import io
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ledgerlake.engine.writer import PART_BYTES, PartitionedParquetWriter, S3FileSink, Uploader
from ledgerlake.interval import Interval
from ledgerlake.lake import Lake, LakeError

SCHEMA = pa.schema([("occurred_at", pa.timestamp("us", tz="UTC")), ("blob", pa.string())])
DAY = Interval.parse("2026-11-01", "2026-11-02")


def _table(rows: int, blob_bytes: int) -> pa.Table:
    """Rows of random hex text, so the file is about rows * blob_bytes / 2 long."""
    start = int(DAY.start.timestamp() * 1_000_000)
    return pa.table(
        {
            "occurred_at": pa.array([start + i for i in range(rows)], pa.int64()).cast(SCHEMA.field(0).type),
            "blob": [os.urandom(blob_bytes // 2).hex() for _ in range(rows)],
        }
    )


def _writer(lake: Lake, uploader: Uploader) -> PartitionedParquetWriter:
    return PartitionedParquetWriter(
        lake, uploader, "ledger", SCHEMA, "coinbase", "acct-1", DAY, "occurred_at", 1_000_000, 1_000
    )


def test_a_file_of_several_parts_arrives_whole_with_the_manifest_digest(lake: Lake) -> None:
    table = _table(2_500, 16_384)  # ~20 MB: three parts of 8 MiB, the last one short
    uploader = Uploader()
    try:
        w = _writer(lake, uploader)
        w.write(table)
        w.close()
        [entry] = uploader.wait()
    finally:
        uploader.shutdown()
    body = lake.get_bytes(entry.key)
    assert entry.bytes == len(body) > 2 * PART_BYTES
    assert entry.sha256 == hashlib.sha256(body).hexdigest()
    assert entry.rows == 2_500
    assert pq.read_table(io.BytesIO(body)).equals(table.cast(SCHEMA))
    assert not lake.client.list_multipart_uploads(Bucket=lake.settings.bucket).get("Uploads")


def test_a_small_file_is_one_plain_put(lake: Lake) -> None:
    uploader = Uploader()
    try:
        w = _writer(lake, uploader)
        w.write(_table(10, 100))
        w.close()
        [entry] = uploader.wait()
    finally:
        uploader.shutdown()
    body = lake.get_bytes(entry.key)
    assert entry.sha256 == hashlib.sha256(body).hexdigest() and entry.rows == 10


def test_an_aborted_file_leaves_no_object_and_no_open_upload(lake: Lake) -> None:
    uploader = Uploader()
    try:
        w = _writer(lake, uploader)
        w.write(_table(2_500, 16_384))  # parts already sent
        w.abort()
    finally:
        uploader.shutdown()
    assert not list(lake.list_keys("ledger/"))
    assert not lake.client.list_multipart_uploads(Bucket=lake.settings.bucket).get("Uploads")


def test_a_failed_part_fails_the_file_and_names_it(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Lake, key: str, upload_id: str, number: int, data: bytes) -> str:
        raise LakeError(f"S3 upload part {number} of {self.uri(key)} failed: refused")

    monkeypatch.setattr(Lake, "upload_part", refuse)
    uploader = Uploader()
    try:
        w = _writer(lake, uploader)
        w.write(_table(2_500, 16_384))
        with pytest.raises(LakeError, match=r"upload part 1 of s3://.*ledger/.*refused"):
            w.close()
            uploader.wait()
    finally:
        uploader.shutdown()
    assert not list(lake.list_keys("ledger/"))
    assert not lake.client.list_multipart_uploads(Bucket=lake.settings.bucket).get("Uploads")


def test_the_sink_counts_what_pyarrow_wrote(lake: Lake) -> None:
    sink = S3FileSink(lake, Uploader(), "x/y.bin")
    assert sink.write(b"abc") == 3 and sink.tell() == 3
    entry = sink.finish("raw", 0)
    assert lake.get_bytes("x/y.bin") == b"abc" and entry.bytes == 3
