"""The floor: merely fetch the same raw pages, parse them and write them to Parquet on the same S3 endpoint,
with the least code there is (the engine's HTTP client, orjson, pyarrow) on one thread. Requests are built and
signed by the venue module (only so the venue answers with the same pages); records are written as parsed,
without casts, order checks, raw archive or manifest. Also times fetching alone, and the sandbox's CPU meanwhile.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from ledgerlake.config import AccountConfig
from ledgerlake.engine.client import HttpClient
from ledgerlake.interval import Interval
from ledgerlake.venues import VENUE_CLASSES
from ledgerlake.venues.base import VenueCredentials


def _table(records: list[dict[str, Any]], schema: pa.Schema | None) -> pa.Table:
    names = schema.names if schema is not None else list(records[0])
    columns = {}
    for name in names:
        values = [r.get(name) for r in records]
        if any(isinstance(v, (dict, list)) for v in values):
            values = [orjson.dumps(v).decode() if v is not None else None for v in values]
        try:
            columns[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            columns[name] = pa.array([None if v is None else str(v) for v in values], pa.string())
    table = pa.table(columns)
    return table if schema is None else table.cast(schema)


def floor_run(
    venue_name: str,
    account: AccountConfig,
    credentials: VenueCredentials,
    interval: Interval,
    s3_endpoint: str,
    bucket: str,
    key: str,
    *,
    write: bool = True,
    batch_rows: int = 25_000,
) -> dict[str, Any]:
    """Fetch every page of the interval (and, if `write`, parse and write it); rows and seconds per step."""
    venue = VENUE_CLASSES[venue_name](account, credentials, None)
    client = HttpClient(credentials.base_url, connect_timeout=10, read_timeout=60, user_agent="ledgerlake-floor")
    host = s3_endpoint.split("://", 1)[1]
    fs = pafs.S3FileSystem(
        endpoint_override=host, scheme="http", access_key="bench", secret_key="bench-secret", region="us-east-1"
    )
    writer: pq.ParquetWriter | None = None
    schema: pa.Schema | None = None
    pending: list[dict[str, Any]] = []
    seconds = {"fetch": 0.0, "parse": 0.0, "arrow+parquet": 0.0}
    rows = pages = 0
    started = time.perf_counter()
    sink = fs.open_output_stream(f"{bucket}/{key}") if write else None

    def flush() -> None:
        nonlocal writer, schema, pending
        t = time.perf_counter()
        table = _table(pending, schema)
        if writer is None:
            schema = table.schema
            writer = pq.ParquetWriter(sink, schema)
        writer.write_table(table)
        pending = []
        seconds["arrow+parquet"] += time.perf_counter() - t

    try:
        for window in venue.windows(interval):
            request: Any = venue.first_request(window)
            while request is not None:
                t = time.perf_counter()
                signed = venue.sign(request, datetime.now(UTC))
                resp = client.request(request.method, signed.url[len(client.root) :], signed.headers, signed.body)
                t2 = time.perf_counter()
                seconds["fetch"] += t2 - t
                payload = orjson.loads(resp.body)
                records = venue.records(payload)
                seconds["parse"] += time.perf_counter() - t2
                pages += 1
                if write:
                    pending.extend(records)
                    if len(pending) >= batch_rows:
                        flush()
                rows += len(records)
                nxt = venue.next_request(request, payload, resp.headers, records, window)
                request = None if nxt is not None and venue.stop_after(records, window) else nxt
        if write and pending:
            flush()
    finally:
        t = time.perf_counter()
        if writer is not None:
            writer.close()
        if sink is not None:
            sink.close()
        seconds["arrow+parquet"] += time.perf_counter() - t
        client.close()
    total = time.perf_counter() - started
    return {"rows": rows, "pages": pages, "seconds": total, "steps": seconds}
