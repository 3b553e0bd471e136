-- Trials per study, budget and status.
SELECT study, budget, status, count(*) AS trials
FROM trials
GROUP BY ALL
ORDER BY study, budget, status
