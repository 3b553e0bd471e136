-- Anomaly detection (docs/method.md 5.3): what each recorded setting moves. One row per (budget, data
-- set, lambda1, lambda2, settings), `default` first: mean (SD) test F1 over seeds with its 95 %
-- interval (mean +- t(0.975, n-1) * SD / sqrt(n)), and, for a setting, the paired difference to
-- its reference trials of the same seeds (a setting keeps the default's 50/50 halves, initial
-- weights and noise for a seed, so pairing removes most of the split's variance): its mean, SD,
-- 95 % interval and the seeds paired. `moved` says whether that interval excludes 0.
-- The reference isolates the setting: a trial that differs from the plan in its snapshot rule
-- alone is compared with the default trials; any other, with the trials that differ from the
-- plan in nothing but having its snapshot rule (`scaling=train_half, snapshot_rule=val_loss`
-- with `snapshot_rule=val_loss`, as in a store of trials run under the earlier default rule).
-- The settings come from `isosweep run anomaly[-paper] --where "...,scaling=train_half|all_rows"`
-- (isosweep.studies.ANOMALY_SETTINGS); the label names each one that differs from the plan.
WITH ok AS (
    SELECT budget, dataset, lam1, lam2, seed, settings, training_settings, snapshot_rule, f1, val_f1,
           snapshot_epoch, baseline_f1
    FROM anomaly_trials
    WHERE status = 'ok'
), t975(df, t) AS (
    -- Student's t, 0.975 quantile, by degrees of freedom (beyond 30: 30's, within 2 %).
    VALUES (1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776), (5, 2.571), (6, 2.447), (7, 2.365), (8, 2.306),
           (9, 2.262), (10, 2.228), (11, 2.201), (12, 2.179), (13, 2.160), (14, 2.145), (15, 2.131),
           (16, 2.120), (17, 2.110), (18, 2.101), (19, 2.093), (20, 2.086), (21, 2.080), (22, 2.074),
           (23, 2.069), (24, 2.064), (25, 2.060), (26, 2.056), (27, 2.052), (28, 2.048), (29, 2.045),
           (30, 2.042)
), per_setting AS (
    SELECT budget, dataset, lam1, lam2, settings, count(*) AS seeds,
           avg(f1) AS f, stddev_samp(f1) AS f_sd, avg(val_f1) AS vf, avg(snapshot_epoch) AS epoch,
           avg(baseline_f1) AS bf
    FROM ok
    GROUP BY ALL
), paired AS (
    SELECT s.budget, s.dataset, s.lam1, s.lam2, s.settings, min(d.settings) AS reference, count(*) AS pairs,
           avg(s.f1 - d.f1) AS diff, stddev_samp(s.f1 - d.f1) AS diff_sd
    FROM ok s JOIN ok d ON s.settings <> 'default' AND d.budget = s.budget
        AND d.dataset = s.dataset AND d.lam1 = s.lam1 AND d.lam2 = s.lam2 AND d.seed = s.seed
        AND CASE WHEN s.training_settings = 'default' THEN d.settings = 'default'
                 ELSE d.training_settings = 'default' AND d.snapshot_rule IS NOT DISTINCT FROM s.snapshot_rule END
    GROUP BY s.budget, s.dataset, s.lam1, s.lam2, s.settings
)
SELECT p.budget, p.dataset, p.lam1, p.lam2, p.settings, p.seeds,
       round(p.f, 4) AS f1, round(p.f_sd, 4) AS f1_sd,
       round(p.f - tf.t * p.f_sd / sqrt(p.seeds), 4) AS f1_ci_low,
       round(p.f + tf.t * p.f_sd / sqrt(p.seeds), 4) AS f1_ci_high,
       q.reference,
       q.pairs,
       -- A difference that rounds to zero prints as 0, not -0 (+ 0.0 turns -0.0 into 0.0).
       round(q.diff, 4) + 0.0 AS f1_minus_reference,
       round(q.diff_sd, 4) AS diff_sd,
       round(q.diff - td.t * q.diff_sd / sqrt(q.pairs), 4) + 0.0 AS diff_ci_low,
       round(q.diff + td.t * q.diff_sd / sqrt(q.pairs), 4) + 0.0 AS diff_ci_high,
       CASE WHEN q.pairs IS NULL OR q.pairs < 2 THEN NULL
            WHEN q.diff - td.t * q.diff_sd / sqrt(q.pairs) > 0 THEN 'up'
            WHEN q.diff + td.t * q.diff_sd / sqrt(q.pairs) < 0 THEN 'down'
            ELSE 'within noise' END AS moved,
       round(p.vf, 4) AS val_f1,
       round(p.epoch, 0) AS snapshot_epoch,
       round(p.bf, 4) AS baseline_f1
FROM per_setting p
LEFT JOIN paired q USING (budget, dataset, lam1, lam2, settings)
LEFT JOIN t975 tf ON tf.df = least(p.seeds - 1, 30)
LEFT JOIN t975 td ON td.df = least(q.pairs - 1, 30)
ORDER BY p.budget, p.dataset, p.lam1, p.lam2, p.settings <> 'default', p.settings
