-- Rate-distortion on the toy studies (paper figures 23, 24): per (study, budget, settings, data set,
-- loss, lambda), beta = 1/lambda and the means over ok seeds of the coding loss D(x_breve, x_hat)
-- with its theory n_active * beta / 2, the transform loss D(x, x_breve) and transform/coding.
-- ratio_theory = 21 * beta / 16 holds for squared error (sum over inputs) on the toy sources of
-- variances 1/6, 2/3, 8/3: sum_k (beta/2)^2 / v_k over 3 * beta / 2.
SELECT study, budget, reduction, lr_schedule, dataset, loss, lam,
       1.0 / lam AS beta,
       count(*) AS seeds,
       avg(n_active) AS n_active,
       avg(coding_loss) AS coding_loss,
       avg(coding_theory) AS coding_theory,
       avg(transform_loss) AS transform_loss,
       avg(transform_coding_ratio) AS transform_coding_ratio,
       CASE WHEN loss = 'se' AND reduction = 'sum' THEN 21.0 * (1.0 / lam) / 16.0 END AS ratio_theory
FROM trials
WHERE study IN (SELECT study FROM studies WHERE summary = 'toy_summary') AND status = 'ok'
GROUP BY ALL
ORDER BY study, budget, reduction, lr_schedule, dataset, loss, lam
