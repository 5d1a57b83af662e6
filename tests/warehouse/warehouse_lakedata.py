"""Partitions written into the test lake exactly as the contract says: Parquet per UTC day, a manifest
listing every file with its sha256, then a validation record. Stands in for extraction and the gate."""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ledgerlake.interval import Interval
from ledgerlake.lake import Lake, Manifest, ManifestFile, ValidationRecord, data_file_key, sha256_hex, write_validation
from ledgerlake.schema import DATASETS, RUN_COLUMNS

Row = dict[str, Any]
Q = Decimal("0.000000000000000001")

# venue -> (reports balance_after, reports balance_before)
BALANCES = {"exchangehubx": (True, True), "coinbase": (True, False), "pacifica": (True, False), "sunx": (False, False)}
TYPES = ["trade", "fee", "funding", "rebate", "deposit", "withdrawal", "realized_pnl", "transfer"]


def day_interval(day: datetime, days: int = 1) -> Interval:
    return Interval(day, day + timedelta(days=days))


def ledger_history(
    venue: str,
    account: str,
    start: datetime,
    days: int,
    per_day: int,
    assets: Iterable[str] = ("USDT",),
    seed: int = 1,
    opening: Decimal = Decimal("1000"),
    quiet_days: Iterable[int] = (),
) -> list[Row]:
    """A consistent history: per asset, each balance_after is the previous one plus the amount (exact)."""
    rng = random.Random(f"{venue}/{account}/{seed}")
    with_after, with_before = BALANCES[venue]
    rows: list[Row] = []
    balance = {a: opening for a in assets}
    next_id = 1000
    for d in range(days):
        if d in set(quiet_days):
            continue
        day = start + timedelta(days=d)
        stamps = sorted(rng.randrange(0, 86_400_000_000) for _ in range(per_day))
        if per_day > 3:  # two entries at the very same instant, and one at exactly midnight
            stamps[1] = stamps[2]
            stamps[0] = 0
        for micros in stamps:
            asset = rng.choice(list(assets))
            entry_type = rng.choice(TYPES)
            magnitude = Decimal(rng.randrange(1, 10**24)) * Q  # up to 6 integer digits, 18 decimals
            sign = {"fee": -1, "rebate": 1, "deposit": 1, "withdrawal": -1}.get(entry_type, rng.choice((-1, 1)))
            amount = sign * magnitude
            before = balance[asset]
            balance[asset] = before + amount
            next_id += rng.randrange(1, 4)
            occurred = day + timedelta(microseconds=micros if venue == "coinbase" else micros // 1000 * 1000)
            rows.append(
                {
                    "venue": venue,
                    "account": account,
                    "entry_id": str(next_id),
                    "occurred_at": occurred,
                    "asset": asset,
                    "amount": amount,
                    "balance_before": before if with_before else None,
                    "balance_after": balance[asset] if with_after else None,
                    "entry_type": entry_type,
                    "venue_entry_type": entry_type[:3],
                    "reference_id": None if rng.random() < 0.5 else f"ref-{next_id}",
                    "instrument": None if rng.random() < 0.5 else "BTC-USDT",
                    "details": json.dumps({"note": 'ünïcode, "quoted"\nnewline'} if next_id % 7 == 0 else {}),
                }
            )
    return rows


def snapshot_history(account: str, start: datetime, days: int, assets: Iterable[str] = ("USDT", "BTC")) -> list[Row]:
    rng = random.Random(f"binance/{account}")
    rows = []
    for d in range(days):
        at = start + timedelta(days=d, hours=23, minutes=59, seconds=59)
        for snapshot_type in ("spot", "futures"):
            for asset in assets:
                free = Decimal(rng.randrange(0, 10**22)) * Q
                locked = Decimal(rng.randrange(0, 10**20)) * Q
                spot = snapshot_type == "spot"
                rows.append(
                    {
                        "venue": "binance",
                        "account": account,
                        "snapshot_type": snapshot_type,
                        "snapshot_at": at,
                        "asset": asset,
                        "free": free if spot else None,
                        "locked": locked if spot else None,
                        "borrowed": None,
                        "interest": None,
                        "net_asset": None,
                        "wallet_balance": None if spot else free,
                        "margin_balance": None if spot else free + locked,
                        "total": free + locked if spot else free,
                        "details": "{}",
                    }
                )
    return rows


def position_history(account: str, start: datetime, days: int) -> list[Row]:
    return [
        {
            "venue": "binance",
            "account": account,
            "snapshot_at": start + timedelta(days=d, hours=23, minutes=59, seconds=59),
            "symbol": "BTCUSDT",
            "position_amt": Decimal("0.125") * (d + 1),
            "entry_price": Decimal("65000.5"),
            "mark_price": Decimal("65100.25") + d,
            "unrealized_profit": None,
        }
        for d in range(days)
    ]


def in_interval(rows: list[Row], interval: Interval, column: str = "occurred_at") -> list[Row]:
    return [r for r in rows if interval.contains(r[column])]


def write_partition(
    lake: Lake,
    venue: str,
    account: str,
    interval: Interval,
    rows: dict[str, list[Row]] | list[Row],
    *,
    validate: bool | None = True,
    files_per_day: int = 1,
    nullable: bool = False,
) -> list[Row]:
    """Write one (venue, account, interval) as extraction would; return the rows as stored (with entry_seq,
    raw_uri and ingested_at). validate: True -> a passing record, False -> a failing one, None -> none."""
    by_dataset = rows if isinstance(rows, dict) else {"ledger": rows}
    files: list[ManifestFile] = []
    stored: list[Row] = []
    ingested = datetime.now(UTC).replace(microsecond=123456)
    for dataset, dataset_rows in by_dataset.items():
        schema, _ = DATASETS[dataset]
        if nullable:  # lets a test write nulls where the contract forbids them
            schema = pa.schema([f.with_nullable(True) for f in schema])
        time_column = "occurred_at" if dataset == "ledger" else "snapshot_at"
        given_seq = dataset == "ledger" and bool(dataset_rows) and "entry_seq" in dataset_rows[0]
        if given_seq:  # ground truth: the venue's order is already in entry_seq
            ordered = sorted(dataset_rows, key=lambda r: r["entry_seq"])
        else:
            ordered = sorted(dataset_rows, key=lambda r: (r[time_column], int(r.get("entry_id", "0") or 0)))
        out = []
        for seq, row in enumerate(ordered):
            row = dict(row)
            if dataset == "ledger" and not given_seq:
                row["entry_seq"] = seq
            row["raw_uri"] = lake.uri(
                f"raw/venue={venue}/account={account}/{interval.id}/page-{seq // 100:06d}.json.gz"
            )
            row["ingested_at"] = ingested
            out.append(row)
        stored += out
        by_day: dict[str, list[Row]] = {}
        for row in out:
            by_day.setdefault(row[time_column].strftime("%Y-%m-%d"), []).append(row)
        for day, day_rows in sorted(by_day.items()):
            chunk = max(1, -(-len(day_rows) // files_per_day))
            for n, i in enumerate(range(0, len(day_rows), chunk)):
                table = pa.Table.from_pylist(day_rows[i : i + chunk], schema=schema)
                buffer = io.BytesIO()
                pq.write_table(table, buffer)
                key = data_file_key(dataset, venue, account, interval, day, n)
                written = lake.put_bytes(key, buffer.getvalue())
                files.append(
                    ManifestFile(
                        key=key, dataset=dataset, rows=table.num_rows, bytes=written.bytes, sha256=written.sha256
                    )
                )
    lake.write_manifest(Manifest.build(venue, account, interval, files))
    if validate is not None:
        mark_validated(lake, venue, account, interval, passed=validate)
    return stored


def mark_validated(
    lake: Lake, venue: str, account: str, interval: Interval, passed: bool = True, sha: str | None = None
) -> None:
    write_validation(
        lake,
        ValidationRecord(
            venue=venue,
            account=account,
            interval_start=interval.start.isoformat(),
            interval_end=interval.end.isoformat(),
            manifest_sha256=sha or lake.manifest_sha256(venue, account, interval) or "",
            passed=passed,
            summary="all checks passed" if passed else "2 of 9 expectations failed",
            validated_at=datetime.now(UTC).isoformat(),
            failures=() if passed else ("balance continuity: 3 rows", "entry_type in set: 1 row"),
        ),
    )


def comparable(rows: Iterable[Row], drop: Iterable[str] = ()) -> list[Row]:
    """Rows keyed and sorted for comparison; decimals compare by value, times as instants."""
    dropped = set(drop)
    return sorted(
        ({k: v for k, v in r.items() if k not in dropped} for r in rows),
        key=lambda r: tuple(
            str(r.get(k)) for k in ("venue", "account", "entry_id", "snapshot_type", "snapshot_at", "asset", "symbol")
        ),
    )


STABLE_DROP = (*RUN_COLUMNS, "entry_seq")  # what differs between partitions of different sizes
__all__ = ["Q", "comparable", "sha256_hex"]


def set_amount(history: list[Row], index: int, amount: Decimal) -> None:
    """Change one entry's amount and shift the balances after it, so the history stays consistent."""
    row = history[index]
    delta = amount - row["amount"]
    row["amount"] = amount
    for later in history[index:]:
        if later["asset"] != row["asset"]:
            continue
        if later["balance_after"] is not None:
            later["balance_after"] += delta
        if later is not row and later["balance_before"] is not None:
            later["balance_before"] += delta


def write_large_ledger_partition(
    lake: Lake, venue: str, account: str, interval: Interval, rows: int, files: int = 2, first_id: int = 0
) -> pa.Table:
    """A validated ledger partition of many rows, built column-wise (a row-by-row history would take minutes).
    Amounts are i * 10^-18, so the exact sum is known. Returns the rows as written."""
    schema = DATASETS["ledger"][0]
    ids = range(first_id, first_id + rows)
    step = (interval.end - interval.start) // rows
    amount_type = schema.field("amount").type
    amounts = pa.array([Decimal(i).scaleb(-18) for i in ids], amount_type)
    table = pa.table(
        {
            "venue": pa.array([venue] * rows),
            "account": pa.array([account] * rows),
            "entry_id": pa.array([str(i) for i in ids]),
            "entry_seq": pa.array(range(rows), pa.int64()),
            "occurred_at": pa.array([interval.start + step * n for n in range(rows)], pa.timestamp("us", tz="UTC")),
            "asset": pa.array(["USDT"] * rows),
            "amount": amounts,
            "balance_before": pa.nulls(rows, amount_type),
            "balance_after": amounts,
            "entry_type": pa.array(["trade"] * rows),
            "venue_entry_type": pa.array(["tra"] * rows),
            "reference_id": pa.nulls(rows, pa.string()),
            "instrument": pa.array(["BTC-USDT"] * rows),
            "details": pa.array(["{}"] * rows),
            "raw_uri": pa.array([lake.uri(f"raw/{interval.id}/page-{n // 100:06d}.json.gz") for n in range(rows)]),
            "ingested_at": pa.array([interval.end] * rows, pa.timestamp("us", tz="UTC")),
        },
        schema=schema,
    )
    manifest_files = []
    chunk = -(-rows // files)
    for n, offset in enumerate(range(0, rows, chunk)):
        buffer = io.BytesIO()
        pq.write_table(table.slice(offset, chunk), buffer)
        key = data_file_key("ledger", venue, account, interval, interval.start.strftime("%Y-%m-%d"), n)
        written = lake.put_bytes(key, buffer.getvalue())
        manifest_files.append(
            ManifestFile(
                key=key, dataset="ledger", rows=min(chunk, rows - offset), bytes=written.bytes, sha256=written.sha256
            )
        )
    lake.write_manifest(Manifest.build(venue, account, interval, manifest_files))
    mark_validated(lake, venue, account, interval)
    return table
