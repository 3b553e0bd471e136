-- Study custom (your own data) summary, one row per (budget, data file, loss, lambda), averaged
-- over seeds: the number of active dims, their mean norm (theory: 1), their sigma^-2 ratios from
-- the smallest to the largest (theory: the variances of the data's principal directions, as PCA
-- would rank them) and, where the file has a density column, the best density estimate and the
-- metric-aware ones (Pearson R with the true p(x) on raw values). `data_hash` is the SHA-256 of
-- the data file's bytes: `isosweep run custom` prints its first 16 characters.
WITH ok AS (
    SELECT * FROM trials WHERE study IN (SELECT study FROM studies WHERE summary = 'custom_summary') AND status = 'ok'
), per_rank AS (
    SELECT t.study, t.budget, t.data_hash, t.loss, t.lam, d.rank,
           avg(d.var_ratio) AS var_ratio, avg(d.norm_mean) AS norm_mean, bool_and(d.active) AS active
    FROM ok t JOIN dims d USING (trial_key)
    GROUP BY ALL
), per_point AS (
    SELECT study, budget, data_hash, loss, lam,
           avg(norm_mean) FILTER (WHERE active) AS norm_active,
           string_agg(printf('%.2f', var_ratio), ' : ' ORDER BY rank DESC) FILTER (WHERE active) AS sigma_inv2_ratios
    FROM per_rank GROUP BY ALL
), corr AS (
    SELECT study, budget, data_hash, loss, lam, count(*) AS seeds, avg(n_active) AS n_active,
           avg(corr_prior) AS corr_prior, avg(corr_elbo) AS corr_elbo, avg(corr_post) AS corr_post,
           avg(corr_elbo_metric) AS corr_elbo_metric, avg(corr_post_metric) AS corr_post_metric
    FROM ok GROUP BY ALL
)
SELECT c.study, c.budget, c.data_hash, c.loss, c.lam, c.seeds,
       c.n_active,
       round(p.norm_active, 3) AS norm_active,
       p.sigma_inv2_ratios,
       CASE WHEN best.r IS NOT NULL THEN best.name END AS best_estimate,
       round(best.r, 3) AS best_corr,
       round(c.corr_elbo_metric, 3) AS corr_elbo_metric,
       round(c.corr_post_metric, 3) AS corr_post_metric,
       round(c.corr_prior, 3) AS corr_prior
FROM corr c
LEFT JOIN per_point p USING (study, budget, data_hash, loss, lam),
LATERAL (
    SELECT name, r FROM (VALUES ('prior', c.corr_prior), ('elbo', c.corr_elbo), ('post', c.corr_post),
                                ('elbo_metric', c.corr_elbo_metric), ('post_metric', c.corr_post_metric)) e(name, r)
    ORDER BY r DESC NULLS LAST LIMIT 1
) best
ORDER BY c.study, c.budget, c.data_hash, c.loss, c.lam
