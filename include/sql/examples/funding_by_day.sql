-- Funding received and paid per day, venue and asset (all accounts together).
SELECT day,
       venue,
       asset,
       SUM(funding_received) AS received,
       SUM(funding_paid)     AS paid,
       SUM(funding_net)      AS net
FROM fees_and_funding
WHERE funding_received <> 0 OR funding_paid <> 0
GROUP BY day, venue, asset
ORDER BY day, venue, asset
