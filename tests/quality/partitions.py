"""Crafted partitions for the quality gate: Parquet per the contract plus a Manifest, written into the moto lake."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ledgerlake.interval import Interval
from ledgerlake.lake import Lake, Manifest, ManifestFile, data_file_key
from ledgerlake.schema import DATASETS

INTERVAL = Interval(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC))
INGESTED = datetime(2026, 11, 2, 0, 5, tzinfo=UTC)

# A documented code and its unified type per venue (contract tables).
CODES = {
    "exchangehubx": ("4", "realized_pnl"),
    "coinbase": ("match", "trade"),
    "pacifica": ("trade", "trade"),
    "sunx": ("30", "funding"),
}
GIVES = {  # which balances each venue reports
    "exchangehubx": ("balance_before", "balance_after"),
    "coinbase": ("balance_after",),
    "pacifica": ("balance_after",),
    "sunx": (),
}


def ledger_rows(
    venue: str,
    account: str = "acct-1",
    n: int = 12,
    assets: tuple[str, ...] = ("USDT", "BTC"),
    opening: dict[str, Decimal] | None = None,
    interval: Interval = INTERVAL,
) -> list[dict[str, Any]]:
    """Clean rows in the venue's order: entry_seq 0.., one hour apart, a consistent balance chain per asset."""
    code, entry_type = CODES[venue]
    balance = dict(opening or {a: Decimal("1000") for a in assets})
    rows = []
    step = (interval.end - interval.start) / (n + 1)
    for i in range(n):
        asset = assets[i % len(assets)]
        amount = Decimal(f"{(i % 5) - 2}.{i:03d}")
        before = balance.setdefault(asset, Decimal("0"))
        after = before + amount
        balance[asset] = after
        rows.append(
            {
                "venue": venue,
                "account": account,
                "entry_id": str(1000 + i),
                "entry_seq": i,
                "occurred_at": interval.start + step * (i + 1),
                "asset": asset,
                "amount": amount,
                "balance_before": before if "balance_before" in GIVES[venue] else None,
                "balance_after": after if "balance_after" in GIVES[venue] else None,
                "entry_type": entry_type,
                "venue_entry_type": code,
                "reference_id": None,
                "instrument": None,
                "details": "{}",
                "raw_uri": f"s3://lake/raw/venue={venue}/page-000001.json.gz",
                "ingested_at": INGESTED,
            }
        )
    return rows


def closing_of(rows: list[dict[str, Any]]) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for r in sorted(rows, key=lambda r: r["entry_seq"]):
        if r["balance_after"] is not None:
            out[r["asset"]] = r["balance_after"]
    return out


def _table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """The rows as Arrow; a crafted null in a not-null column gets a nullable field (as a careless writer would)."""
    nulls = {f.name for f in schema if not f.nullable and any(r[f.name] is None for r in rows)}
    relaxed = pa.schema([f.with_nullable(True) if f.name in nulls else f for f in schema])
    return pa.Table.from_pylist(rows, schema=relaxed)


def write_partition(
    lake: Lake,
    venue: str,
    account: str,
    datasets: dict[str, list[dict[str, Any]] | pa.Table],
    interval: Interval = INTERVAL,
    files_per_dataset: int = 1,
) -> Manifest:
    """Write each dataset's rows as Parquet (contract schema unless a Table is given) and the manifest last."""
    files: list[ManifestFile] = []
    day = interval.start.strftime("%Y-%m-%d")
    for dataset, rows in datasets.items():
        table = rows if isinstance(rows, pa.Table) else _table(rows, DATASETS[dataset][0])
        chunk = max(1, -(-table.num_rows // files_per_dataset))
        for no, start in enumerate(range(0, max(table.num_rows, 1), chunk)):
            part = table.slice(start, chunk)
            buf = io.BytesIO()
            pq.write_table(part, buf)
            data = buf.getvalue()
            key = data_file_key(dataset, venue, account, interval, day, no)
            written = lake.put_bytes(key, data)
            files.append(
                ManifestFile(key=key, dataset=dataset, rows=part.num_rows, bytes=len(data), sha256=written.sha256)
            )
    manifest = Manifest.build(venue, account, interval, files)
    lake.write_manifest(manifest)
    return manifest


def write_ledger(lake: Lake, rows: list[dict[str, Any]], interval: Interval = INTERVAL) -> Manifest:
    return write_partition(lake, rows[0]["venue"], rows[0]["account"], {"ledger": rows}, interval)


@dataclass
class Closing:
    """A stand-in for Warehouse.closing_balances: the closing balances a previous load left, and the calls."""

    balances: dict[str, Decimal]
    calls: list[tuple[str, str, datetime]] = field(default_factory=list)

    def __call__(self, venue: str, account: str, before: datetime) -> dict[str, Decimal]:
        self.calls.append((venue, account, before))
        return dict(self.balances)


def read_json(lake: Lake, key: str) -> dict[str, Any]:
    return dict(json.loads(lake.get_bytes(key)))
