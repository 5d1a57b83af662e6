-- Fees paid last month per venue and asset, net of rebates, with funding beside them.
SELECT venue,
       asset,
       SUM(fees_paid)                         AS fees_paid,
       SUM(rebates_received)                  AS rebates_received,
       SUM(fees_paid) - SUM(rebates_received) AS net_fees,
       SUM(funding_net)                       AS funding_net
FROM fees_and_funding
WHERE day >= CAST(date_trunc('month', current_date) - INTERVAL '1 month' AS DATE)
  AND day <  CAST(date_trunc('month', current_date) AS DATE)
GROUP BY venue, asset
ORDER BY venue, asset
