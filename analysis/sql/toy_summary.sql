-- Toy study summary, one row per (study, budget, data set, loss, lambda), averaged over seeds:
-- mean norm of the active dims (theory: 1), the sigma^-2 ratios of the active dims from the
-- smallest to the largest (theory on the toy data: 1 : 4 : 16) and the best density estimate.
WITH ok AS (
    SELECT * FROM trials WHERE study IN (SELECT study FROM studies WHERE summary = 'toy_summary') AND status = 'ok'
), per_rank AS (
    SELECT t.study, t.budget, t.dataset, t.loss, t.lam, d.rank,
           avg(d.var_ratio) AS var_ratio, avg(d.norm_mean) AS norm_mean, bool_and(d.active) AS active
    FROM ok t JOIN dims d USING (trial_key)
    GROUP BY ALL
), per_point AS (
    SELECT study, budget, dataset, loss, lam,
           avg(norm_mean) FILTER (WHERE active) AS norm_active,
           string_agg(printf('%.2f', var_ratio), ' : ' ORDER BY rank DESC) FILTER (WHERE active) AS sigma_inv2_ratios
    FROM per_rank GROUP BY ALL
), corr AS (
    SELECT study, budget, dataset, loss, lam, count(*) AS seeds,
           avg(corr_prior) AS corr_prior, avg(corr_elbo) AS corr_elbo, avg(corr_post) AS corr_post,
           avg(corr_elbo_metric) AS corr_elbo_metric, avg(corr_post_metric) AS corr_post_metric
    FROM ok GROUP BY ALL
)
SELECT c.study, c.budget, c.dataset, c.loss, c.lam, c.seeds,
       round(p.norm_active, 3) AS norm_active,
       p.sigma_inv2_ratios,
       best.name AS best_estimate,
       round(best.r, 3) AS best_corr,
       round(c.corr_post, 3) AS corr_post,
       round(c.corr_prior, 3) AS corr_prior
FROM corr c
JOIN per_point p USING (study, budget, dataset, loss, lam),
LATERAL (
    SELECT name, r FROM (VALUES ('prior', c.corr_prior), ('elbo', c.corr_elbo), ('post', c.corr_post),
                                ('elbo_metric', c.corr_elbo_metric), ('post_metric', c.corr_post_metric)) e(name, r)
    ORDER BY r DESC NULLS LAST LIMIT 1
) best
ORDER BY c.study, c.budget, c.dataset, c.loss, c.lam
