-- Anomaly detection (METHOD.md 5.3): test F1, validation F1 and validation loss at each of the
-- snapshots, averaged over seeds, per (budget, data set, lambda1, lambda2); `selected` counts the
-- seeds whose run kept that snapshot (lowest validation loss). F1 is not monotone in training time.
SELECT t.budget, t.dataset, t.lam1, t.lam2, c.epoch, count(*) AS seeds,
       round(avg(c.f1), 4) AS f1, round(stddev_samp(c.f1), 4) AS f1_sd,
       round(avg(c.val_f1), 4) AS val_f1,
       round(avg(c.val_loss), 4) AS val_loss,
       round(avg(c.loss), 4) AS train_loss,
       count(*) FILTER (WHERE c.epoch = t.snapshot_epoch) AS selected
FROM anomaly_trials t JOIN curves c USING (trial_key)
WHERE t.settings = 'default' AND t.status = 'ok'
GROUP BY ALL
ORDER BY t.budget, t.dataset, t.lam1, t.lam2, c.epoch
