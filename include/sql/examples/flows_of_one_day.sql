-- What moved the balances yesterday: flows per venue, asset and entry type.
SELECT venue,
       asset,
       entry_type,
       SUM(entries)    AS entries,
       SUM(inflow)     AS inflow,
       SUM(outflow)    AS outflow,
       SUM(net_amount) AS net_amount
FROM daily_flows
WHERE day = current_date - 1
GROUP BY venue, asset, entry_type
ORDER BY venue, asset, entry_type
