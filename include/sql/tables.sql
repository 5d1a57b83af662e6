-- ledgerlake warehouse tables. Shared by DuckDB and PostgreSQL (both read this dialect unchanged).
-- Columns mirror the Arrow schemas in plugins/ledgerlake/schema.py and the contract in
-- include/contracts/unified-row.md. Amounts are exact NUMERIC(38,18); times are TIMESTAMPTZ and every
-- view reads them in UTC. Statements are separated by a semicolon at the end of a line.
--
-- The three data tables hold each of their schema.DATASETS keys once. PostgreSQL enforces that with primary
-- keys (postgres/keys.sql); DuckDB's load checks it inside the load's transaction instead, as DuckDB's
-- primary-key index doubled the CPU of a 1M-row load and the size of the file.

CREATE TABLE IF NOT EXISTS ledger_entries (
    venue            TEXT           NOT NULL,
    account          TEXT           NOT NULL,
    entry_id         TEXT           NOT NULL,
    entry_seq        BIGINT         NOT NULL,
    occurred_at      TIMESTAMPTZ    NOT NULL,
    asset            TEXT           NOT NULL,
    amount           NUMERIC(38,18) NOT NULL,
    balance_before   NUMERIC(38,18),
    balance_after    NUMERIC(38,18),
    entry_type       TEXT           NOT NULL,
    venue_entry_type TEXT           NOT NULL,
    reference_id     TEXT,
    instrument       TEXT,
    details          TEXT           NOT NULL,
    raw_uri          TEXT           NOT NULL,
    ingested_at      TIMESTAMPTZ    NOT NULL
);

CREATE TABLE IF NOT EXISTS balance_snapshots (
    venue          TEXT           NOT NULL,
    account        TEXT           NOT NULL,
    snapshot_type  TEXT           NOT NULL,
    snapshot_at    TIMESTAMPTZ    NOT NULL,
    asset          TEXT           NOT NULL,
    free           NUMERIC(38,18),
    locked         NUMERIC(38,18),
    borrowed       NUMERIC(38,18),
    interest       NUMERIC(38,18),
    net_asset      NUMERIC(38,18),
    wallet_balance NUMERIC(38,18),
    margin_balance NUMERIC(38,18),
    total          NUMERIC(38,18) NOT NULL,
    details        TEXT           NOT NULL,
    raw_uri        TEXT           NOT NULL,
    ingested_at    TIMESTAMPTZ    NOT NULL
);

CREATE TABLE IF NOT EXISTS position_snapshots (
    venue             TEXT           NOT NULL,
    account           TEXT           NOT NULL,
    snapshot_at       TIMESTAMPTZ    NOT NULL,
    symbol            TEXT           NOT NULL,
    position_amt      NUMERIC(38,18) NOT NULL,
    entry_price       NUMERIC(38,18),
    mark_price        NUMERIC(38,18),
    unrealized_profit NUMERIC(38,18),
    raw_uri           TEXT           NOT NULL,
    ingested_at       TIMESTAMPTZ    NOT NULL
);

-- One row per (venue, account, interval) loaded: which manifest (by sha256) the tables now hold for it.
-- The views read interval_end to know how far each account is loaded.
CREATE TABLE IF NOT EXISTS loads (
    venue           TEXT        NOT NULL,
    account         TEXT        NOT NULL,
    interval_start  TIMESTAMPTZ NOT NULL,
    interval_end    TIMESTAMPTZ NOT NULL,
    manifest_sha256 TEXT        NOT NULL,
    rows            BIGINT      NOT NULL,
    loaded_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (venue, account, interval_start, interval_end)
);

-- The sha256 of the view definitions in place, so views are rebuilt only when their SQL changed.
CREATE TABLE IF NOT EXISTS ledgerlake_schema (
    name   TEXT NOT NULL PRIMARY KEY,
    sha256 TEXT NOT NULL
);
