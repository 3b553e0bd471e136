"""The sweep's display while bundles train: a line at the first progress report, then at most one
every 30 s, each running bundle's progress and member-samples/s, and an ETA from the measured
throughput. Driven here by a simulated clock and reports shaped as the trainers send them."""

from __future__ import annotations

import json
from dataclasses import dataclass

from isosweep.orchestrator.progress import Progress
from isosweep.studies import STUDIES


@dataclass
class FakeTrial:
    """What Progress reads of a Ray Tune trial."""

    trial_id: str
    config: dict
    status: str = "RUNNING"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _bundles() -> list[FakeTrial]:
    configs = STUDIES["toy"].configs("quick", where={"lam": (100.0,)})  # 9 trials of 90 epochs
    halves = [configs[:5], configs[5:]]
    return [FakeTrial(f"t{i}", {"bundle": json.dumps([c.to_dict() for c in half])}) for i, half in enumerate(halves)]


def test_progress_lines_are_throttled_and_the_eta_follows_the_measured_rate(capsys):
    clock = Clock()
    trials = _bundles()
    progress = Progress(total=9, skipped=0, clock=clock, started=0.0)
    # Ray starts for 20 s, then each bundle trains 1 epoch every 2 s; n_train 50,000 rows a member.
    epoch_s, start, n = 2.0, 20.0, 50_000
    lines: list[tuple[float, str]] = []
    etas: list[tuple[float, float]] = []
    for epoch in range(9, 91, 9):
        clock.now = start + epoch * epoch_s
        for trial in trials:
            members = len(json.loads(trial.config["bundle"]))
            progress.on_result(
                trials,
                trial,
                {"member": 0, "trial_key": "k", "members": members, "progress": epoch, "samples": epoch * members * n},
            )
        out = capsys.readouterr().out
        lines += [(clock.now, line) for line in out.splitlines()]
        eta = progress.eta(trials)
        if eta is not None:
            etas.append((clock.now, eta))
    end = start + 90 * epoch_s
    # The first line comes with the first report, 18 s into training; then at least 30 s apart.
    assert lines[0][0] == start + 9 * epoch_s
    assert all(b - a >= 30 for (a, _), (b, _) in zip(lines, lines[1:]))
    assert len(lines) == 5
    # Printed as bundle 0 reports epoch 27, 36 s after the first line; bundle 1 is still at 18.
    assert "bundle 0: 27/90 x 5 members" in lines[1][1] and "bundle 1: 18/90 x 4 members" in lines[1][1]
    # Member-samples/s of bundle 0: 5 members x 50,000 rows per 2 s epoch.
    assert "125,000 member-samples/s" in lines[1][1]
    # Once there is a rate, the ETA is the time left (exact here: the simulated rate is constant).
    assert etas and all(abs(eta - (end - now)) <= 0.25 * (end - now) + 1e-9 for now, eta in etas)


def test_finished_members_count_in_full_and_the_finish_line_has_an_eta(capsys):
    clock = Clock()
    trials = _bundles()
    progress = Progress(total=9, skipped=0, clock=clock, started=0.0)
    clock.now = 10.0
    progress.on_result(trials, trials[0], {"member": 0, "trial_key": "k", "members": 5, "progress": 45, "samples": 0})
    clock.now = 20.0
    progress.on_result(trials, trials[0], {"member": 0, "trial_key": "k", "members": 5, "progress": 90, "samples": 0})
    assert progress.done_work() == 5 * 90
    # Members written are reported in batches (one report a second at most): two, then three.
    for batch in ([0, 1], [2, 3, 4]):
        progress.on_result(
            trials,
            trials[0],
            {"member": batch[-1], "trial_key": f"k{batch[-1]}", "finished": [[k, f"k{k}", "ok", 1.0] for k in batch]},
        )
        # Each member written replaces its share of the unit's report: the work done never jumps.
        assert progress.done_work() == 5 * 90
    out = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in out[-5:]] == [f"[{k}/9]" for k in range(1, 6)], "one line per member"
    last = out[-1]
    # 810 member-epochs in all, 450 done; bundle 0 trained 225 in 10 s, and bundle 1, running but not
    # measured yet, counts at the same pace: 360 / 45 per second = 8 s left.
    assert last.startswith("[5/9] ok") and last.endswith("| eta 8s")
    trials[1].status = "PENDING"  # only bundle 0 trains: 16 s
    assert progress.eta(trials) == 16.0
