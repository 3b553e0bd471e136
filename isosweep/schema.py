"""The one definition of the store's tables: their columns and Arrow types.

Writers build rows against these schemas and readers (``isosweep.analysis.db``) use them to give every
view its full set of typed columns, even over an empty or older store. Columns may be added;
the core names listed in docs/architecture.md keep their meaning.
"""

from __future__ import annotations

import pyarrow as pa

# The density estimates' names come from the trainers that measure them; the analysis names its
# columns through this module's ESTIMATES.
from isosweep.trainers.records import ESTIMATES  # noqa: F401

TS = pa.timestamp("us", tz="UTC")

TRIALS = pa.schema(
    [
        ("trial_key", pa.string()),
        ("study", pa.string()),
        ("run_id", pa.string()),
        ("sweep", pa.string()),
        ("budget", pa.string()),
        ("dataset", pa.string()),
        ("loss", pa.string()),
        ("form", pa.string()),
        ("lam", pa.float64()),
        ("lam1", pa.float64()),
        ("lam2", pa.float64()),
        ("latent_dim", pa.int32()),
        ("seed", pa.int32()),
        ("status", pa.string()),
        ("error", pa.string()),
        ("wall_s", pa.float64()),
        ("loss_final", pa.float64()),
        ("steps", pa.int64()),
        ("recon", pa.float64()),
        ("kl", pa.float64()),
        ("coding_loss", pa.float64()),
        ("transform_loss", pa.float64()),
        ("transform_coding_ratio", pa.float64()),
        ("coding_theory", pa.float64()),
        ("n_active", pa.int32()),
        ("norm_active_mean", pa.float64()),
        *[(f"corr_{e}", pa.float64()) for e in ESTIMATES],
        *[(f"rank_{e}", pa.float64()) for e in ESTIMATES],
        ("precision", pa.float64()),
        ("recall", pa.float64()),
        ("f1", pa.float64()),
        # Anomaly study (docs/method.md 5.3): the selected snapshot's validation values, the threshold
        # ratio, row counts and the no-model reference (distance to the mean of the normal rows).
        ("val_f1", pa.float64()),
        ("val_loss", pa.float64()),
        ("snapshot_epoch", pa.int32()),
        ("anomaly_ratio", pa.float64()),
        # n_fit / n_test also count an image trial's training and held-out images (docs/method.md 5.2).
        ("n_fit", pa.int64()),
        ("n_test", pa.int64()),
        ("baseline_precision", pa.float64()),
        ("baseline_recall", pa.float64()),
        ("baseline_f1", pa.float64()),
        ("started_at", TS),
        ("finished_at", TS),
        # Configuration beyond the core columns, so any trial can be re-created from its row.
        ("reduction", pa.string()),
        ("lr_schedule", pa.string()),
        ("hidden", pa.list_(pa.int32())),
        ("activation", pa.string()),
        ("epochs", pa.int32()),
        ("n_train", pa.int64()),
        ("n_eval", pa.int64()),
        ("batch_size", pa.int32()),
        ("lr", pa.float64()),
        ("data_seed", pa.int32()),
        ("transform_metric", pa.string()),
        ("snapshots", pa.int32()),
        ("val_fraction", pa.float64()),
        # Study `custom`: the user's data file by content (SHA-256 of its bytes) and its columns.
        ("data_hash", pa.string()),
        ("features", pa.list_(pa.string())),
        ("density_column", pa.string()),
        # Image studies (docs/method.md 5.2): training iterations and the network.
        ("iterations", pa.int64()),
        ("arch", pa.string()),
        # The anomaly trial's recorded settings (docs/method.md 5.3); null is the default of each.
        ("snapshot_rule", pa.string()),
        ("score", pa.string()),
        ("split", pa.string()),
        ("scaling", pa.string()),
        ("output_activation", pa.string()),
        ("batch_order", pa.string()),
        ("science_version", pa.int32()),
        ("config_json", pa.string()),
        # Provenance.
        ("isosweep_version", pa.string()),
        ("git_rev", pa.string()),
        ("torch_version", pa.string()),
        ("ray_version", pa.string()),
        ("device", pa.string()),
        ("hostname", pa.string()),
        # How many rows the trial wrote to each other table (``isosweep.store.ROW_COUNTS``): the
        # store counts an ok trial complete only when readable files hold that many of its rows.
        # Null in rows written before these columns existed.
        ("dims_rows", pa.int64()),
        ("curves_rows", pa.int64()),
        ("points_rows", pa.int64()),
    ]
)

DIMS = pa.schema(
    [
        ("trial_key", pa.string()),
        ("study", pa.string()),
        ("run_id", pa.string()),
        ("dim", pa.int32()),
        ("rank", pa.int32()),
        ("active", pa.bool_()),
        ("norm_mean", pa.float64()),
        ("norm_sd", pa.float64()),
        ("dprime_mean", pa.float64()),
        ("dprime_sd", pa.float64()),
        ("sigma_inv2_mean", pa.float64()),
        ("var_ratio", pa.float64()),
        ("kl_mean", pa.float64()),
    ]
)

CURVES = pa.schema(
    [
        ("trial_key", pa.string()),
        ("study", pa.string()),
        ("run_id", pa.string()),
        ("step", pa.int64()),
        ("epoch", pa.int32()),
        ("loss", pa.float64()),
        ("recon", pa.float64()),
        ("kl", pa.float64()),
        ("val_loss", pa.float64()),
        ("val_f1", pa.float64()),
        ("f1", pa.float64()),
    ]
)

POINTS = pa.schema(
    [
        ("trial_key", pa.string()),
        ("study", pa.string()),
        ("run_id", pa.string()),
        ("log_p_true", pa.float64()),
        *[(f"log_{e}", pa.float64()) for e in ESTIMATES],
    ]
)

# `run_id` identifies one writing of a trial's rows (a retry or `--force` writes a new one). A
# reader takes, per trial key, the trials row finished last, and the other tables' rows of that
# same run_id from one file only: so a copy left by an interrupted compaction, or rows of a trial
# whose trials file was never written, are never seen.
TABLES: dict[str, pa.Schema] = {"trials": TRIALS, "dims": DIMS, "curves": CURVES, "points": POINTS}
# The trials file is written last: a trial is recorded once it exists, and complete (ok) once the
# rows of its other tables that it counts (``dims_rows``, ...) are readable too.
WRITE_ORDER = ("dims", "curves", "points", "trials")
