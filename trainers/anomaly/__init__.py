"""The anomaly-detection trial of docs/method.md section 5.3 (paper, section 5.3 and table 5).

Per seed: a random 50/50 split of the data set; a VAE with the decomposed objective
``lambda1 * D_T(x, x_breve) + lambda2 * se(x_breve, x_hat) + KL`` is trained on the normal rows of
the training half, less a validation part (``val_fraction``). Of ``snapshots`` snapshots, one every
1/``snapshots`` of the epochs, one is kept by the trial's ``snapshot_rule``: the studies plan the
best validation F1 (below); a config that names no rule keeps the lowest validation loss (fixed,
seeded noise draws), the studies' rule before. Every test row is scored with ``L_x`` (conventional formula, ``beta = 1/lambda2``, ``E_q[D]``
by the mu +- sigma average: ``isosweep.trainers.measure.score_lx``); the rows whose score is strictly above
the ``(1 - r)`` quantile of the test scores are flagged, ``r`` the data set's anomaly ratio, and
precision, recall and F1 of the anomaly class are reported.

Recorded settings (``TrialConfig``; docs/method.md 5.3) change one step of this protocol each, for a
seed keeping the default's halves, initial weights and noise so that their trials pair seed by seed
with the default's: ``split`` (``paper``: nothing held out), ``scaling`` (``train_half``: min-max
over the training half), ``snapshot_rule`` (``val_f1``, ``last``), ``score`` (``recon``: L_x less
its KL term) and ``output_activation``.

Two more numbers per trial:

- ``val_f1``: F1 on a validation set of the training half (its held-out normal rows and its
  anomaly rows, none of which is trained on) at the same ratio ``r`` **(choice)**: the training
  half's anomalies far outnumber the held-out normal rows, so each normal row is weighted to
  restore the anomaly share ``r`` before the top ``r`` is flagged. It estimates the test F1 without
  looking at the test half, and selects grid points.
- ``baseline_*``: a reference with no model, score = Euclidean distance to the mean of the normal
  training rows, thresholded the same way.

Training is full-batch when the training rows fit in one batch; the loss terms are summed on the
tensor side and read back only at the snapshot points, so no step waits on a ``.item()``.

The trials of one data set (grid points and seeds: one fusion key) train as one bundle
(``train_anomaly_bundle``): stacked models (``isosweep.trainers.stacked.StackedVAE``) over the members'
own splits and random streams, each member with its own snapshots, F1 and curves, on the device
the trial is given (``isosweep.trainers.device``). A trial alone is a bundle of one, trained with
the unbundled trial's own operations, so its results are bit for bit those of earlier releases.
"""

# The package, one module per job:
#   protocol  the evaluation protocol: splits, threshold, F1, the no-model reference, the scores
#             of a model, the snapshot epochs and the rule that keeps a snapshot
#   records   the kept snapshot and each member's outcome
#   unit      members that step together as one model (Unit), and how a bundle is cut into units
#   engine    the training of a bundle, step by step (train_anomaly_bundle; train_anomaly: one trial)
#   trial     a bundle of trials from data files to TrialResults (run_anomaly_bundle, run_anomaly_trial)

from isosweep.trainers.anomaly.engine import train_anomaly, train_anomaly_bundle
from isosweep.trainers.anomaly.protocol import (
    DEFAULT_SNAPSHOTS,
    DEFAULT_VAL_FRACTION,
    AnomalySplit,
    detect,
    flag_top,
    keeps,
    mean_distance_scores,
    model_scores,
    precision_recall_f1,
    snapshot_epochs,
    split_rows,
    validation_f1,
    weighted_detect,
)
from isosweep.trainers.anomaly.records import AnomalyOutcome, MemberOutcome, Snapshot
from isosweep.trainers.anomaly.trial import anomaly_scalars, run_anomaly_bundle, run_anomaly_trial
from isosweep.trainers.anomaly.unit import CPU_UNIT_MEMBERS, batches_per_epoch, default_unit_members

__all__ = [
    "CPU_UNIT_MEMBERS",
    "DEFAULT_SNAPSHOTS",
    "DEFAULT_VAL_FRACTION",
    "AnomalyOutcome",
    "AnomalySplit",
    "MemberOutcome",
    "Snapshot",
    "anomaly_scalars",
    "batches_per_epoch",
    "default_unit_members",
    "detect",
    "flag_top",
    "keeps",
    "mean_distance_scores",
    "model_scores",
    "precision_recall_f1",
    "run_anomaly_bundle",
    "run_anomaly_trial",
    "snapshot_epochs",
    "split_rows",
    "train_anomaly",
    "train_anomaly_bundle",
    "validation_f1",
    "weighted_detect",
]
