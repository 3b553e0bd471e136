-- Anomaly detection (docs/method.md 5.3), per budget and data set: mean (SD) over seeds of the test
-- precision, recall and F1 at the paper's (lambda1, lambda2), and at the grid point with the best
-- mean validation F1, chosen without looking at the test half (only points of the planned grid
-- with the most seeds compete; grid_points_compared says how many; a search's points are in
-- @anomaly_search). Beside them: the no-model reference (distance to the mean of the normal
-- training rows) and the published numbers, which are cited, not computed here: the paper's mean
-- F1 over 20 seeds at its chosen point (table 5; the point itself is the registry's
-- `paper_points`), and RaDOGAGA's, the previous best.
WITH cited(dataset, paper_f1_cited, radogaga_f1_cited) AS (
    VALUES ('kddcup', 0.964::DOUBLE, 0.964::DOUBLE),
           ('kddcup_rev', 0.988, 0.987),
           ('thyroid', 0.66, 0.670),
           ('arrhythmia', 0.50, 0.543)
), per_point AS (
    SELECT study, budget, dataset, lam1, lam2, count(*) AS seeds, max(epochs) AS epochs,
           avg(precision) AS p, stddev_samp(precision) AS p_sd,
           avg(recall) AS r, stddev_samp(recall) AS r_sd,
           avg(f1) AS f, stddev_samp(f1) AS f_sd,
           avg(val_f1) AS vf,
           avg(baseline_f1) AS bf, stddev_samp(baseline_f1) AS bf_sd,
           avg(snapshot_epoch) AS snapshot_epoch
    FROM anomaly_trials
    WHERE settings = 'default' AND status = 'ok'
    GROUP BY ALL
), on_grid AS (
    SELECT pp.* FROM per_point pp
    WHERE EXISTS (SELECT 1 FROM planned g WHERE g.plan = g.study AND g.study = pp.study AND g.budget = pp.budget
                  AND g.dataset = pp.dataset AND g.lam1 = pp.lam1 AND g.lam2 = pp.lam2)
), best AS (
    SELECT *, count(*) OVER (PARTITION BY study, budget, dataset) AS compared FROM (
        SELECT *, max(seeds) OVER (PARTITION BY study, budget, dataset) AS most_seeds FROM on_grid
    ) WHERE seeds = most_seeds
    QUALIFY row_number() OVER (PARTITION BY study, budget, dataset ORDER BY vf DESC NULLS LAST, f_sd, lam1, lam2) = 1
), picked AS (
    SELECT 'paper point' AS point, p.*, NULL::BIGINT AS compared
    FROM per_point p JOIN paper_points c ON p.dataset = c.dataset AND p.lam1 = c.lam1 AND p.lam2 = c.lam2
    UNION ALL BY NAME
    SELECT 'best validation F1' AS point, * EXCLUDE (most_seeds) FROM best
)
SELECT k.budget, k.dataset, k.point, k.lam1, k.lam2, k.seeds, k.epochs, k.compared AS grid_points_compared,
       printf('%.3f', k.p) || coalesce(printf(' (%.3f)', k.p_sd), '') AS precision,
       printf('%.3f', k.r) || coalesce(printf(' (%.3f)', k.r_sd), '') AS recall,
       printf('%.3f', k.f) || coalesce(printf(' (%.3f)', k.f_sd), '') AS f1,
       round(k.f, 4) AS f1_mean,
       round(k.vf, 3) AS val_f1,
       printf('%.3f', k.bf) || coalesce(printf(' (%.3f)', k.bf_sd), '') AS baseline_f1,
       round(k.snapshot_epoch, 0) AS snapshot_epoch,
       c.paper_f1_cited,
       c.radogaga_f1_cited,
       round(k.f - c.paper_f1_cited, 3) + 0.0 AS f1_minus_paper  -- + 0.0: never -0
FROM picked k JOIN cited c USING (dataset)
ORDER BY k.budget, k.dataset, k.point DESC
