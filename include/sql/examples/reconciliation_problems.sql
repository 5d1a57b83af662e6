-- Where the ledger and the venue's reported balances disagree, newest first.
SELECT day,
       venue,
       account,
       asset,
       implied_closing,
       reported_closing,
       difference,
       entry_breaks
FROM reconciliation
WHERE status = 'mismatch'
ORDER BY day DESC, venue, account, asset
