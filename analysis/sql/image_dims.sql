-- Per-dimension measurements of the image bottleneck studies (paper figures 4, 5, 28): one row per
-- ok trial and latent dimension, by rank of mean sigma^-2 (rank 1 = largest): mean sigma^-2, the
-- norm (2/beta) sigma^2 D' (mean and SD over the held-out images; theory 1 in active dims), D' and KL.
SELECT t.study, t.budget, t.reduction, t.lr_schedule, t.dataset, t.loss, t.form, t.lam, t.lam1, t.lam2,
       t.latent_dim, t.seed, t.trial_key,
       d.rank, d.dim, d.active, d.sigma_inv2_mean, d.norm_mean, d.norm_sd, d.dprime_mean, d.kl_mean
FROM trials t JOIN dims d USING (trial_key)
WHERE t.study IN (SELECT study FROM studies WHERE summary = 'image_summary') AND t.status = 'ok'
ORDER BY t.study, t.budget, t.latent_dim, t.form, t.seed, d.rank
