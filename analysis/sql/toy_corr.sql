-- Density estimation on the toy studies (paper figures 13-21, right panels): per (study, budget,
-- settings, data set, loss, lambda), the mean over ok seeds of the correlation between the true
-- p(x) and each of the five estimates, Pearson on raw values (corr_*) and Spearman (rank_*).
SELECT study, budget, reduction, lr_schedule, dataset, loss, lam,
       count(*) AS seeds,
       avg(corr_prior) AS corr_prior, avg(corr_elbo) AS corr_elbo, avg(corr_post) AS corr_post,
       avg(corr_elbo_metric) AS corr_elbo_metric, avg(corr_post_metric) AS corr_post_metric,
       avg(rank_prior) AS rank_prior, avg(rank_elbo) AS rank_elbo, avg(rank_post) AS rank_post,
       avg(rank_elbo_metric) AS rank_elbo_metric, avg(rank_post_metric) AS rank_post_metric
FROM trials
WHERE study IN (SELECT study FROM studies WHERE summary = 'toy_summary') AND status = 'ok'
GROUP BY ALL
ORDER BY study, budget, reduction, lr_schedule, dataset, loss, lam
