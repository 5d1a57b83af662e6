-- PostgreSQL only: a load deletes one (venue, account, time range) before it inserts; without these
-- indexes each delete scans the table. (DuckDB's per-block min/max zone maps do this job unasked, and an
-- extra ART index there would only slow the inserts.)

CREATE INDEX IF NOT EXISTS ledger_entries_by_time ON ledger_entries (venue, account, occurred_at);

CREATE INDEX IF NOT EXISTS balance_snapshots_by_time ON balance_snapshots (venue, account, snapshot_at);
