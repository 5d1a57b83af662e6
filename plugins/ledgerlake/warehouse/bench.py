"""Load rates of the warehouse backends: `python -m ledgerlake.warehouse.bench [--rows N]`.

Measures, for 1M ledger rows by default, into the warehouse's tables (PostgreSQL's with their primary keys;
DuckDB's have none, its loads check the keys):
- insert: Arrow table -> warehouse table inside one transaction (DuckDB: Arrow registration + INSERT SELECT;
  PostgreSQL: Arrow -> CSV -> COPY);
- load_partition: the whole load from a lake on a local S3 server (moto), i.e. manifest and validation
  checks, download, sha256, Parquet decode, delete, insert, key checks, bookkeeping;
- PostgreSQL only, on a sample: binary COPY fed with Python row tuples, the alternative to Arrow -> CSV.
Prints one JSON object per measurement. The bench harness (ledgerlake.bench) may call `measure()`.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ledgerlake.interval import Interval
from ledgerlake.schema import LEDGER_SCHEMA
from ledgerlake.warehouse import TABLES, WarehouseSettings, open_warehouse

LEDGER = TABLES[0]
START = datetime(2026, 1, 1, tzinfo=UTC)


def ledger_rows(n: int, venue: str = "bench", account: str = "acct") -> pa.Table:
    """n contract-shaped ledger rows inside [START, START + 1 day), built column-wise."""
    import numpy as np

    rng = np.random.default_rng(7)
    micros = np.sort(rng.integers(0, 86_400_000_000, n))
    occurred = pa.array(micros + int(START.timestamp() * 1_000_000), pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    ids = pc.cast(pa.array(np.arange(n) + 10_000_000), pa.string())
    whole = rng.integers(-50_000, 50_000, n)
    frac = rng.integers(0, 10**9, n)
    amount_text = [f"{w}.{f:09d}" for w, f in zip(whole.tolist(), frac.tolist(), strict=True)]
    amount = pc.cast(pa.array(amount_text), LEDGER_SCHEMA.field("amount").type)
    balance = pc.cast(pa.array([t.lstrip("-") + "123" for t in amount_text]), LEDGER_SCHEMA.field("amount").type)
    types = pa.array(rng.choice(["trade", "fee", "funding", "transfer"], n).tolist())
    columns: dict[str, Any] = {
        "venue": pa.array([venue] * n),
        "account": pa.array([account] * n),
        "entry_id": ids,
        "entry_seq": pa.array(np.arange(n), pa.int64()),
        "occurred_at": occurred,
        "asset": pa.array(rng.choice(["USDT", "BTC"], n).tolist()),
        "amount": amount,
        "balance_before": pa.nulls(n, LEDGER_SCHEMA.field("balance_before").type),
        "balance_after": balance,
        "entry_type": types,
        "venue_entry_type": types,
        "reference_id": pa.nulls(n, pa.string()),
        "instrument": pa.array(["BTC-USDT"] * n),
        "details": pa.array(['{"related_type":1,"remark":""}'] * n),
        "raw_uri": pa.array([f"s3://bench/raw/page-{i // 100:06d}.json.gz" for i in range(n)]),
        "ingested_at": pa.array([START + timedelta(days=1)] * n, pa.timestamp("us", tz="UTC")),
    }
    return pa.table(columns, schema=LEDGER_SCHEMA)


def _emptied(settings: WarehouseSettings) -> None:
    with open_warehouse(settings) as wh:
        wh._execute("DELETE FROM ledger_entries")
        wh._execute("DELETE FROM loads")


def measure_insert(settings: WarehouseSettings, rows: pa.Table) -> dict[str, Any]:
    _emptied(settings)
    with open_warehouse(settings) as wh:
        started = time.perf_counter()
        with wh._transaction():
            wh._insert_arrow(LEDGER, rows)
        seconds = time.perf_counter() - started
    return {
        "what": "insert",
        "backend": settings.kind,
        "rows": rows.num_rows,
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows.num_rows / seconds),
    }


def measure_binary_copy_rows(settings: WarehouseSettings, rows: pa.Table) -> dict[str, Any]:
    """PostgreSQL's alternative: COPY (FORMAT BINARY) fed Python tuples (Decimal, datetime) row by row."""
    import psycopg

    _emptied(settings)
    columns = ", ".join(LEDGER.columns)
    started = time.perf_counter()
    types = ["text", "text", "text", "int8", "timestamptz", "text", "numeric", "numeric", "numeric"] + ["text"] * 6
    types.append("timestamptz")
    copy_sql = f"COPY ledger_entries ({columns}) FROM STDIN (FORMAT BINARY)"
    with psycopg.connect(settings.dsn or "") as con, con.cursor() as cur, cur.copy(copy_sql) as copy:
        copy.set_types(types)
        for batch in rows.to_batches(max_chunksize=50_000):
            for row in zip(*(c.to_pylist() for c in batch.columns), strict=True):
                copy.write_row(row)
    seconds = time.perf_counter() - started
    return {
        "what": "binary COPY from Python rows",
        "backend": "postgres",
        "rows": rows.num_rows,
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows.num_rows / seconds),
    }


@contextmanager
def local_lake() -> Iterator[Any]:
    import socket

    from moto.server import ThreadedMotoServer

    from ledgerlake.lake import Lake, S3Settings

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        lake = Lake(
            S3Settings(
                bucket=f"bench-{uuid.uuid4().hex[:8]}",
                endpoint_url=f"http://127.0.0.1:{port}",
                access_key_id="bench",
                secret_access_key="bench",
            )
        )
        lake.ensure_bucket()
        yield lake
    finally:
        server.stop()


def put_partition(lake: Any, rows: pa.Table, interval: Interval, file_rows: int = 250_000) -> None:
    from ledgerlake.lake import Manifest, ManifestFile, ValidationRecord, data_file_key, write_validation

    files = []
    for n, start in enumerate(range(0, rows.num_rows, file_rows)):
        buffer = io.BytesIO()
        pq.write_table(rows.slice(start, file_rows), buffer)
        key = data_file_key("ledger", "bench", "acct", interval, interval.start.strftime("%Y-%m-%d"), n)
        put = lake.put_bytes(key, buffer.getvalue())
        files.append(
            ManifestFile(
                key=key,
                dataset="ledger",
                rows=min(file_rows, rows.num_rows - start),
                bytes=put.bytes,
                sha256=put.sha256,
            )
        )
    lake.write_manifest(Manifest.build("bench", "acct", interval, files))
    write_validation(
        lake,
        ValidationRecord(
            venue="bench",
            account="acct",
            interval_start=interval.start.isoformat(),
            interval_end=interval.end.isoformat(),
            manifest_sha256=lake.manifest_sha256("bench", "acct", interval) or "",
            passed=True,
            summary="bench",
            validated_at=datetime.now(UTC).isoformat(),
        ),
    )


def measure_load_partition(
    settings: WarehouseSettings, lake: Any, interval: Interval, rows: int
) -> list[dict[str, Any]]:
    _emptied(settings)
    out = []
    with open_warehouse(settings) as wh:
        for label in ("load_partition (empty table)", "load_partition (re-run, replaces every row)"):
            summary = wh.load_partition(lake, "bench", "acct", interval)
            out.append(
                {
                    "what": label,
                    "backend": settings.kind,
                    "rows": rows,
                    "seconds": round(summary.seconds, 2),
                    "rows_per_s": round(rows / summary.seconds),
                }
            )
    return out


def measure(rows: int, pg_dsn: str | None, with_lake: bool = True) -> list[dict[str, Any]]:
    table = ledger_rows(rows)
    interval = Interval(START, START + timedelta(days=1))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        backends = [WarehouseSettings(kind="duckdb", path=os.path.join(tmp, "bench.duckdb"))]
        if pg_dsn:
            backends.append(WarehouseSettings(kind="postgres", dsn=pg_dsn))
        for settings in backends:
            results.append(measure_insert(settings, table))
            print(json.dumps(results[-1]), flush=True)
        if pg_dsn:
            results.append(measure_binary_copy_rows(backends[1], table.slice(0, min(rows, 200_000))))
            print(json.dumps(results[-1]), flush=True)
        if with_lake:
            with local_lake() as lake:
                put_partition(lake, table, interval)
                for settings in backends:
                    for r in measure_load_partition(settings, lake, interval, rows):
                        results.append(r)
                        print(json.dumps(r), flush=True)
        for settings in backends:
            _emptied(settings)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--pg",
        default=os.environ.get("LEDGERLAKE_BENCH_PG_DSN"),
        help="a PostgreSQL DSN of a scratch database (its ledger tables are emptied)",
    )
    parser.add_argument("--no-lake", action="store_true", help="skip the load_partition measurement")
    args = parser.parse_args()
    measure(args.rows, args.pg, with_lake=not args.no_lake)


if __name__ == "__main__":
    main()
