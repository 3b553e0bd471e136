-- Trials per study, budget, settings and status, with the number of distinct grid points they cover.
SELECT study, budget, reduction, lr_schedule, status,
       count(*) AS trials,
       count(DISTINCT (dataset, loss, form, lam, lam1, lam2, latent_dim)) AS points
FROM trials
GROUP BY ALL
ORDER BY study, budget, reduction, lr_schedule, status
