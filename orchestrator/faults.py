"""Test-only fault injection, switched on by environment variables and off by default.

- ``ISOSWEEP_TEST_RAISE="P:SEED"``: at each progress report a trial raises ``InjectedFault`` with
  probability P. The draw is a hash of (SEED, trial key, progress, attempt), ``progress`` being the
  report's count of finished epochs or iterations, so a run is repeatable
  and a retried trial can get past the point where it failed.
- ``ISOSWEEP_TEST_KILL_IN_WRITE="N"``: while the trials file of the (N+1)-th finished trial is
  being written (after its bytes are on disk under a temporary name, before the rename; or the
  first such write after N, when two workers race), the
  driver process and the writing process are killed with SIGKILL.
- ``ISOSWEEP_TEST_KILL_IN_COMPACT="PHASE"``: a compaction (``isosweep compact``, a sweep's end)
  kills its process at PHASE (``after-write``: merged file written, nothing removed;
  ``mid-remove``: half of the merged files removed); ``worker-after-write`` and
  ``worker-mid-remove``: a worker merging a unit's files kills the driver and itself there.

They exist so that the crash-safety tests can put real crashes at exact points. The driver hands
the switches to its workers through Ray's runtime environment (``worker_env``), never through the
experiment's saved state, so a resumed sweep runs without the faults of the run it resumes.
"""

from __future__ import annotations

import hashlib
import os
import signal
from dataclasses import dataclass
from typing import Any

RAISE_ENV = "ISOSWEEP_TEST_RAISE"
KILL_IN_WRITE_ENV = "ISOSWEEP_TEST_KILL_IN_WRITE"
DRIVER_PID_ENV = "ISOSWEEP_TEST_DRIVER_PID"
KILL_IN_COMPACT_ENV = "ISOSWEEP_TEST_KILL_IN_COMPACT"


class InjectedFault(RuntimeError):
    """A fault raised on purpose by the test switch."""


@dataclass(frozen=True)
class Faults:
    """The fault switches of one sweep, carried from the driver to the workers."""

    raise_p: float = 0.0
    raise_seed: int = 0
    kill_in_write: int | None = None
    driver_pid: int | None = None

    @classmethod
    def from_env(cls) -> Faults:
        raise_p, raise_seed = 0.0, 0
        if os.environ.get(RAISE_ENV):
            p, _, seed = os.environ[RAISE_ENV].partition(":")
            raise_p, raise_seed = float(p), int(seed or 0)
        kill = os.environ.get(KILL_IN_WRITE_ENV)
        pid = os.environ.get(DRIVER_PID_ENV)
        return cls(raise_p, raise_seed, int(kill) if kill else None, int(pid) if pid else None)

    def maybe_raise(self, key: str, progress: int, attempt: int) -> None:
        """Raise at this report (``progress``: epochs or iterations done) with probability P."""
        if self.raise_p <= 0:
            return
        digest = hashlib.sha256(f"{self.raise_seed}:{key}:{progress}:{attempt}".encode()).digest()
        if int.from_bytes(digest[:8], "big") / 2**64 < self.raise_p:
            raise InjectedFault(f"injected fault in {key} at progress {progress} (attempt {attempt})")

    def write_hook(self, finished_trials: int) -> Any | None:
        """A store hook that kills driver and writer during the chosen trials-file write."""
        if self.kill_in_write is None or finished_trials < self.kill_in_write:
            return None

        def hook(path: str) -> None:
            if "/trials/" in path:
                if self.driver_pid:
                    try:
                        os.kill(self.driver_pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                os.kill(os.getpid(), signal.SIGKILL)

        return hook


def compact_kill_point(phase: str) -> None:
    """Kill this process if the compaction test switch names ``phase``; in a worker (phases
    ``worker-...``, the merge of a unit's files), the driver first, as a sweep killed mid-merge."""
    if os.environ.get(KILL_IN_COMPACT_ENV) != phase:
        return
    driver = os.environ.get(DRIVER_PID_ENV)
    if driver and int(driver) != os.getpid():
        try:
            os.kill(int(driver), signal.SIGKILL)
        except ProcessLookupError:
            pass
    os.kill(os.getpid(), signal.SIGKILL)


def worker_env() -> dict[str, str]:
    """The switches set in the driver's environment, for the workers' runtime environment."""
    env = {k: os.environ[k] for k in (RAISE_ENV, KILL_IN_WRITE_ENV, KILL_IN_COMPACT_ENV) if os.environ.get(k)}
    if env:
        env[DRIVER_PID_ENV] = str(os.getpid())
    return env
