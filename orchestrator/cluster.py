"""The Ray cluster a sweep runs on: connected once per process (:func:`connect`), its shape read
through Ray's public API (``ray.nodes``, ``ray.cluster_resources``), and the checks that it can
run the sweep (reach the store and the data root, hold a trial's resource request), before
anything is written. Also the plan's sizing to the cluster's slots and GPUs."""

from __future__ import annotations

import atexit
import logging
import math
import os
import threading
from collections.abc import Sequence
from typing import Any

import ray
import torch

from isosweep.errors import UsageError, first_line
from isosweep.interrupts import stop_signals_as_ctrl_c
from isosweep.orchestrator.faults import worker_env
from isosweep.orchestrator.options import RunOptions, gpus_for_trials
from isosweep.orchestrator.plan import GpuBudget, SweepPlan, make_plan
from isosweep.store import Store
from isosweep.trainers.config import TrialConfig


def connect(address: str | None) -> None:
    """Connect to the cluster at ``address``, or start a local Ray sized to this machine. Once per
    process: a process already connected stays on its cluster (a test's, or the first call's)."""
    if ray.is_initialized():
        return
    kwargs: dict[str, Any] = {
        "logging_level": logging.WARNING,
        "include_dashboard": False,
        "logging_config": ray.LoggingConfig(log_level="WARNING"),
    }
    if worker_env():
        kwargs["runtime_env"] = {"env_vars": worker_env()}
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            # "local" always starts a new instance, never joins another Ray found on this machine.
            ray.init(address="local", num_cpus=os.cpu_count(), **kwargs)
    except Exception as exc:  # ConnectionError, RuntimeError, ValueError, timeouts: all mean "not there"
        raise UsageError(
            f"cannot connect to Ray at {address or 'a new local instance'}: {first_line(exc)}; "
            "check the address (ray status on the head node prints it)"
        ) from None
    # Ray shuts down at exit (its own atexit hook, registered by ray.init, so it runs after this one):
    # the workers then receive SIGTERM, and one caught inside a clean-up prints Ray's exit
    # traceback, which the driver would forward to the user's terminal after the last line.
    atexit.register(forward_worker_output, False)
    # ray.init replaced the SIGTERM handler (with one that exits at once, and natively one that
    # aborts with a stack dump): SIGTERM and SIGHUP stop the sweep as Ctrl-C does instead.
    stop_signals_as_ctrl_c()
    # Per-trial result files are switched off (the store has the results), so the result grid's
    # attempt to read them would warn once per bundle.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    # On Ctrl-C Tune stops gracefully and suggests `Tuner.restore(...)`; isosweep says instead how
    # to finish the sweep (`isosweep resume NAME`, see ``interrupted``).
    tune_logger = logging.getLogger("ray.tune.tune")
    if not any(isinstance(f, _TuneInterruptHints) for f in tune_logger.filters):
        tune_logger.addFilter(_TuneInterruptHints())


STOP_SIGNAL = threading.Event()
"""Set when Tune received Ctrl-C (SIGINT) and ended its run early."""


class _TuneInterruptHints(logging.Filter):
    """Drops Tune's messages about an interrupted run, which point at Ray's own restore API, and
    notes the one that tells of Ctrl-C: Tune handles SIGINT itself and returns from ``fit`` as if
    the run had ended, and that message is the only sign of it."""

    HINTS = ("Stop signal received", "has been interrupted", "Trials did not complete")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "Stop signal received" in message:
            STOP_SIGNAL.set()
            forward_worker_output(False)
        return not any(h in message for h in self.HINTS)


_WORKER_OUTPUT = "ray_print_logs"
"""The name under which ``ray.init`` registers the printer of the workers' output in the driver."""

_muted_printers: list[tuple[str, Any]] = []
"""The printers taken out of Ray's dispatcher while a stopped run ends, to put back for the next."""


def forward_worker_output(on: bool) -> None:
    """Print the workers' stdout and stderr in the driver (Ray's default), or stop doing so. A
    stopped run stops printing them: Tune's stopping of the trials sends the workers SIGTERM, and a
    worker caught inside a clean-up prints Ray's exit traceback, which would reach the user's
    terminal beside the one line that says how to finish. Ray has no public switch for this after
    ``ray.init``; where its private dispatcher is not found, output is left as Ray prints it."""
    try:
        from ray._private.ray_logging import global_worker_stdstream_dispatcher as dispatcher
    except ImportError:
        return
    handlers = getattr(dispatcher, "handlers", None)
    if not isinstance(handlers, list):
        return
    if on:
        # A Ray started anew since (ray.init) registered a printer of its own: keep only that one.
        if not any(name == _WORKER_OUTPUT for name, _ in handlers):
            for name, printer in _muted_printers:
                dispatcher.add_handler(name, printer)
        _muted_printers.clear()
    else:
        _muted_printers.extend(pair for pair in handlers if pair[0] == _WORKER_OUTPUT)
        dispatcher.remove_handler(_WORKER_OUTPUT)


def interrupted(grid: Any) -> bool:
    """Whether Tune stopped early (Ctrl-C): it said so (``STOP_SIGNAL``), or a Ray trial is left
    neither terminated nor errored."""
    return STOP_SIGNAL.is_set() or grid.num_terminated + grid.num_errors < len(grid)


# -- the cluster's shape --------------------------------------------------------------------------


def alive_nodes() -> list[dict[str, Any]]:
    """The connected cluster's alive nodes (``ray.nodes()``)."""
    return [n for n in ray.nodes() if n.get("Alive")]


def autoscaled_types() -> list[tuple[dict[str, float], int]]:
    """Each node type the connected cluster's autoscaler may start, with the most nodes of it
    (its ``max_workers``; a negative count is unbounded and counts as one node), or [] where the
    cluster publishes no autoscaler config (a local instance, a hand-made cluster)."""
    try:
        # Private: Ray has no public API for the autoscaler's node types (``ray status`` reads
        # them from the same place). Without it only the nodes already up are counted.
        from ray._private.state import state

        config = state.get_cluster_config()
        groups = config.node_group_configs if config is not None else ()
        return [
            ({k: float(v) for k, v in g.resources.items()}, int(g.max_count) if g.max_count >= 0 else 1)
            for g in groups
            if g.max_count != 0
        ]
    except Exception:  # an older or newer Ray without this API
        return []


def node_shapes() -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """The resources of each alive node of the connected cluster, and of each node type its
    autoscaler may still start (empty where the cluster publishes no autoscaler config)."""
    nodes = [{k: float(v) for k, v in n.get("Resources", {}).items()} for n in alive_nodes()]
    return nodes, [resources for resources, _ in autoscaled_types()]


def cluster_gpus() -> float:
    """GPUs of the connected cluster: those of its nodes, or, on an autoscaling cluster that has
    not started them yet, of the node types it may start."""
    now = float(ray.cluster_resources().get("GPU", 0.0))
    return now or sum(r.get("GPU", 0.0) * count for r, count in autoscaled_types())


def trial_gpus(options: RunOptions) -> float:
    """GPUs each Ray trial of the sweep asks for on the connected cluster (``gpus_for_trials``)."""
    return gpus_for_trials(options.gpus_per_trial, {"GPU": cluster_gpus()})


def trial_slots(cpus: float, gpus: float) -> int:
    """Ray trials the connected cluster can run at once when each asks for ``cpus`` and ``gpus``:
    summed over its alive nodes, or over the nodes its autoscaler may bring up (each node type's
    slots times its most nodes), whichever is larger. So a cluster that starts with no workers is
    planned for the workers it will get (cluster.yaml: up to 8 one-GPU workers plan 8 GPU slots);
    nodes started by hand beside an autoscaler are counted only when they are more."""

    def per_node(r: dict[str, float]) -> int:
        n = math.floor(r.get("CPU", 0.0) / cpus) if cpus > 0 else 1 << 20
        if gpus > 0:
            n = min(n, math.floor(r.get("GPU", 0.0) / gpus))
        return max(0, n)

    nodes, _ = node_shapes()
    alive = sum(per_node(r) for r in nodes)
    scaled = sum(per_node(r) * count for r, count in autoscaled_types())
    return max(1, alive, scaled)


def machines() -> int:
    """Machines the connected cluster spans: its alive nodes' hosts, and at least two where an
    autoscaler may start more (their workers will need what the first ones need)."""
    hosts = {n["NodeManagerAddress"] for n in alive_nodes()}
    return max(len(hosts), 2 if autoscaled_types() else 1)


# -- checks before anything is written ------------------------------------------------------------


def check_resources(cpus: float, gpus: float | None) -> None:
    """Refuse a per-trial request that no node of the cluster (and no node type its autoscaler
    can start) can ever hold: Ray would wait for it forever."""
    nodes, types = node_shapes()
    gpu = gpus_for_trials(gpus, {"GPU": cluster_gpus()})
    shapes = nodes + types
    if any(r.get("CPU", 0.0) >= cpus and r.get("GPU", 0.0) >= gpu for r in shapes):
        return
    most_cpu = max((r.get("CPU", 0.0) for r in shapes), default=0.0)
    most_gpu = max((r.get("GPU", 0.0) for r in shapes), default=0.0)
    where = f"{len(nodes)} node(s)" + (f" and {len(types)} autoscaled node type(s)" if types else "")
    raise UsageError(
        f"no node can run a trial that asks for {cpus:g} CPU(s) and {gpu:g} GPU(s): the Ray cluster's "
        f"{where} offer at most {most_cpu:g} CPU(s) and {most_gpu:g} GPU(s) each; lower --cpus-per-trial "
        "or --gpus-per-trial"
    )


def prepare(store: Store, options: RunOptions, reads_data_root: bool = False) -> None:
    """Check, before anything is written, that the connected cluster can reach the store (and the
    data root, where the trials read one) and run the trials' resource request."""
    check_store_reachable_from_cluster(store)
    if reads_data_root:
        check_data_root_reachable_from_cluster(options.data_root)
    check_resources(options.cpus_per_trial, options.gpus_per_trial)


SHARED_FS_TYPES = {
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "lustre",
    "gpfs",
    "beegfs",
    "ceph",
    "glusterfs",
    "fuse.sshfs",
    "fuse.gcsfuse",
    "fuse.s3fs",
    "fuse.juicefs",
    "fuse.cephfs",
    "9p",
    "virtiofs",
}


def mount_type(path: str) -> str | None:
    """The file system type of the mount that holds ``path`` (Linux), if it can be told."""
    try:
        with open("/proc/mounts") as f:
            mounts = [line.split()[1:3] for line in f]
    except OSError:
        return None
    path = os.path.realpath(path)
    best = max(
        (m for m in mounts if path == m[0] or path.startswith(m[0].rstrip("/") + "/")),
        key=lambda m: len(m[0]),
        default=None,
    )
    return best[1] if best else None


def check_store_reachable_from_cluster(store: Store) -> None:
    """Refuse a store on a local disk when the cluster spans several machines."""
    if not store.local:
        return
    kind = mount_type(os.path.abspath(store.root))
    count = machines()
    if count > 1 and kind not in SHARED_FS_TYPES:
        raise UsageError(
            f"store {store.url!r} is on a local disk ({kind or 'unknown'} file system) but the Ray cluster "
            f"spans {count} machines; use an object store URL (s3://..., gs://...) or a shared NFS path"
        )


def check_data_root_reachable_from_cluster(root: str | None) -> None:
    """Refuse a data root on this machine's local disk when the cluster spans several machines:
    the workers elsewhere could not read it, and would fail on a missing file mid-sweep."""
    if root is None or "://" in root:
        return  # an fsspec URL (s3://, gs://, ...): every worker reads it the same way
    kind = mount_type(os.path.abspath(root))
    count = machines()
    if count > 1 and kind not in SHARED_FS_TYPES:
        raise UsageError(
            f"--data-root {root!r} is on this machine's local disk ({kind or 'unknown'} file system) but "
            f"the Ray cluster spans {count} machines, whose workers cannot read it; put the data sets on "
            "shared storage and pass its URL (e.g. --data-root s3://bucket/data) or a shared NFS path"
        )


# -- the plan, sized to the cluster ---------------------------------------------------------------

DEFAULT_GPU_MEMORY = 16 << 30
"""Assumed memory of a GPU that could not be probed (the smallest of the usual datacenter GPUs)."""


def _gpu_memory() -> int:
    """Total memory of the GPU this Ray task holds (run remotely, on a GPU node)."""
    return int(torch.cuda.get_device_properties(0).total_memory)


def cluster_slots(options: RunOptions) -> int:
    """Ray trials the sweep runs at once: ``--max-concurrent``, else what the cluster holds."""
    return options.max_concurrent or trial_slots(options.cpus_per_trial, trial_gpus(options))


def sized_to_gpus(plan: SweepPlan, options: RunOptions) -> SweepPlan:
    """The plan's fused bundles re-sized for Ray trials that hold GPUs (``--fuse auto``;
    ``isosweep.orchestrator.plan.gpu_bundle_size``): the GPU's memory is probed by a Ray task that
    holds the same share of a GPU as a trial will. Without GPUs the plan stays as it is."""
    if plan.fuse != "auto":
        return plan
    gpus = trial_gpus(options)
    if gpus <= 0 or cluster_gpus() <= 0:
        return plan
    try:
        memory = ray.get(ray.remote(num_gpus=gpus, num_cpus=0)(_gpu_memory).remote(), timeout=300)
    except Exception:  # no GPU node came up in time, or the probe failed: assume a small GPU
        memory = DEFAULT_GPU_MEMORY
    budget = GpuBudget(memory * min(1.0, gpus), cluster_slots(options))
    sized = plan.for_gpu(budget)
    print(
        f"{options.sweep}: fused bundles sized to the GPUs: {len(sized.bundles)} bundle(s) of up to "
        f"{max(len(b) for b in sized.bundles)} trials ({budget.memory_bytes / 2**30:.1f} GiB per trial, "
        f"{budget.slots} at once)",
        flush=True,
    )
    return sized


def cluster_plan(
    configs: Sequence[TrialConfig], complete: set[str], fuse: int | str, force: bool, options: RunOptions
) -> SweepPlan:
    """Bundle the trials for the connected cluster: one slot per Ray trial it can run at once
    (:func:`trial_slots`, or ``--max-concurrent``), each holding a GPU where the cluster has GPUs
    (``gpus_for_trials``), and fused bundles sized to the GPU's memory (:func:`sized_to_gpus`)."""
    gpus = trial_gpus(options)
    slots = cluster_slots(options)
    print(
        f"{options.sweep}: planned for {slots} trial(s) at once on the Ray cluster, each with "
        f"{options.cpus_per_trial:g} CPU(s) and {gpus:g} GPU(s)",
        flush=True,
    )
    return sized_to_gpus(make_plan(configs, complete, fuse, slots, force), options)
