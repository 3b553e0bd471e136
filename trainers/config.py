"""The configuration of one trial and its content key.

A trial is identified by what it computes, never by where it sits in a grid: the key is a hash of
the canonical JSON of every field that changes the result, plus ``SCIENCE_VERSION``. The sweep
name, resources, fusion grouping and storage location are deliberately not part of it, so the same
trial run from any sweep, machine or bundle has the same key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Raise whenever training or measurement semantics change: every key changes with it, so results
# computed under older semantics are never mistaken for current ones.
SCIENCE_VERSION = 1

FORMS = ("conventional", "decomposed")
REDUCTIONS = ("sum", "mean")
LR_SCHEDULES = ("step", "constant")

# Recorded settings of the anomaly trial (docs/method.md 5.3), each a choice whose first value is the
# default. The default is stored as None, so that naming it (``snapshot_rule=val_loss``) and leaving
# it out give one key, and every key from before these settings existed stays the same.
ANOMALY_CHOICES: dict[str, tuple[str, ...]] = {
    "snapshot_rule": ("val_loss", "val_f1", "last"),
    "score": ("lx", "recon"),
    "split": ("held_out", "paper"),
    "scaling": ("all_rows", "train_half"),
    "output_activation": ("linear", "sigmoid", "leaky_relu"),
    "batch_order": ("shuffled", "fixed"),
}


@dataclass(frozen=True)
class TrialConfig:
    """Everything that determines one trial's result (docs/method.md sections 2-6)."""

    study: str
    """Name of the study in the registry (``toy``, ``toy-latent5``, ...)."""
    budget: str
    """Named budget (``smoke``, ``quick``, ``paper``); part of the identity."""
    dataset: str
    """Data set name (``norm``, ``ramp``, ``mix`` for the toy study)."""
    loss: str
    """Name of the reconstruction metric D (``se``, ``dconv``, ``uconv``, ...)."""
    seed: int
    """Seed of initialisation, data draws, batch order and sampling noise."""
    latent_dim: int
    """Number of latent dimensions n."""
    form: str = "conventional"
    """``conventional``: lam*D(x, x_hat) + KL; ``decomposed``: lam1*D_T(x, x_breve) + lam2*D(x_breve, x_hat) + KL."""
    lam: float | None = None
    """lambda = 1/beta of the conventional form."""
    lam1: float | None = None
    """Weight of the transform loss in the decomposed form."""
    lam2: float | None = None
    """Weight of the coding loss in the decomposed form (beta = 1/lam2)."""
    reduction: str = "sum"
    """Reduction of the squared-error family over input dims: ``sum`` (default) or ``mean``."""
    hidden: tuple[int, ...] = (128, 64)
    """Hidden widths of the encoder; the decoder mirrors them."""
    activation: str = "tanh"
    """Hidden-layer activation of the MLP."""
    epochs: int = 500
    """Training epochs over ``n_train`` points."""
    n_train: int = 50_000
    """Number of training points."""
    n_eval: int = 10_000
    """Number of fresh evaluation points for the measurements."""
    batch_size: int = 128
    """Mini-batch size."""
    lr: float = 1e-3
    """Adam learning rate."""
    lr_schedule: str = "step"
    """``step``: lr, then lr/10 for the last third of the epochs; ``constant``: lr throughout."""
    data_seed: int = 0
    """Seed of the fixed data geometry (the toy embedding matrix V), the same for every trial."""
    fd_eps: float = 1e-3
    """Step of the central finite difference used for D' (docs/method.md section 4)."""
    active_kl: float = 0.1
    """A latent dimension is active when its mean KL exceeds this."""
    points_cap: int = 2000
    """At most this many evaluation points keep their per-point density values."""
    transform_metric: str | None = None
    """Transform loss D_T of the decomposed form (``l2`` or ``se`` in the anomaly study); None: ``loss``."""
    snapshots: int | None = None
    """Snapshots kept over training (anomaly study: 10, one every 1/10 of the epochs); None: none."""
    val_fraction: float | None = None
    """Share of the normal training rows held out to select a snapshot (anomaly study: 0.1)."""
    data_hash: str | None = None
    """SHA-256 of the bytes of a user's data file (study ``custom``): the file's identity, never its path."""
    features: tuple[str, ...] | None = None
    """Columns of the user's data file used as the input features, in order (study ``custom``)."""
    density_column: str | None = None
    """Column of the user's data file holding the true density p(x), if any (study ``custom``)."""
    iterations: int | None = None
    """Training iterations (image studies count mini-batch steps, not epochs; ``epochs`` is then unused)."""
    arch: str | None = None
    """Image network (``conv_gdn``: CelebA conv VAE with GDN; ``mlp_sigmoid``: MNIST MLP); None: the toy MLP."""
    snapshot_rule: str | None = None
    """Which anomaly snapshot is kept: None (``val_loss``: the lowest validation loss), ``val_f1`` (the
    highest validation F1) or ``last`` (the end of training, as the paper's predecessor code does).
    The anomaly studies plan ``val_f1`` (``isosweep.studies``); None stays ``val_loss`` so that the
    keys of trials run before under that rule keep meaning what they meant."""
    score: str | None = None
    """Anomaly score: None (``lx``: L_x, paper eq. 20) or ``recon`` (L_x less its KL term: the
    expected distortion weighted by lambda2)."""
    split: str | None = None
    """Anomaly split protocol: None (``held_out``: a ``val_fraction`` of the training half's normal rows
    is held out to select the snapshot) or ``paper`` (the paper's wording: every normal row of the
    training half is trained on; nothing is held out, so ``snapshot_rule`` must be ``last``)."""
    scaling: str | None = None
    """Min-max scaling of the anomaly data: None (``all_rows``: each column over the whole data set,
    docs/method.md 5.3) or ``train_half`` (over the rows of the training half only)."""
    output_activation: str | None = None
    """Activation after the decoder's last layer: None (``linear``, docs/method.md 5.3's choice), ``sigmoid``
    (inputs are min-max scaled to [0, 1]) or ``leaky_relu``."""
    batch_order: str | None = None
    """Order of the anomaly training rows in each epoch: None (``shuffled``: a new permutation every
    epoch, drawn from the trial's seed) or ``fixed`` (the split's order, the same every epoch, as the
    paper's predecessor code walks its rows; docs/method.md 5.3). The split's order is itself random per
    seed, so ``fixed`` is one shuffle kept for the whole run. Both draw the same noise."""

    def __post_init__(self) -> None:
        # Canonical types, so that lam=100 and lam=100.0 give the same key.
        for name in ("lam", "lam1", "lam2", "lr", "fd_eps", "active_kl", "val_fraction"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, float(value))
        for name in ("seed", "latent_dim", "epochs", "n_train", "n_eval", "batch_size", "data_seed", "points_cap"):
            object.__setattr__(self, name, int(getattr(self, name)))
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if self.features is not None:
            object.__setattr__(self, "features", tuple(str(c) for c in self.features))
        for name, choices in ANOMALY_CHOICES.items():
            value = getattr(self, name)
            if value is not None and value not in choices:
                raise ValueError(f"{name} must be one of {choices}, got {value!r}")
            if value == choices[0]:
                object.__setattr__(self, name, None)
        if self.split == "paper" and self.snapshot_rule != "last":
            raise ValueError(
                "split 'paper' holds out no validation rows to choose a snapshot by; set snapshot_rule to 'last'"
            )
        if self.iterations is not None:
            object.__setattr__(self, "iterations", int(self.iterations))
            if self.iterations < 1:
                raise ValueError(f"iterations must be >= 1, got {self.iterations}")
        if self.snapshots is not None:
            object.__setattr__(self, "snapshots", int(self.snapshots))
            if self.snapshots < 1:
                raise ValueError(f"snapshots must be >= 1, got {self.snapshots}")
        if self.val_fraction is not None and not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must lie strictly between 0 and 1, got {self.val_fraction}")
        if self.form not in FORMS:
            raise ValueError(f"form must be one of {FORMS}, got {self.form!r}")
        if self.reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {self.reduction!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        weights = (self.lam,) if self.form == "conventional" else (self.lam1, self.lam2)
        for w in weights:
            if w is None or not w > 0:
                raise ValueError(f"the {self.form} form needs positive lambda weights, got {weights}")
        if self.latent_dim < 1 or self.seed < 0 or self.epochs < 1 or self.batch_size < 1:
            raise ValueError("latent_dim, epochs and batch_size must be >= 1 and seed >= 0")

    @property
    def beta(self) -> float:
        """beta = 1/lambda (conventional) or 1/lambda2 (decomposed), docs/method.md section 2."""
        weight = self.lam if self.form == "conventional" else self.lam2
        assert weight is not None
        return 1.0 / weight

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-able dict (tuples become lists)."""
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        if self.features is not None:
            d["features"] = list(self.features)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrialConfig:
        fields = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in fields}
        if "hidden" in kwargs:
            kwargs["hidden"] = tuple(int(h) for h in kwargs["hidden"])
        if kwargs.get("features") is not None:
            kwargs["features"] = tuple(kwargs["features"])
        return cls(**kwargs)

    @property
    def key(self) -> str:
        """16 hex chars of SHA-256 over the canonical JSON of the config and SCIENCE_VERSION.

        Fields whose value is None are left out, so adding a new optional field (default None)
        keeps every existing key.
        """
        payload = {"science_version": SCIENCE_VERSION, **{k: v for k, v in self.to_dict().items() if v is not None}}
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def fusion_key(self) -> tuple[Any, ...]:
        """What must be equal for trials to share one vectorised model and training schedule
        (``isosweep.trainers.fused``): the architecture, the budget, the optimiser's schedule and the
        epochs at which a bundle stops to measure its members (``snapshots``)."""
        return (
            self.study,
            self.budget,
            self.latent_dim,
            self.hidden,
            self.activation,
            self.epochs,
            self.n_train,
            self.n_eval,
            self.batch_size,
            self.form,
            self.transform_metric,
            self.iterations,
            self.arch,
            self.lr,
            self.lr_schedule,
            self.output_activation,
            self.snapshots,
        )
