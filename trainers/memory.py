"""How much device memory one member of a fused bundle takes, estimated from its configuration
alone (no torch, no data), so that planning can size bundles to a GPU (``isosweep.orchestrator.plan``).

The estimate, in bytes, for a member with ``P`` parameters, batches of ``B`` rows, activation
widths summing to ``A`` per row (encoder outputs plus one or two decoder passes: docs/method.md section
2, the decomposed form decodes ``mu`` and ``z``), ``R`` training rows of ``m`` inputs and latent
size ``n``::

    PARAM_BYTES * P                          parameters, gradients, Adam's two moments, a snapshot copy (float32)
  + SAVED_BYTES * BACKWARD_FACTOR * B * A    activations kept for the backward pass, and their gradients
  + R * (4 * n + 8)                          one epoch's noise and row order (drawn on the CPU, then moved)
  + 4 * R * m                                the training rows (an upper bound: the grid points of one seed share theirs)

Measured (``tests/trainers/test_memory.py`` counts the bytes autograd saves for the backward pass
of a stacked step, per member, with ``torch.autograd.graph.saved_tensors_hooks``): 4.1 bytes per row
and unit of width for the toy network (batch-major), 4.4 for Thyroid's, 4.6 for Arrhythmia's and
4.2 for KDDCup's (feature-major: one saved input per layer, ``isosweep.trainers.stacked._FeatureMajorChain``).
``SAVED_BYTES`` = 8 covers them all. ``BACKWARD_FACTOR`` = 2 is a
bound, not a measurement: during the backward pass the gradients of the activations exist beside
them, at most as large. ``benchmarks/gpu.py`` measures the real peak on a GPU
(``torch.cuda.max_memory_allocated``) against this estimate.
"""

from __future__ import annotations

from isosweep.trainers.config import TrialConfig

PARAM_BYTES = 20
"""float32 parameter, gradient, Adam's exp_avg and exp_avg_sq (16 bytes), and the member's snapshot view (4)."""
SAVED_BYTES = 8
"""Bytes saved for the backward pass per row and unit of activation width (measured at most 4.6)."""
BACKWARD_FACTOR = 2
"""The activations' gradients beside the saved activations during the backward pass (a bound)."""

ANOMALY_SHAPES: dict[str, tuple[int, int]] = {
    "kddcup": (121, 178_705),
    "kddcup_rev": (121, 43_770),
    "thyroid": (6, 1_659),
    "arrhythmia": (274, 175),
}
"""(inputs, training rows of one seed's split) of the real anomaly data sets (docs/method.md 5.3), as
``split_rows`` gives them for seed 0 (other seeds differ by a few rows)."""
TOY_INPUTS = 16


def member_shape(cfg: TrialConfig) -> tuple[int, int]:
    """(inputs m, training rows R) of one trial."""
    if cfg.dataset in ANOMALY_SHAPES:
        return ANOMALY_SHAPES[cfg.dataset]
    if cfg.features is not None:
        return len(cfg.features), cfg.n_train
    return TOY_INPUTS, cfg.n_train


def parameter_count(cfg: TrialConfig, inputs: int) -> int:
    """Weights and biases of the MLP VAE (``isosweep.trainers.models``): encoder to mu and
    log-variance, decoder back to the inputs."""
    encoder = [inputs, *cfg.hidden, 2 * cfg.latent_dim]
    decoder = [cfg.latent_dim, *reversed(cfg.hidden), inputs]
    return sum((a + 1) * b for widths in (encoder, decoder) for a, b in zip(widths[:-1], widths[1:]))


def activation_width(cfg: TrialConfig, inputs: int) -> int:
    """Activation values per row of one training step: the input, the encoder's outputs, and
    those of each decoder pass (two in the decomposed form)."""
    passes = 2 if cfg.form == "decomposed" else 1
    return inputs + sum([*cfg.hidden, 2 * cfg.latent_dim]) + passes * sum([*reversed(cfg.hidden), inputs])


def member_bytes(cfg: TrialConfig) -> int:
    """The estimated device memory of one member of a bundle (module docstring)."""
    inputs, rows = member_shape(cfg)
    batch = min(cfg.batch_size, max(1, rows))
    return (
        PARAM_BYTES * parameter_count(cfg, inputs)
        + SAVED_BYTES * BACKWARD_FACTOR * batch * activation_width(cfg, inputs)
        + rows * (4 * cfg.latent_dim + 8)
        + 4 * rows * inputs
    )
