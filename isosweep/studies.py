"""The study registry: every study declared once, as data (axes, fixed settings, budgets, and
what the rest of isosweep does with it: its summary query, report sections, data check, device).

A study crosses its axes into trial configurations; a budget fixes the training settings and is
part of each trial's identity. Extending a study (more seeds, more lambdas through ``--where``)
only adds new trial keys, since keys depend on content, never on grid position.

This module is a contract shared by the orchestrator and the analysis: it imports only the
trainers (the trial configuration and the data checks) and ``isosweep.errors``.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from isosweep.errors import UsageError
from isosweep.schema import TRIALS
from isosweep.trainers.config import ANOMALY_CHOICES, LR_SCHEDULES, REDUCTIONS, TrialConfig
from isosweep.trainers.kinds import DataCheck
from isosweep.trainers.kinds import check_data as check_kind_data

TOY_LAMBDAS = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0)


@dataclass(frozen=True)
class Budget:
    """Training settings of one named budget."""

    name: str
    settings: Mapping[str, Any]
    """TrialConfig fields this budget fixes (epochs, n_train, n_eval, batch_size, ...)."""
    seeds: int = 1
    """Number of seeds run when ``--seeds`` is not given."""
    note: str = ""
    per_value: Mapping[str, Mapping[Any, Mapping[str, Any]]] = field(default_factory=dict)
    """Settings that depend on an axis value at this budget, e.g. ``{"dataset": {"thyroid": {"epochs": 4000}}}``."""
    axes: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    """Axis values this budget uses instead of the study's (e.g. a smaller grid for ``smoke``)."""


@dataclass(frozen=True)
class Axis:
    """One axis of a study's grid: a TrialConfig field and its values."""

    name: str
    values: tuple[Any, ...]
    kind: type = str
    """Type of the values: ``str`` axes accept only known values; ``float`` axes any positive one."""
    in_config: bool = True
    """Whether the values are those of the TrialConfig field ``name``. False: the values only name
    settings that the study's ``per_value`` gives them (a variant that moves several fields
    together, e.g. latent size, width and lambda), so that keys stay content-based."""


# Settings that are not axes but that a user may set per run with --where (recorded per trial):
# the allowed values, or ``int`` for a positive whole number. Several values cross like an axis.
Setting = tuple[Any, ...] | type


def int_setting_max(key: str) -> int:
    """The largest value of the whole-number setting ``key`` that its store column holds (a signed
    integer of the width ``isosweep.schema.TRIALS`` gives it)."""
    return 2 ** (TRIALS.field(key).type.bit_width - 1) - 1


SETTINGS: dict[str, Setting] = {"reduction": REDUCTIONS, "lr_schedule": LR_SCHEDULES}
ANOMALY_SETTINGS: dict[str, Setting] = {**ANOMALY_CHOICES, "epochs": int, "snapshots": int}
"""The anomaly trial's recorded settings (METHOD.md 5.3), the causes the anomaly table's gaps are
tested against: split protocol, scaling, snapshot rule and how many snapshots it chooses from,
score, output activation, the order of the training rows and epochs."""


@dataclass(frozen=True)
class Study:
    """A named ablation: the cross product of its axes times seeds, at one budget."""

    name: str
    description: str
    axes: tuple[Axis, ...]
    fixed: Mapping[str, Any]
    budgets: Mapping[str, Budget]
    summary: str | None = None
    """Named query (``analysis/sql/<summary>.sql``) that summarises the study: printed when a run
    ends, and the query whose SQL selects this study's trials (``studies.summary`` in the SQL)."""
    summary_hide: tuple[str, ...] = ()
    """Columns of the summary left out when a run prints it (constant over the study's trials)."""
    report: str | None = None
    """Name of the report's section set (``isosweep.analysis.sections.SECTION_SETS``)."""
    companions: tuple[str, ...] = ()
    """Studies whose trials this study's report shows beside its own (``toy`` shows ``toy-latent5``)."""
    check_data: DataCheck = check_kind_data
    """Checks the files the trials read before anything is planned or started (default: each
    trial kind's own check, ``isosweep.trainers.kinds``); DataError naming the file otherwise."""
    needs_user_data: bool = False
    """The study runs on a user's data file (``isosweep run STUDY --data FILE``): its trials are
    known only from that file, and the file's fields come through ``configs(..., inputs=...)``."""
    searchable: bool = False
    """``--search`` may explore its (lambda1, lambda2) beyond the grid (``isosweep.orchestrator.search``)."""
    per_value: Mapping[str, Mapping[Any, Mapping[str, Any]]] = field(default_factory=dict)
    """Settings that depend on an axis value, e.g. each data set's architecture:
    ``{"dataset": {"thyroid": {"hidden": (60, 30), ...}}}``."""
    records_as: str | None = None
    """Record (and key) the trials as this study: a study that picks points of a larger one
    (``anomaly-paper`` of ``anomaly``) then shares its trials, and neither runs them twice."""
    tie_lambdas: bool = False
    """Decomposed-form trials weigh both terms with the point's ``lam``: lam1 = lam2 = lam (CelebA,
    METHOD.md 2); conventional ones keep ``lam``."""
    settings: Mapping[str, Setting] = field(default_factory=dict)
    """Settings of this study's trials, beyond ``SETTINGS``, that ``--where`` may set."""

    def all_settings(self) -> dict[str, Setting]:
        """Every setting ``--where`` may set on this study's trials."""
        return {**SETTINGS, **self.settings}

    def axis(self, name: str) -> Axis | None:
        return next((a for a in self.axes if a.name == name), None)

    def axis_values(self, axis: Axis, budget: str | None = None) -> tuple[Any, ...]:
        """The axis's values at ``budget`` (a budget may use fewer)."""
        if budget is not None and budget in self.budgets:
            return tuple(self.budgets[budget].axes.get(axis.name, axis.values))
        return axis.values

    def budget(self, name: str) -> Budget:
        if name not in self.budgets:
            raise UsageError(
                f"unknown budget {name!r} for study {self.name!r}; choose one of: {', '.join(self.budgets)}"
            )
        return self.budgets[name]

    def size(self, budget: str | None = None) -> int:
        """Trials per seed (at ``budget``, where a budget uses fewer axis values)."""
        n = 1
        for a in self.axes:
            n *= len(self.axis_values(a, budget))
        return n

    def configs(
        self,
        budget: str,
        seeds: int | None = None,
        where: Mapping[str, tuple[Any, ...]] | None = None,
        inputs: Mapping[str, Any] | None = None,
    ) -> list[TrialConfig]:
        """Every trial of the study at ``budget``, restricted or extended by ``where``; ``inputs``
        are the fields that come from a user's data file (studies that need one)."""
        b = self.budget(budget)
        if self.needs_user_data and inputs is None:
            raise UsageError(
                f"study {self.name!r} runs on your own data: pass --data FILE (a CSV or Parquet file "
                "of feature columns)"
            )
        where = dict(where or {})
        seed_values = where.pop("seed", None) or tuple(range(seeds if seeds is not None else b.seeds))
        known = self.all_settings()
        settings = [(k, where.pop(k)) for k in list(where) if k in known]
        axes = [(a.name, where.get(a.name, self.axis_values(a, budget))) for a in self.axes]
        config_names = {a.name for a in self.axes if a.in_config} | {"seed"}
        out = []
        for combo in itertools.product(
            *(values for _, values in axes), *(values for _, values in settings), seed_values
        ):
            point = dict(zip([name for name, _ in axes], combo))
            chosen = dict(zip([name for name, _ in settings], combo[len(axes) :]))
            point["seed"] = combo[-1]
            fields = {**self.fixed, **b.settings}
            for table in (self.per_value, b.per_value):
                for axis_name, by_value in table.items():
                    fields.update(by_value.get(point.get(axis_name), {}))
            fields.update(chosen)
            fields.update(inputs or {})
            fields.update({k: v for k, v in point.items() if k in config_names})
            if self.tie_lambdas and fields.get("form") == "decomposed":
                fields["lam1"] = fields["lam2"] = fields.pop("lam")
            try:
                out.append(TrialConfig(study=self.records_as or self.name, budget=b.name, **fields))
            except ValueError as exc:
                # A combination of --where settings that no trial can have (split=paper needs
                # snapshot_rule=last): say which, before anything is planned.
                raise UsageError(f"--where gives a trial that cannot run: {exc}") from None
        return out


TOY_BUDGETS = {
    b.name: b
    for b in (
        Budget(
            "smoke",
            {"epochs": 2, "n_train": 512, "n_eval": 256, "batch_size": 128},
            note="seconds per trial; for tests",
        ),
        Budget(
            "quick",
            {"epochs": 90, "n_train": 50_000, "n_eval": 10_000, "batch_size": 128},
            note="60 epochs at lr 1e-3 then 30 at 1e-4; about a minute per trial on one core",
        ),
        Budget(
            "paper",
            {"epochs": 500, "n_train": 50_000, "n_eval": 10_000, "batch_size": 128},
            note="the paper's budget (section 5.1)",
        ),
    )
}

_TOY_FIXED = {"form": "conventional", "hidden": (128, 64), "activation": "tanh", "lr": 1e-3}

# -- anomaly detection (METHOD.md 5.3) ---------------------------------------------------------

ANOMALY_LAMBDAS = (6000.0, 12000.0, 18000.0, 24000.0, 30000.0)
ANOMALY_DATASETS = ("kddcup", "kddcup_rev", "thyroid", "arrhythmia")

# Each data set's network, transform loss D_T and the paper's (lambda1, lambda2) (paper, section
# 5.3; METHOD.md 5.3): FC widths encoder-latent-decoder, LeakyReLU (tanh for kddcup_rev).
ANOMALY_ARCHITECTURE: dict[str, dict[str, Any]] = {
    "kddcup": {"hidden": (200, 100), "latent_dim": 10, "activation": "leaky_relu", "transform_metric": "l2"},
    "kddcup_rev": {"hidden": (200, 50), "latent_dim": 20, "activation": "tanh", "transform_metric": "se"},
    "thyroid": {"hidden": (60, 30), "latent_dim": 6, "activation": "leaky_relu", "transform_metric": "l2"},
    "arrhythmia": {"hidden": (200, 100), "latent_dim": 50, "activation": "leaky_relu", "transform_metric": "l2"},
}
ANOMALY_PAPER_POINT: dict[str, dict[str, float]] = {
    "kddcup": {"lam1": 30000.0, "lam2": 6000.0},
    "kddcup_rev": {"lam1": 30000.0, "lam2": 6000.0},
    "thyroid": {"lam1": 6000.0, "lam2": 18000.0},
    "arrhythmia": {"lam1": 6000.0, "lam2": 24000.0},
}


def _epochs(**by_dataset: int) -> dict[str, dict[Any, dict[str, Any]]]:
    return {"dataset": {name: {"epochs": epochs} for name, epochs in by_dataset.items()}}


_ANOMALY_TRAINING = {"batch_size": 1024, "lr": 1e-4, "lr_schedule": "constant", "snapshots": 10, "val_fraction": 0.1}

ANOMALY_BUDGETS = {
    b.name: b
    for b in (
        Budget(
            "smoke",
            _ANOMALY_TRAINING,
            1,
            "2 epochs, a 2 x 2 grid (lambda 6000 and 30000); for tests",
            per_value=_epochs(kddcup=2, kddcup_rev=2, thyroid=2, arrhythmia=2),
            axes={"lam1": (6000.0, 30000.0), "lam2": (6000.0, 30000.0)},
        ),
        Budget(
            "quick",
            _ANOMALY_TRAINING,
            5,
            "epochs kddcup 60, kddcup_rev 100, thyroid 4000, arrhythmia 3000; "
            "15-30 s a thyroid or arrhythmia trial, 2-4 min a kddcup one on one core "
            "(kddcup's F1 is not monotone in training: about 0.94 at epochs 6-12, 0.83 at 24, 0.93 at 600, "
            "0.95 at 1,200)",
            per_value=_epochs(kddcup=60, kddcup_rev=100, thyroid=4000, arrhythmia=3000),
        ),
        Budget(
            "paper",
            _ANOMALY_TRAINING,
            20,
            "the paper's epochs: 600, 600, 40000, 30000 (section 5.3)",
            per_value=_epochs(kddcup=600, kddcup_rev=600, thyroid=40000, arrhythmia=30000),
        ),
    )
}

# -- a user's own data (trainers/data/custom.py) ----------------------------------------------

# n_train and n_eval cap the rows of the seeded split (20 % of the rows evaluated, the rest
# trained on), so that a small file at `quick` takes seconds and a large one stays bounded.
CUSTOM_BUDGETS = {
    b.name: b
    for b in (
        Budget(
            "smoke",
            {"epochs": 2, "n_train": 512, "n_eval": 256, "batch_size": 128},
            1,
            "2 epochs on at most 512 rows, lambda 10 and 100; for tests",
            axes={"lam": (10.0, 100.0)},
        ),
        Budget(
            "quick",
            {"epochs": 90, "n_train": 50_000, "n_eval": 10_000, "batch_size": 128},
            1,
            "the toy study's quick training (60 epochs at lr 1e-3, 30 at 1e-4) on at most 50,000 rows",
        ),
        Budget(
            "paper",
            {"epochs": 500, "n_train": 50_000, "n_eval": 10_000, "batch_size": 128},
            1,
            "the toy study's paper training (500 epochs) on at most 50,000 rows",
        ),
    )
}

# n_train / n_eval do not apply: the data set's rows and the 50/50 split decide.
# The snapshot kept is the one with the best validation F1 (METHOD.md 5.3 leaves the rule to us):
# at the paper's 40,000 epochs Thyroid's lowest-validation-loss snapshot is the last and scores F1
# 0.581 over 20 seeds, the validation-F1 one 0.668 (the paper: 0.66); Arrhythmia gains 0.007-0.013.
# It reads the labels of the training half only, which the protocol already reads to keep its normal
# rows. Named here, not as TrialConfig's default, so that trials run before under the lowest
# validation loss keep their keys and are labelled `snapshot_rule=val_loss`.
_ANOMALY_FIXED = {"form": "decomposed", "loss": "se", "n_train": 0, "n_eval": 0, "snapshot_rule": "val_f1"}

# -- image bottleneck studies (METHOD.md 5.2) ---------------------------------------------------

# A variant moves latent size, width and lambda together (the paper's pairs, not a cross product).
MNIST_VARIANTS: dict[str, dict[str, Any]] = {
    "n32": {"latent_dim": 32, "lam": 2000.0},
    "n64": {"latent_dim": 64, "lam": 10000.0},
}
CELEBA_VARIANTS: dict[str, dict[str, Any]] = {
    "n32": {"latent_dim": 32, "hidden": (1024,), "lam": 1000.0},
    "n256": {"latent_dim": 256, "hidden": (2048,), "lam": 10000.0},
}
_IMAGE_TRAINING = {"lr": 1e-3, "lr_schedule": "constant"}
_MNIST_FIXED = {
    **_IMAGE_TRAINING,
    "dataset": "mnist",
    "loss": "bce",
    "form": "conventional",
    "arch": "mlp_sigmoid",
    "hidden": (1024, 1024),
    "activation": "relu",
}
_CELEBA_FIXED = {**_IMAGE_TRAINING, "dataset": "celeba", "loss": "ssim", "arch": "conv_gdn"}

# n_train and n_eval cap the training images (the first of the training file, or of the folder
# less the held-out ones) and the held-out images measured.
MNIST_BUDGETS = {
    b.name: b
    for b in (
        Budget(
            "smoke",
            {"iterations": 20, "batch_size": 32, "n_train": 256, "n_eval": 16},
            1,
            "20 iterations on at most 256 images; for tests",
        ),
        Budget(
            "quick",
            {"iterations": 12_000, "batch_size": 256, "n_train": 60_000, "n_eval": 2_000},
            1,
            "12,000 iterations (51 epochs) of batch 256; both variants together in 26 min on a 2-core "
            "CPU (one per core; measured while another sweep shared it)",
        ),
        Budget(
            "paper",
            {"iterations": 50_000, "batch_size": 256, "n_train": 60_000, "n_eval": 10_000},
            1,
            "the paper's budget: batch 256, 50,000 iterations, Adam 1e-3 (section 5.2)",
        ),
    )
}
CELEBA_BUDGETS = {
    b.name: b
    for b in (
        Budget(
            "smoke",
            {"iterations": 4, "batch_size": 8, "n_train": 24, "n_eval": 1},
            1,
            "4 iterations of batch 8 on at most 24 images; for tests",
        ),
        Budget(
            "quick",
            {"iterations": 20_000, "batch_size": 64, "n_train": 162_770, "n_eval": 500},
            1,
            "20,000 iterations of batch 64 on the official training partition: for a GPU "
            "(one GPU per trial where the cluster has one; about 1 s an iteration on one CPU core)",
        ),
        Budget(
            "paper",
            {"iterations": 300_000, "batch_size": 64, "n_train": 162_770, "n_eval": 1_000},
            1,
            "the paper's budget: batch 64, 300,000 iterations, Adam 1e-3 (section 5.2); for a GPU",
        ),
    )
}

# Constant over an image study's trials, so a run's closing summary leaves them out.
_IMAGE_SUMMARY_HIDE = ("reduction", "lr_schedule", "dataset", "loss", "hidden", "trial_key")

STUDIES: dict[str, Study] = {
    s.name: s
    for s in (
        Study(
            "toy",
            "toy ablation: 3 data sets x 3 losses x 10 lambdas (METHOD.md 5.1)",
            (
                Axis("dataset", ("norm", "ramp", "mix")),
                Axis("loss", ("se", "dconv", "uconv")),
                Axis("lam", TOY_LAMBDAS, float),
            ),
            {**_TOY_FIXED, "latent_dim": 3},
            TOY_BUDGETS,
            summary="toy_summary",
            report="toy",
            companions=("toy-latent5",),
        ),
        Study(
            "toy-latent5",
            "toy extra variant: mix, se, lambda 100, latent size 5 (paper table 4)",
            (Axis("dataset", ("mix",)), Axis("loss", ("se",)), Axis("lam", (100.0,), float)),
            {**_TOY_FIXED, "latent_dim": 5},
            TOY_BUDGETS,
            summary="toy_summary",
            report="toy-latent5",
        ),
        Study(
            "anomaly",
            "anomaly detection: 4 data sets x lambda1 x lambda2 (5 x 5), decomposed loss, L_x score (METHOD.md 5.3)",
            (
                Axis("dataset", ANOMALY_DATASETS),
                Axis("lam1", ANOMALY_LAMBDAS, float),
                Axis("lam2", ANOMALY_LAMBDAS, float),
            ),
            _ANOMALY_FIXED,
            ANOMALY_BUDGETS,
            summary="anomaly_summary",
            report="anomaly",
            searchable=True,
            per_value={"dataset": ANOMALY_ARCHITECTURE},
            settings=ANOMALY_SETTINGS,
        ),
        Study(
            "anomaly-paper",
            "anomaly detection at each data set's paper point (lambda1, lambda2); recorded as study anomaly",
            (Axis("dataset", ANOMALY_DATASETS),),
            _ANOMALY_FIXED,
            {
                name: dataclasses.replace(b, axes={}, note=b.note.replace(", a 2 x 2 grid (lambda 6000 and 30000)", ""))
                for name, b in ANOMALY_BUDGETS.items()
            },
            summary="anomaly_summary",
            report="anomaly",
            per_value={
                "dataset": {
                    name: {**ANOMALY_ARCHITECTURE[name], **ANOMALY_PAPER_POINT[name]} for name in ANOMALY_DATASETS
                }
            },
            records_as="anomaly",
            settings=ANOMALY_SETTINGS,
        ),
        Study(
            "mnist",
            "MNIST bottleneck: MLP VAE, BCE, conventional form; variants n32 (n=32, lambda 2000) and n64 "
            "(n=64, lambda 10000) (METHOD.md 5.2)",
            (Axis("variant", tuple(MNIST_VARIANTS), in_config=False),),
            _MNIST_FIXED,
            MNIST_BUDGETS,
            summary="image_summary",
            summary_hide=_IMAGE_SUMMARY_HIDE,
            report="images",
            per_value={"variant": MNIST_VARIANTS},
        ),
        Study(
            "celeba",
            "CelebA bottleneck: conv VAE with GDN, SSIM, conventional and decomposed (lambda1 = lambda2 = lambda); "
            "variants n32 (n=32, H=1024, lambda 1000) and n256 (n=256, H=2048, lambda 10000) (METHOD.md 5.2)",
            (Axis("variant", tuple(CELEBA_VARIANTS), in_config=False), Axis("form", ("conventional", "decomposed"))),
            _CELEBA_FIXED,
            CELEBA_BUDGETS,
            summary="image_summary",
            summary_hide=_IMAGE_SUMMARY_HIDE,
            report="images",
            per_value={"variant": CELEBA_VARIANTS},
            tie_lambdas=True,
        ),
        Study(
            "custom",
            "the toy ablation on your own data (--data FILE): 3 losses x 10 lambdas, MLP sized to the features",
            (Axis("loss", ("se", "dconv", "uconv")), Axis("lam", TOY_LAMBDAS, float)),
            {**_TOY_FIXED, "dataset": "custom"},
            CUSTOM_BUDGETS,
            summary="custom_summary",
            report="custom",
            needs_user_data=True,
        ),
    )
}


def get_study(name: str) -> Study:
    if name not in STUDIES:
        raise UsageError(f"unknown study {name!r}; choose one of: {', '.join(STUDIES)} (see `isosweep studies`)")
    return STUDIES[name]


def register_study(study: Study) -> None:
    """Add ``study`` to the registry, so that the CLI, the named queries and the report know it.

    The registry is this process's: a driver that registers a study runs it (its workers need only
    the trial configurations), and a later process knows it only if it registers it too."""
    if study.name in STUDIES:
        raise ValueError(f"a study named {study.name!r} is already registered")
    for name in (study.records_as, *study.companions):
        if name is not None and name not in STUDIES and name != study.name:
            raise ValueError(f"study {study.name!r} names {name!r}, which is not registered")
    STUDIES[study.name] = study


def unregister_study(name: str) -> None:
    """Remove a study added by :func:`register_study`."""
    STUDIES.pop(name, None)


def check_inputs(study: Study, configs: Sequence[TrialConfig], root: str | None) -> None:
    """Run the study's data check before anything is planned or started; UsageError (one line
    naming the file) when a file the trials read is missing or malformed."""
    from isosweep.trainers.data.errors import DataError

    try:
        study.check_data(configs, root)
    except DataError as exc:
        raise UsageError(str(exc)) from None


def _setting_values(key: str, raw: str, values: list[str], allowed: Setting) -> tuple[Any, ...]:
    """The typed, distinct values of setting ``key`` given as ``raw`` in --where."""
    if allowed is int:
        try:
            numbers = tuple(dict.fromkeys(int(v) for v in values))
        except ValueError:
            raise UsageError(f"--where {key}={raw!r}: {key} takes whole numbers, e.g. {key}=4000|8000") from None
        if any(n < 1 for n in numbers):
            raise UsageError(f"--where {key}={raw!r}: {key} must be at least 1")
        most = int_setting_max(key)
        if any(n > most for n in numbers):
            # The store could not record it: refuse now, not after the training.
            raise UsageError(f"--where {key}={raw!r}: {key} must be at most {most:,}")
        return numbers
    assert isinstance(allowed, tuple)
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise UsageError(f"--where {key}={unknown[0]!r}: choose one of {', '.join(map(str, allowed))}")
    return tuple(dict.fromkeys(values))


def parse_where(study: Study, text: str | Sequence[str] | None) -> dict[str, tuple[Any, ...]]:
    """Parse ``K=V,K=V|V`` into typed values, checking keys and values against the study.

    ``text`` may be the texts of several ``--where`` flags: their keys add up, as if they were
    one text joined by commas, and a key named in two of them is refused like a key named twice
    in one (a later value silently replacing an earlier one would run other trials than asked)."""
    out: dict[str, tuple[Any, ...]] = {}
    if text is None:
        return out
    texts = [text] if isinstance(text, str) else list(text)
    if not texts or any(not t.strip() for t in texts):
        # An empty --where (a shell variable that was not set) must not silently mean "everything".
        raise UsageError(
            "--where is empty; leave it out to run every trial, or write e.g. --where 'dataset=mix,lam=10|100'"
        )
    for part in (p for t in texts for p in t.split(",")):
        if "=" not in part:
            raise UsageError(f"--where part {part!r} is not K=V; write e.g. --where 'dataset=mix,lam=10|100'")
        key, raw = (s.strip() for s in part.split("=", 1))
        if not key:
            raise UsageError(f"--where part {part!r} has no key before '='; write e.g. --where 'dataset=mix'")
        if key in out:
            # A second value of a key would replace the first without a word: ask for one list.
            raise UsageError(
                f"--where names {key} twice; give its values once, separated by |, e.g. --where '{key}=A|B'"
            )
        values = [v.strip() for v in raw.split("|") if v.strip()]
        if not values:
            raise UsageError(f"--where {key}= has no value; write e.g. --where '{key}=VALUE'")
        axis = study.axis(key)
        if key == "seed":
            try:
                seeds = tuple(int(v) for v in values)
            except ValueError:
                raise UsageError(f"--where seed={raw!r}: seeds are non-negative integers") from None
            if any(s < 0 for s in seeds):
                raise UsageError(f"--where seed={raw!r}: seeds are non-negative integers")
            most = int_setting_max("seed")
            if any(s > most for s in seeds):
                # The store could not record it: refuse now, not after the training.
                raise UsageError(f"--where seed={raw!r}: seeds must be at most {most:,}")
            out[key] = seeds
        elif key in study.all_settings():
            out[key] = _setting_values(key, raw, values, study.all_settings()[key])
        elif axis is None:
            known = [a.name for a in study.axes] + ["seed", *study.all_settings()]
            raise UsageError(
                f"--where key {key!r} is not an axis of study {study.name!r}; use one of: {', '.join(known)}"
            )
        elif axis.kind is float:
            try:
                numbers = tuple(float(v) for v in values)
            except ValueError:
                raise UsageError(f"--where {key}={raw!r}: {key} takes numbers, e.g. {key}=10|100") from None
            if not all(x > 0 and x < float("inf") for x in numbers):
                raise UsageError(f"--where {key}={raw!r}: {key} must be a positive finite number")
            out[key] = numbers
        else:
            unknown = [v for v in values if v not in axis.values]
            if unknown:
                raise UsageError(
                    f"--where {key}={unknown[0]!r} is not a value of study {study.name!r}; choose from: {', '.join(map(str, axis.values))}"
                )
            out[key] = tuple(values)
    return out
