-- ledgerlake analyst views. One text for DuckDB and PostgreSQL: both run it unchanged and give the same
-- columns with the same types. Days are UTC calendar days, whatever the session's time zone. Amounts are
-- NUMERIC(38,18), exact. Statements are separated by a semicolon at the end of a line.
--
-- Views (each documented above its definition):
--   ledger_days       per venue, account, asset and day with ledger entries: counts, net amount, balances
--   daily_balances    closing balance per venue, account, asset and day
--   daily_flows       sums per venue, account, asset, day and unified entry type
--   fees_and_funding  fees, rebates and funding per venue, account, asset and day
--   reconciliation    balance implied by the ledger beside the balance the venue reported, per day

-- ledger_days: one row per (venue, account, asset, day) that has ledger entries. The building block of
-- daily_balances and reconciliation; handy on its own.
--   venue, account, asset  TEXT
--   day               DATE            UTC day of occurred_at
--   entries           BIGINT          ledger entries that day
--   net_amount        NUMERIC(38,18)  sum of amount
--   opening_reported  NUMERIC(38,18)  balance before the day's first entry as the venue reported it
--                                     (balance_before, else balance_after - amount); null if the venue
--                                     reports no balances
--   closing_reported  NUMERIC(38,18)  balance_after of the day's last entry; null if the venue reports none
--   entry_breaks      BIGINT          entries whose reported balances do not chain: balance_before + amount
--                                     <> balance_after, or balance_before / balance_after - amount differs
--                                     from the previous entry's balance_after (the previous entry may be on
--                                     an earlier day; a day missing from the warehouse shows up here)
--   first_entry_at, last_entry_at  TIMESTAMPTZ
CREATE VIEW ledger_days AS
WITH ordered AS (
    SELECT
        venue,
        account,
        asset,
        CAST(occurred_at AT TIME ZONE 'UTC' AS DATE) AS day,
        occurred_at,
        amount,
        balance_before,
        balance_after,
        COALESCE(balance_before, balance_after - amount) AS reported_before,
        LAG(balance_after) OVER (
            PARTITION BY venue, account, asset ORDER BY occurred_at, entry_seq, entry_id
        ) AS previous_balance_after,
        ROW_NUMBER() OVER (
            PARTITION BY venue, account, asset, CAST(occurred_at AT TIME ZONE 'UTC' AS DATE)
            ORDER BY occurred_at, entry_seq, entry_id
        ) AS position_in_day,
        ROW_NUMBER() OVER (
            PARTITION BY venue, account, asset, CAST(occurred_at AT TIME ZONE 'UTC' AS DATE)
            ORDER BY occurred_at DESC, entry_seq DESC, entry_id DESC
        ) AS position_from_end
    FROM ledger_entries
)
SELECT
    venue,
    account,
    asset,
    day,
    COUNT(*) AS entries,
    CAST(SUM(amount) AS NUMERIC(38,18)) AS net_amount,
    CAST(MAX(CASE WHEN position_in_day = 1 THEN reported_before END) AS NUMERIC(38,18)) AS opening_reported,
    CAST(MAX(CASE WHEN position_from_end = 1 THEN balance_after END) AS NUMERIC(38,18)) AS closing_reported,
    CAST(SUM(CASE
        WHEN balance_before IS NOT NULL AND balance_after IS NOT NULL
             AND balance_before + amount <> balance_after THEN 1
        WHEN reported_before IS NOT NULL AND previous_balance_after IS NOT NULL
             AND reported_before <> previous_balance_after THEN 1
        ELSE 0
    END) AS BIGINT) AS entry_breaks,
    MIN(occurred_at) AS first_entry_at,
    MAX(occurred_at) AS last_entry_at
FROM ordered
GROUP BY venue, account, asset, day;

-- daily_balances: the closing balance per venue, account, asset and UTC day.
--   venue, account, asset  TEXT
--   day              DATE
--   closing_balance  NUMERIC(38,18)  the balance at the end of the day, by source:
--   source           TEXT   'balance_after': the venue's own balance_after of the day's last entry
--                                            (exchangehubx, coinbase, pacifica);
--                           'running_sum':   the sum of every loaded amount up to that day (sunx, which
--                                            reports no balances): the true balance only if the warehouse
--                                            holds the account's history from its first entry;
--                           'snapshot':      Binance's daily snapshot total (spot free + locked, margin net
--                                            asset, futures wallet balance), summed over the snapshot types;
--                                            per-wallet figures are in balance_snapshots
--   entries          BIGINT  ledger entries that day; 0 on a day without entries, whose balance is carried
--                           forward from the day before; null for snapshot rows
--   as_of            TIMESTAMPTZ  time of the last entry or snapshot behind closing_balance
-- Ledger venues get a row for every day from the asset's first entry to the last day loaded for the
-- account (the loads table), so a balance history has no holes. Binance has rows only for days with a
-- snapshot: a missing snapshot is unknown, not unchanged.
CREATE VIEW daily_balances AS
WITH RECURSIVE
loaded_through AS (
    SELECT venue, account,
           CAST((MAX(interval_end) AT TIME ZONE 'UTC') - INTERVAL '1 microsecond' AS DATE) AS last_day
    FROM loads
    GROUP BY venue, account
),
asset_span AS (
    SELECT d.venue, d.account, d.asset,
           MIN(d.day) AS first_day,
           CASE WHEN MAX(l.last_day) > MAX(d.day) THEN MAX(l.last_day) ELSE MAX(d.day) END AS last_day,
           MAX(CASE WHEN d.closing_reported IS NOT NULL THEN 1 ELSE 0 END) AS reports_balances
    FROM ledger_days d
    LEFT JOIN loaded_through l ON l.venue = d.venue AND l.account = d.account
    GROUP BY d.venue, d.account, d.asset
),
calendar (venue, account, asset, day, last_day, reports_balances) AS (
    SELECT venue, account, asset, first_day, last_day, reports_balances FROM asset_span
    UNION ALL
    SELECT venue, account, asset, CAST(day + 1 AS DATE), last_day, reports_balances
    FROM calendar
    WHERE day < last_day
),
filled AS (
    SELECT
        c.venue, c.account, c.asset, c.day, c.reports_balances,
        COALESCE(d.entries, 0) AS entries,
        d.closing_reported,
        SUM(COALESCE(d.net_amount, 0)) OVER (
            PARTITION BY c.venue, c.account, c.asset ORDER BY c.day ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS running_sum,
        MAX(d.last_entry_at) OVER (
            PARTITION BY c.venue, c.account, c.asset ORDER BY c.day ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS as_of,
        -- numbers the run of days that share the last reported closing balance (carry-forward groups)
        COUNT(d.closing_reported) OVER (
            PARTITION BY c.venue, c.account, c.asset ORDER BY c.day ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS reported_run
    FROM calendar c
    LEFT JOIN ledger_days d
        ON d.venue = c.venue AND d.account = c.account AND d.asset = c.asset AND d.day = c.day
),
ledger_balances AS (
    SELECT
        venue, account, asset, day,
        CAST(CASE
            WHEN reports_balances = 1
                THEN MAX(closing_reported) OVER (PARTITION BY venue, account, asset, reported_run)
            ELSE running_sum
        END AS NUMERIC(38,18)) AS closing_balance,
        CASE WHEN reports_balances = 1 THEN 'balance_after' ELSE 'running_sum' END AS source,
        CAST(entries AS BIGINT) AS entries,
        as_of
    FROM filled
),
latest_snapshot AS (
    SELECT
        venue, account, asset, total, snapshot_at,
        CAST(snapshot_at AT TIME ZONE 'UTC' AS DATE) AS day,
        ROW_NUMBER() OVER (
            PARTITION BY venue, account, snapshot_type, asset, CAST(snapshot_at AT TIME ZONE 'UTC' AS DATE)
            ORDER BY snapshot_at DESC
        ) AS newest_first
    FROM balance_snapshots
),
snapshot_balances AS (
    SELECT
        venue, account, asset, day,
        CAST(SUM(total) AS NUMERIC(38,18)) AS closing_balance,
        'snapshot' AS source,
        CAST(NULL AS BIGINT) AS entries,
        MAX(snapshot_at) AS as_of
    FROM latest_snapshot
    WHERE newest_first = 1
    GROUP BY venue, account, asset, day
)
SELECT venue, account, asset, day, closing_balance, source, entries, as_of FROM ledger_balances
UNION ALL
SELECT venue, account, asset, day, closing_balance, source, entries, as_of FROM snapshot_balances;

-- daily_flows: what moved the balances, per venue, account, asset, UTC day and unified entry type.
--   venue, account, asset  TEXT
--   day         DATE
--   entry_type  TEXT            the unified type (deposit, withdrawal, transfer, trade, realized_pnl, fee,
--                               rebate, funding, liquidation, settlement, reward, adjustment, other)
--   entries     BIGINT
--   inflow      NUMERIC(38,18)  sum of the positive amounts (>= 0)
--   outflow     NUMERIC(38,18)  sum of the negative amounts, as a positive number (>= 0)
--   net_amount  NUMERIC(38,18)  sum of amount = inflow - outflow
CREATE VIEW daily_flows AS
SELECT
    venue,
    account,
    asset,
    CAST(occurred_at AT TIME ZONE 'UTC' AS DATE) AS day,
    entry_type,
    COUNT(*) AS entries,
    CAST(SUM(CASE WHEN amount > 0 THEN amount ELSE 0 END) AS NUMERIC(38,18)) AS inflow,
    CAST(-SUM(CASE WHEN amount < 0 THEN amount ELSE 0 END) AS NUMERIC(38,18)) AS outflow,
    CAST(SUM(amount) AS NUMERIC(38,18)) AS net_amount
FROM ledger_entries
GROUP BY venue, account, asset, CAST(occurred_at AT TIME ZONE 'UTC' AS DATE), entry_type;

-- fees_and_funding: trading costs per venue, account, asset and UTC day (days with at least one fee,
-- rebate or funding entry). Signs are turned so each column reads as its name says.
--   venue, account, asset  TEXT
--   day               DATE
--   entries           BIGINT          fee, rebate and funding entries that day
--   fees_paid         NUMERIC(38,18)  fees paid: minus the sum of fee amounts (a refunded fee lowers it)
--   rebates_received  NUMERIC(38,18)  sum of rebate amounts
--   funding_received  NUMERIC(38,18)  sum of the positive funding amounts
--   funding_paid      NUMERIC(38,18)  minus the sum of the negative funding amounts
--   funding_net       NUMERIC(38,18)  sum of funding amounts (received - paid)
--   net_amount        NUMERIC(38,18)  the day's net effect of all three on the balance
--                                     (= rebates_received + funding_net - fees_paid)
CREATE VIEW fees_and_funding AS
SELECT
    venue,
    account,
    asset,
    CAST(occurred_at AT TIME ZONE 'UTC' AS DATE) AS day,
    COUNT(*) AS entries,
    CAST(-SUM(CASE WHEN entry_type = 'fee' THEN amount ELSE 0 END) AS NUMERIC(38,18)) AS fees_paid,
    CAST(SUM(CASE WHEN entry_type = 'rebate' THEN amount ELSE 0 END) AS NUMERIC(38,18)) AS rebates_received,
    CAST(SUM(CASE WHEN entry_type = 'funding' AND amount > 0 THEN amount ELSE 0 END) AS NUMERIC(38,18))
        AS funding_received,
    CAST(-SUM(CASE WHEN entry_type = 'funding' AND amount < 0 THEN amount ELSE 0 END) AS NUMERIC(38,18))
        AS funding_paid,
    CAST(SUM(CASE WHEN entry_type = 'funding' THEN amount ELSE 0 END) AS NUMERIC(38,18)) AS funding_net,
    CAST(SUM(amount) AS NUMERIC(38,18)) AS net_amount
FROM ledger_entries
WHERE entry_type IN ('fee', 'rebate', 'funding')
GROUP BY venue, account, asset, CAST(occurred_at AT TIME ZONE 'UTC' AS DATE);

-- reconciliation: per venue, account, asset and UTC day, the balance the ledger implies (opening balance
-- plus the day's amounts) beside the balance the venue reported, and where they disagree.
--   venue, account, asset  TEXT
--   day               DATE
--   entries           BIGINT          ledger entries that day (null for snapshot rows)
--   opening_balance   NUMERIC(38,18)  balance at the start of the day: the venue's reported closing balance
--                                     of the previous day with entries (on the first loaded day: the first
--                                     entry's balance_before, or balance_after - amount); for sunx the
--                                     running sum before the day; for binance the previous snapshot total
--   net_amount        NUMERIC(38,18)  sum of the day's amounts (null for binance: no ledger)
--   implied_closing   NUMERIC(38,18)  opening_balance + net_amount (null for binance)
--   reported_closing  NUMERIC(38,18)  the venue's balance at the end of the day: balance_after of the last
--                                     entry, or the snapshot total; null for sunx (reports no balances)
--   reported_change   NUMERIC(38,18)  reported_closing - opening_balance
--   difference        NUMERIC(38,18)  reported_closing - implied_closing; 0 when the ledger reconciles
--   entry_breaks      BIGINT          entries that day whose reported balances do not chain (see ledger_days)
--   status            TEXT   'ok'           difference = 0 and no entry breaks
--                            'mismatch'     the ledger and the reported balances disagree: look here
--                            'not_reported' the venue reports no balances (sunx): implied_closing only
--                            'report_only'  binance snapshots: reported totals day over day, no ledger
CREATE VIEW reconciliation AS
WITH ledger AS (
    SELECT
        venue, account, asset, day, entries, net_amount, closing_reported, entry_breaks,
        MAX(CASE WHEN closing_reported IS NOT NULL THEN 1 ELSE 0 END) OVER (
            PARTITION BY venue, account, asset
        ) AS reports_balances,
        COALESCE(
            LAG(closing_reported) OVER (PARTITION BY venue, account, asset ORDER BY day),
            opening_reported
        ) AS opening_from_venue,
        SUM(net_amount) OVER (
            PARTITION BY venue, account, asset ORDER BY day ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS running_sum
    FROM ledger_days
),
ledger_rows AS (
    SELECT
        venue, account, asset, day, entries,
        CASE WHEN reports_balances = 1 THEN opening_from_venue ELSE running_sum - net_amount END AS opening_balance,
        net_amount,
        closing_reported AS reported_closing,
        entry_breaks,
        reports_balances
    FROM ledger
),
snapshot_rows AS (
    SELECT
        venue, account, asset, day,
        LAG(closing_balance) OVER (PARTITION BY venue, account, asset ORDER BY day) AS opening_balance,
        closing_balance AS reported_closing
    FROM daily_balances
    WHERE source = 'snapshot'
)
SELECT
    venue,
    account,
    asset,
    day,
    CAST(entries AS BIGINT) AS entries,
    CAST(opening_balance AS NUMERIC(38,18)) AS opening_balance,
    CAST(net_amount AS NUMERIC(38,18)) AS net_amount,
    CAST(opening_balance + net_amount AS NUMERIC(38,18)) AS implied_closing,
    CAST(reported_closing AS NUMERIC(38,18)) AS reported_closing,
    CAST(reported_closing - opening_balance AS NUMERIC(38,18)) AS reported_change,
    CAST(reported_closing - (opening_balance + net_amount) AS NUMERIC(38,18)) AS difference,
    CAST(entry_breaks AS BIGINT) AS entry_breaks,
    CASE
        WHEN reports_balances = 0 THEN 'not_reported'
        WHEN reported_closing = opening_balance + net_amount AND entry_breaks = 0 THEN 'ok'
        ELSE 'mismatch'
    END AS status
FROM ledger_rows
UNION ALL
SELECT
    venue,
    account,
    asset,
    day,
    CAST(NULL AS BIGINT),
    CAST(opening_balance AS NUMERIC(38,18)),
    CAST(NULL AS NUMERIC(38,18)),
    CAST(NULL AS NUMERIC(38,18)),
    CAST(reported_closing AS NUMERIC(38,18)),
    CAST(reported_closing - opening_balance AS NUMERIC(38,18)),
    CAST(NULL AS NUMERIC(38,18)),
    CAST(NULL AS BIGINT),
    'report_only'
FROM snapshot_rows;
