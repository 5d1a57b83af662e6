-- PostgreSQL only: the data tables' primary keys (tables.sql says why DuckDB has none). Added once, when
-- the table has no primary key yet; a database created while tables.sql still declared them keeps its own.
-- One statement per line: the splitter cuts at a semicolon that ends a line.

DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_constraint WHERE conrelid = 'ledger_entries'::regclass AND contype = 'p') THEN ALTER TABLE ledger_entries ADD PRIMARY KEY (venue, account, entry_id); END IF; END $$;

DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_constraint WHERE conrelid = 'balance_snapshots'::regclass AND contype = 'p') THEN ALTER TABLE balance_snapshots ADD PRIMARY KEY (venue, account, snapshot_type, snapshot_at, asset); END IF; END $$;

DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_constraint WHERE conrelid = 'position_snapshots'::regclass AND contype = 'p') THEN ALTER TABLE position_snapshots ADD PRIMARY KEY (venue, account, snapshot_at, symbol); END IF; END $$;
