"""Arrow schemas of the unified rows (see include/contracts/unified-row.md for the rules)."""

from __future__ import annotations

import pyarrow as pa

VENUES = ("exchangehubx", "binance", "pacifica", "coinbase", "sunx")
LEDGER_VENUES = ("exchangehubx", "pacifica", "coinbase", "sunx")

ENTRY_TYPES = (
    "deposit",
    "withdrawal",
    "transfer",
    "trade",
    "realized_pnl",
    "fee",
    "rebate",
    "funding",
    "liquidation",
    "settlement",
    "reward",
    "adjustment",
    "other",
)

DECIMAL = pa.decimal128(38, 18)
TIMESTAMP = pa.timestamp("us", tz="UTC")

LEDGER_SCHEMA = pa.schema(
    [
        pa.field("venue", pa.string(), nullable=False),
        pa.field("account", pa.string(), nullable=False),
        pa.field("entry_id", pa.string(), nullable=False),
        pa.field("entry_seq", pa.int64(), nullable=False),
        pa.field("occurred_at", TIMESTAMP, nullable=False),
        pa.field("asset", pa.string(), nullable=False),
        pa.field("amount", DECIMAL, nullable=False),
        pa.field("balance_before", DECIMAL),
        pa.field("balance_after", DECIMAL),
        pa.field("entry_type", pa.string(), nullable=False),
        pa.field("venue_entry_type", pa.string(), nullable=False),
        pa.field("reference_id", pa.string()),
        pa.field("instrument", pa.string()),
        pa.field("details", pa.string(), nullable=False),
        pa.field("raw_uri", pa.string(), nullable=False),
        pa.field("ingested_at", TIMESTAMP, nullable=False),
    ]
)

BALANCE_SNAPSHOT_SCHEMA = pa.schema(
    [
        pa.field("venue", pa.string(), nullable=False),
        pa.field("account", pa.string(), nullable=False),
        pa.field("snapshot_type", pa.string(), nullable=False),
        pa.field("snapshot_at", TIMESTAMP, nullable=False),
        pa.field("asset", pa.string(), nullable=False),
        pa.field("free", DECIMAL),
        pa.field("locked", DECIMAL),
        pa.field("borrowed", DECIMAL),
        pa.field("interest", DECIMAL),
        pa.field("net_asset", DECIMAL),
        pa.field("wallet_balance", DECIMAL),
        pa.field("margin_balance", DECIMAL),
        pa.field("total", DECIMAL, nullable=False),
        pa.field("details", pa.string(), nullable=False),
        pa.field("raw_uri", pa.string(), nullable=False),
        pa.field("ingested_at", TIMESTAMP, nullable=False),
    ]
)

POSITION_SNAPSHOT_SCHEMA = pa.schema(
    [
        pa.field("venue", pa.string(), nullable=False),
        pa.field("account", pa.string(), nullable=False),
        pa.field("snapshot_at", TIMESTAMP, nullable=False),
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("position_amt", DECIMAL, nullable=False),
        pa.field("entry_price", DECIMAL),
        pa.field("mark_price", DECIMAL),
        pa.field("unrealized_profit", DECIMAL),
        pa.field("raw_uri", pa.string(), nullable=False),
        pa.field("ingested_at", TIMESTAMP, nullable=False),
    ]
)

# Dataset name -> (schema, key columns). The dataset name is also the lake prefix.
DATASETS: dict[str, tuple[pa.Schema, tuple[str, ...]]] = {
    "ledger": (LEDGER_SCHEMA, ("venue", "account", "entry_id")),
    "snapshots/balances": (
        BALANCE_SNAPSHOT_SCHEMA,
        ("venue", "account", "snapshot_type", "snapshot_at", "asset"),
    ),
    "snapshots/positions": (POSITION_SNAPSHOT_SCHEMA, ("venue", "account", "snapshot_at", "symbol")),
}

# Columns a ground-truth comparison leaves out: they depend on the run, not on the venue's data.
RUN_COLUMNS = ("raw_uri", "ingested_at")
