-- Anomaly detection (docs/method.md 5.3): test F1, validation F1 and validation loss at each of the
-- snapshots, averaged over seeds, per (budget, data set, lambda1, lambda2); `selected` counts the
-- seeds whose run kept that snapshot (by its snapshot rule). F1 is not monotone in training time.
-- A seed's trials that differ in their snapshot rule alone record the same snapshots:
-- `anomaly_runs` counts one (the one with the planned rule, if any), as in @anomaly_selection.
SELECT t.budget, t.dataset, t.lam1, t.lam2, c.epoch, count(*) AS seeds,
       round(avg(c.f1), 4) AS f1, round(stddev_samp(c.f1), 4) AS f1_sd,
       round(avg(c.val_f1), 4) AS val_f1,
       round(avg(c.val_loss), 4) AS val_loss,
       round(avg(c.loss), 4) AS train_loss,
       count(*) FILTER (WHERE c.epoch = t.snapshot_epoch) AS selected
FROM anomaly_runs t JOIN curves c USING (trial_key)
GROUP BY ALL
ORDER BY t.budget, t.dataset, t.lam1, t.lam2, c.epoch
