-- Anomaly detection, search beyond the grid (`isosweep run anomaly --search optuna`): every point
-- (lambda1, lambda2) a search evaluated, one row per (sweep, budget, data set, point), best mean
-- validation F1 first. `val_rank` 1 is the point the search chooses (validation F1 only: the
-- test half is never looked at to choose); its test precision, recall and F1 (mean and SD over the
-- point's seeds) are what the search achieves. A search is a sweep with at least one trial off the
-- study's planned grid. The lambdas are shown rounded to whole numbers; the trials view has them
-- in full.
WITH searches AS (
    SELECT DISTINCT t.sweep
    FROM anomaly_trials t
    WHERE t.settings = 'default'
      AND NOT EXISTS (SELECT 1 FROM planned p
                      WHERE p.study = t.study AND p.budget = t.budget AND p.dataset = t.dataset
                        AND p.lam1 = t.lam1 AND p.lam2 = t.lam2)
), points AS (
    SELECT t.study, t.sweep, t.budget, t.dataset, t.lam1, t.lam2, count(*) AS seeds, max(t.epochs) AS epochs,
           avg(t.val_f1) AS vf, avg(t.f1) AS f, stddev_samp(t.f1) AS f_sd,
           avg(t.precision) AS p, avg(t.recall) AS r, avg(t.baseline_f1) AS bf
    FROM anomaly_trials t JOIN searches s USING (sweep)
    WHERE t.settings = 'default' AND t.status = 'ok'
    GROUP BY ALL
)
SELECT study, sweep, budget, dataset,
       row_number() OVER (PARTITION BY sweep, budget, dataset ORDER BY vf DESC NULLS LAST, f_sd, lam1, lam2) AS val_rank,
       round(lam1) AS lam1, round(lam2) AS lam2, seeds, epochs,
       round(vf, 4) AS val_f1,
       round(f, 4) AS f1, round(f_sd, 4) AS f1_sd,
       round(p, 4) AS precision, round(r, 4) AS recall,
       round(bf, 4) AS baseline_f1
FROM points
ORDER BY sweep, budget, dataset, val_rank
