-- Per-dimension summary of the toy studies (paper tables 1, 2, 4; figures 13-22): one row per
-- (study, budget, settings, data set, loss, lambda, dimension rank), averaged over the ok seeds.
-- rank 1 = largest mean sigma^-2. norm = (2/beta) sigma^2 D' (theory: 1 in active dims, 0 in
-- inactive ones); norm_sd and dprime_sd are SDs over the evaluation points; var_ratio = mean
-- sigma^-2 over the smallest among the active dims (theory on the toy data: 16 : 4 : 1).
SELECT t.study, t.budget, t.reduction, t.lr_schedule, t.dataset, t.loss, t.lam, d.rank,
       count(*) AS seeds,
       count(*) FILTER (WHERE d.active) AS active_seeds,
       avg(d.norm_mean) AS norm_mean,
       avg(d.norm_sd) AS norm_sd,
       avg(d.dprime_mean) AS dprime_mean,
       avg(d.dprime_sd) AS dprime_sd,
       avg(d.sigma_inv2_mean) AS sigma_inv2_mean,
       avg(d.var_ratio) AS var_ratio,
       avg(d.kl_mean) AS kl_mean
FROM trials t
JOIN dims d ON d.trial_key = t.trial_key
WHERE t.study IN (SELECT study FROM studies WHERE summary = 'toy_summary') AND t.status = 'ok'
GROUP BY ALL
ORDER BY t.study, t.budget, t.reduction, t.lr_schedule, t.dataset, t.loss, t.lam, d.rank
