-- Balance history of one asset: the closing balance of every account holding USDT, day by day.
SELECT day,
       venue,
       account,
       closing_balance,
       source
FROM daily_balances
WHERE asset = 'USDT'
ORDER BY venue, account, day
