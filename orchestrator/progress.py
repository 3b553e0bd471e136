"""The sweep's display: one line per finished trial and, while bundles train, their progress and
an ETA. Fed by either executor: Ray Tune's callback (``experiment.TuneProgress``) or the local
executor (``isosweep.orchestrator.local``). No Ray here."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from isosweep.orchestrator.search import OBJECTIVE
from isosweep.orchestrator.worker import NO_SPACE, members_of
from isosweep.trainers.config import TrialConfig


def member_steps(cfg: TrialConfig) -> int:
    """A trial's training length in the units its progress reports count: iterations for the
    kinds that train by iterations, else epochs."""
    return int(cfg.iterations or cfg.epochs)


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return (
        f"{seconds // 3600}h{seconds // 60 % 60:02d}m"
        if seconds >= 3600
        else (f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s")
    )


@dataclass
class Progress:
    """The sweep's display, readable in a log file (``ray job logs``, CI): one line per finished
    trial, and while bundles train, at most one line every ``every_s`` seconds with each running
    bundle's progress and member-samples/s and an ETA from the measured throughput.

    Work is counted in member-steps (a member's epochs, or iterations): the sweep's total from
    every bundle's members, the work done from the bundles' progress reports and finished members.
    The ETA divides the work left by the sweep's throughput: the sum over the running bundles of
    each one's rate between its last two reports, so neither Ray's start-up nor a bundle that has
    only begun distorts it."""

    total: int
    skipped: int
    counts: dict[str, int] = field(default_factory=lambda: {"ok": 0, "failed": 0, "diverged": 0})
    started: float = field(default_factory=time.monotonic)
    points: int = 0
    """Search points finished (a search's trial is one point, its seeds the members)."""
    best: float = float("-inf")
    every_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    _work: dict[str, int] = field(default_factory=dict)
    """Per Ray trial: its members' member-steps in all."""
    _finished: dict[str, int] = field(default_factory=dict)
    """Per Ray trial: member-steps of its finished members."""
    _partial: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per Ray trial: its running unit's last report (members, progress, steps, samples, time)."""
    _members: dict[str, list[TrialConfig]] = field(default_factory=dict)
    """Per Ray trial: its members, parsed from its config once."""
    _rate: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Per Ray trial: (member-steps/s, member-samples/s) between its last two reports."""
    _last_line: float = float("-inf")
    merged: dict[str, float] = field(default_factory=lambda: {"merged_files": 0, "merged_into": 0, "merged_s": 0.0})
    """What the workers' merges of their units' files did, summed (``worker._merge_unit``)."""

    def on_end(self) -> None:
        """The sweep has ended: what the workers' merges did, where they merged anything."""
        if self.merged["merged_into"]:
            print(
                f"workers merged {self.merged['merged_files']:.0f} per-trial file(s) into "
                f"{self.merged['merged_into']:.0f} in {self.merged['merged_s']:.1f}s (worker time)",
                flush=True,
            )

    # -- work -------------------------------------------------------------------------------------
    def _trial_work(self, trial: Any) -> int:
        if trial.trial_id not in self._work:
            self._work[trial.trial_id] = sum(member_steps(m) for m in self.members(trial))
        return self._work[trial.trial_id]

    def done_work(self) -> float:
        """Member-steps done: finished members in full, running units by their last report."""
        running = sum(p["members"] * p["progress"] for p in self._partial.values())
        return sum(self._finished.values()) + running

    def eta(self, trials: list) -> float | None:
        """Seconds left at the running bundles' measured throughput, or None before any bundle
        has reported twice."""
        running = [t for t in trials if t.status == "RUNNING"]
        rates = [self._rate[t.trial_id][0] for t in running if t.trial_id in self._rate]
        if not rates or sum(rates) <= 0:
            return None
        # Running bundles not measured yet (just started, or between units) run about as fast as
        # the measured ones: the slots are alike.
        rate = sum(rates) * len(running) / len(rates)
        total = sum(self._trial_work(t) for t in trials)
        return max(0.0, total - self.done_work()) / rate

    # -- the executor's reports --------------------------------------------------------------------
    def members(self, trial: Any) -> list[TrialConfig]:
        """The members of a Ray trial, parsed once (a fused bundle's config holds thousands)."""
        if trial.trial_id not in self._members:
            self._members[trial.trial_id] = members_of(trial.config)
        return self._members[trial.trial_id]

    @staticmethod
    def describe(member: TrialConfig) -> str:
        values = member.to_dict()
        return " ".join(
            f"{k}={values[k]:g}" if isinstance(values[k], float) else f"{k}={values[k]}"
            for k in ("dataset", "loss", "lam", "lam1", "lam2", "seed")
            if values.get(k) is not None
        )

    def on_result(self, trials: list, trial: Any, result: dict) -> None:
        """One report of a running trial (``trial``: its ``trial_id``, ``config`` and ``status``,
        as Ray Tune's trials have them; ``trials``: all of the sweep's)."""
        if NO_SPACE in result:
            return  # the sweep stops (``experiment.NoSpaceStop``) and the command says why
        members = self.members(trial)
        member = members[result["member"]]
        if result.get("point_done"):
            self.points += 1
            self.best = max(self.best, float(result[OBJECTIVE]))
            what = self.describe(member).replace(f" seed={member.seed}", "")
            print(
                f"point {self.points}: {what} mean val_f1 {result[OBJECTIVE]:.4f} (best so far {self.best:.4f})",
                flush=True,
            )
            return
        if result.get("retrying"):
            self._partial.pop(trial.trial_id, None)
            print(
                f"retry    {result['trial_key']} {self.describe(member)}: failed, continuing from its last checkpoint",
                flush=True,
            )
            return
        if "finished" in result:
            lines = [
                self._finished_member(trials, trial, members[i], key, status, wall_s)
                for i, key, status, wall_s in result["finished"]
            ]
            if lines:
                print("\n".join(lines), flush=True)
            for name in self.merged:
                self.merged[name] += result.get(name, 0)
        elif "progress" in result:
            self._training(trials, trial, result, member)

    def _finished_member(
        self, trials: list, trial: Any, member: TrialConfig, key: str, status: str, wall_s: float
    ) -> str:
        """Count one member written to the store; its line."""
        # A unit's results are written one by one once it has trained: each member written counts in
        # full from now on, in place of its share of the unit's last report.
        unit = self._partial.get(trial.trial_id)
        if unit is not None:
            unit["members"] -= 1
            if unit["members"] <= 0:
                del self._partial[trial.trial_id]
        self._finished[trial.trial_id] = self._finished.get(trial.trial_id, 0) + member_steps(member)
        self.counts[status] = self.counts.get(status, 0) + 1
        finished = sum(self.counts.values())
        eta = self.eta(trials)
        if eta is None:  # no progress report yet (short trials): by finished trials instead
            eta = (self.clock() - self.started) / finished * max(0, self.total - finished)
        running = sum(1 for t in trials if t.status == "RUNNING")
        return (
            f"[{finished}/{self.total}] {status:<8} {key} {self.describe(member)} ({wall_s:.2f}s) "
            f"| ok {self.counts['ok']} failed {self.counts['failed']} diverged {self.counts['diverged']} "
            f"skipped {self.skipped} running {running} | eta {_duration(eta)}"
        )

    def _training(self, trials: list, trial: Any, result: dict, member: TrialConfig) -> None:
        """A progress report from inside a bundle: record it, and print a line if one is due."""
        now = self.clock()
        last = self._partial.get(trial.trial_id)
        report = {
            "members": float(result.get("members", 1)),
            "progress": float(result["progress"]),
            "steps": float(member_steps(member)),
            "samples": float(result.get("samples", 0.0)),
            "time": now,
        }
        if last is not None and last["progress"] < report["progress"] and now > last["time"]:
            # Between two reports of one unit (a bundle's next unit starts again from zero).
            seconds = now - last["time"]
            self._rate[trial.trial_id] = (
                report["members"] * (report["progress"] - last["progress"]) / seconds,
                (report["samples"] - last["samples"]) / seconds,
            )
        self._partial[trial.trial_id] = report
        if now - self._last_line < self.every_s:
            return
        self._last_line = now
        total = sum(self._trial_work(t) for t in trials)
        parts = []
        for number, t in enumerate(trials):
            p = self._partial.get(t.trial_id)
            if p is None or t.status != "RUNNING":
                continue
            rate = self._rate.get(t.trial_id)
            shown = f"{rate[1]:,.0f} member-samples/s" if rate is not None else "member-samples/s after its next report"
            parts.append(f"bundle {number}: {p['progress']:.0f}/{p['steps']:.0f} x {p['members']:.0f} members, {shown}")
        eta = self.eta(trials)
        print(
            f"progress {100.0 * self.done_work() / max(1, total):.0f}% of {total:,} member-steps | "
            + " | ".join(parts)
            + f" | eta {_duration(eta) if eta is not None else 'after the next report'}",
            flush=True,
        )
