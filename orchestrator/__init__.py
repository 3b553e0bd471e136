"""The orchestrator: planning, the Ray cluster, the Ray Tune run, the local executor, the
workers' side, progress, resume and status (docs/architecture.md).

Modules by job: ``plan`` (bundling, pure), ``options`` (run options and flag checks, pure),
``status`` (what is done and how many, resume's record; no Ray), ``worker`` (what a trial runs,
no Ray), ``sweep_params`` and ``finish`` (what every trial is handed, what every sweep does when it
ends; no Ray), ``local`` (the local executor; no Ray), ``progress`` (no Ray), ``cluster``,
``trainable``, ``experiment`` and ``launch`` (the modules that import Ray), ``claims``,
``compact``, ``faults``, ``search``, ``userdata``, ``summary``.
"""

import os

# Ray and Tune read these when they are imported or first run; setting them here, before any
# module of this package imports Ray, sets them for the driver and for every worker alike.
# Tune's default result loggers (JSON, CSV, TensorBoard per trial) cost time per report and
# duplicate what the store records; switch them off before Ray reads its settings.
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
os.environ.setdefault("RAY_DEDUP_LOGS", "1")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
# Every finished trial forces a snapshot of the experiment state (checkpoints are kept to one);
# that is the price of resuming exactly, so Tune's warning about it is only noise here.
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
