-- Per-point densities for scatter plots on the toy studies (paper figures 3 and 10): for each
-- (study, budget, settings, data set, loss, lambda), the ok trial of the lowest seed that kept
-- points; the true p(x) and the five estimates as exp(log-value - its max over the trial), i.e.
-- scaled to a largest value of 1 (Pearson R is scale-free).
WITH pick AS (
    SELECT trial_key, study, budget, reduction, lr_schedule, dataset, loss, lam, seed,
           row_number() OVER (PARTITION BY study, budget, reduction, lr_schedule, dataset, loss, lam
                              ORDER BY seed, trial_key) AS nth
    FROM trials
    WHERE study IN (SELECT study FROM studies WHERE summary = 'toy_summary') AND status = 'ok' AND trial_key IN (SELECT trial_key FROM points)
)
SELECT k.study, k.budget, k.reduction, k.lr_schedule, k.dataset, k.loss, k.lam, k.seed, k.trial_key,
       exp(p.log_p_true - max(p.log_p_true) OVER w) AS p_true,
       exp(p.log_prior - max(p.log_prior) OVER w) AS prior,
       exp(p.log_elbo - max(p.log_elbo) OVER w) AS elbo,
       exp(p.log_post - max(p.log_post) OVER w) AS post,
       exp(p.log_elbo_metric - max(p.log_elbo_metric) OVER w) AS elbo_metric,
       exp(p.log_post_metric - max(p.log_post_metric) OVER w) AS post_metric
FROM pick k
JOIN points p ON p.trial_key = k.trial_key
WHERE k.nth = 1
WINDOW w AS (PARTITION BY p.trial_key)
ORDER BY k.study, k.budget, k.reduction, k.lr_schedule, k.dataset, k.loss, k.lam
