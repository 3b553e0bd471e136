-- Grid points that a study plans at a budget (its axes, seeds aside, with the registry's settings:
-- the `planned` table) and that have no ok trial in the store, for every (study, budget) the store
-- holds trials of. `plan` is the registry's study, `study` the one its trials are recorded as;
-- `present` counts the trials found at the point, `statuses` says what they are.
SELECT p.plan, p.study, p.budget, p.dataset, p.loss, p.form, p.lam, p.lam1, p.lam2, p.latent_dim,
       p.reduction, p.lr_schedule,
       count(t.trial_key) AS present,
       string_agg(DISTINCT t.status, ', ' ORDER BY t.status) AS statuses
FROM planned p
LEFT JOIN trials t
  ON  t.study = p.study AND t.budget = p.budget
  AND t.dataset IS NOT DISTINCT FROM p.dataset AND t.loss IS NOT DISTINCT FROM p.loss
  AND t.form IS NOT DISTINCT FROM p.form AND t.lam IS NOT DISTINCT FROM p.lam
  AND t.lam1 IS NOT DISTINCT FROM p.lam1 AND t.lam2 IS NOT DISTINCT FROM p.lam2
  AND t.latent_dim IS NOT DISTINCT FROM p.latent_dim
  AND t.reduction IS NOT DISTINCT FROM p.reduction AND t.lr_schedule IS NOT DISTINCT FROM p.lr_schedule
WHERE EXISTS (SELECT 1 FROM trials x WHERE x.study = p.study AND x.budget = p.budget)
GROUP BY ALL
HAVING count(t.trial_key) FILTER (WHERE t.status = 'ok') = 0
ORDER BY p.plan, p.study, p.budget, p.dataset, p.loss, p.form, p.lam, p.lam1, p.lam2, p.latent_dim
