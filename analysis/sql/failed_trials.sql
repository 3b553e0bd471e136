-- Trials recorded as failed or diverged, with the first line of their error.
SELECT study, budget, reduction, lr_schedule, dataset, loss, form, lam, lam1, lam2, latent_dim, seed,
       status, split_part(coalesce(error, ''), chr(10), 1) AS error, trial_key
FROM trials
WHERE status <> 'ok'
ORDER BY study, budget, dataset, loss, form, lam, lam1, lam2, latent_dim, seed
