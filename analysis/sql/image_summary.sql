-- Image bottleneck studies (docs/method.md 5.2), one row per ok trial: the number of active dims
-- (mean KL > 0.1), the mean of the per-dim norms (2/beta) sigma^2 D' over the active dims and over
-- the dims with mean sigma^-2 > 10 (theory: 1; below 1 where sigma^-2 is small, since the exact
-- optimum of a linear-Gaussian dim is 1 - sigma^2), the coding loss D(x_breve, x_hat) against
-- n_active beta / 2, the transform loss D(x, x_breve), and the trial's key (its traversal grid is
-- <store>/artifacts/<trial_key>/traversal.png).
WITH ok AS (
    SELECT * FROM trials WHERE study IN (SELECT study FROM studies WHERE summary = 'image_summary') AND status = 'ok'
), per_trial AS (
    SELECT trial_key,
           avg(norm_mean) FILTER (WHERE active) AS norm_active,
           count(*) FILTER (WHERE sigma_inv2_mean > 10) AS n_strong,
           avg(norm_mean) FILTER (WHERE sigma_inv2_mean > 10) AS norm_strong,
           max(sigma_inv2_mean) AS sigma_inv2_max
    FROM dims GROUP BY trial_key
)
SELECT t.study, t.budget, t.reduction, t.lr_schedule, t.dataset, t.loss, t.form, t.lam, t.lam1, t.lam2,
       t.latent_dim, t.hidden, t.seed, t.iterations,
       t.n_active,
       round(p.norm_active, 3) AS norm_active,
       p.n_strong,
       round(p.norm_strong, 3) AS norm_strong,
       round(p.sigma_inv2_max, 1) AS sigma_inv2_max,
       t.coding_loss, t.coding_theory, t.transform_loss,
       t.loss_final, round(t.wall_s, 1) AS wall_s, t.trial_key
FROM ok t JOIN per_trial p USING (trial_key)
ORDER BY t.study, t.budget, t.latent_dim, t.form, t.seed
