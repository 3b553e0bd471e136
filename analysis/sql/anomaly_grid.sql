-- Anomaly detection (docs/method.md 5.3), one row per (budget, data set, lambda1, lambda2): mean and SD
-- over seeds of the test F1, precision and recall, the mean validation F1, the no-model reference
-- and the mean epoch of the selected snapshot. The data of an F1 heatmap: one panel per (budget,
-- data set), lambda1 on one axis and lambda2 on the other; mark the paper's point and the best
-- validation point (both in @anomaly_summary). Points of the planned grid only: a search's points
-- are in @anomaly_search.
SELECT budget, dataset, lam1, lam2, count(*) AS seeds, max(epochs) AS epochs,
       round(avg(f1), 4) AS f1, round(stddev_samp(f1), 4) AS f1_sd,
       round(avg(precision), 4) AS precision, round(stddev_samp(precision), 4) AS precision_sd,
       round(avg(recall), 4) AS recall, round(stddev_samp(recall), 4) AS recall_sd,
       round(avg(val_f1), 4) AS val_f1,
       round(avg(baseline_f1), 4) AS baseline_f1,
       round(avg(snapshot_epoch), 0) AS snapshot_epoch,
       round(avg(wall_s), 1) AS wall_s
FROM anomaly_trials t
WHERE settings = 'default' AND status = 'ok'
  AND EXISTS (SELECT 1 FROM planned g WHERE g.plan = g.study AND g.study = t.study AND g.budget = t.budget
              AND g.dataset = t.dataset AND g.lam1 = t.lam1 AND g.lam2 = t.lam2)
GROUP BY ALL
ORDER BY budget, dataset, lam1, lam2
