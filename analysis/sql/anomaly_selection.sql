-- Anomaly detection (docs/method.md 5.3): the test F1 (mean and SD over seeds) that each rule for
-- choosing one of a run's snapshots would give, per (budget, data set, lambda1, lambda2).
-- `best validation F1` (ties: lower validation loss) is the rule the studies plan; `lowest
-- validation loss` and `last` use no label at all; `best test F1` peeks at the test labels, an
-- upper bound only, never a result. The rule changes nothing in training, so a seed's trials that
-- differ in their snapshot rule alone record the same snapshots: `anomaly_runs` counts one of them
-- (the one with the planned rule, if any), so that a store of trials run under another rule reads
-- the same here.
WITH snaps AS (
    SELECT t.budget, t.dataset, t.lam1, t.lam2, t.seed, c.epoch, c.f1, c.val_f1, c.val_loss,
           row_number() OVER (PARTITION BY t.trial_key ORDER BY c.val_loss, c.epoch) AS by_loss,
           row_number() OVER (PARTITION BY t.trial_key ORDER BY c.val_f1 DESC NULLS LAST, c.val_loss, c.epoch) AS by_val_f1,
           row_number() OVER (PARTITION BY t.trial_key ORDER BY c.epoch DESC) AS by_last,
           row_number() OVER (PARTITION BY t.trial_key ORDER BY c.f1 DESC, c.epoch) AS by_test_f1
    FROM anomaly_runs t JOIN curves c USING (trial_key)
), chosen AS (
    SELECT 1 AS k, 'lowest validation loss' AS rule, * FROM snaps WHERE by_loss = 1
    UNION ALL SELECT 2, 'best validation F1', * FROM snaps WHERE by_val_f1 = 1
    UNION ALL SELECT 3, 'last', * FROM snaps WHERE by_last = 1
    UNION ALL SELECT 4, 'best test F1 (peeks at test labels)', * FROM snaps WHERE by_test_f1 = 1
)
SELECT budget, dataset, lam1, lam2, rule, count(*) AS seeds,
       round(avg(f1), 4) AS f1, round(stddev_samp(f1), 4) AS f1_sd,
       round(avg(epoch), 0) AS mean_epoch
FROM chosen
GROUP BY budget, dataset, lam1, lam2, k, rule
ORDER BY budget, dataset, lam1, lam2, k
