"""The README, followed word by word as a new user would, in a fresh clone of this repository, and
then the guide page it sends a user with data of their own to (docs/guide/custom-data.md).

Every ```bash block of those pages is taken in order and each command in it is:

- run as written in the clone, in one bash script per block (so `S=...` then `$S` work), with the
  clone's `.venv/bin` first on PATH as the README asks (`make demo` creates that environment);
- `isosweep run ... --budget paper`, and the anomaly runs at `--budget quick`: planned with
  `--dry-run` appended (the runs themselves take about 9 minutes per two toy trials, and 35
  minutes for the Thyroid grid and search); set ISOSWEEP_README_FULL=1 to run them as written;
- `make test`, `make test-slow` and the other `make test-*` tiers, `make lint` and `make docs`:
  checked with `make -n` (this test is itself part of the test tiers);
- a command on a cluster (`ray ...`) or an object store (`s3://`, `gs://`) cannot run here: its
  `isosweep` part (also inside `ray exec '...'` and `ray job submit -- ...`) is parsed by the CLI's
  own parser and the study and budget are checked; each `ray` subcommand and option is checked
  against `ray SUBCOMMAND --help` of the installed Ray; the cluster files themselves are
  validated against Ray's schema by tests/orchestrator/test_cluster_yaml.py.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from anomaly_files import write_anomaly_files

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"^```bash\n(.*?)^```", re.MULTILINE | re.DOTALL)
REMOTE = ("s3://", "gs://")
FOLLOWED = ("README.md", "docs/guide/custom-data.md")
"""The pages followed, in order: the README first, whose `make demo` creates the environment."""


def code_blocks(text: str) -> list[str]:
    return BLOCK.findall(text)


def commands(block: str) -> list[str]:
    """The block's shell commands: a command spans lines while a quote is open or a line ends in \\."""
    out, current = [], ""
    for line in block.splitlines():
        if not current and (not line.strip() or line.strip().startswith("#")):
            continue
        current = f"{current}\n{line}" if current else line
        if current.endswith("\\"):
            continue
        try:
            shlex.split(current, comments=True)
        except ValueError:  # an open quote: the command goes on
            continue
        out.append(current)
        current = ""
    assert not current, f"unterminated command in README: {current!r}"
    return out


def words(command: str) -> list[str]:
    # A backslash at the end of a line continues the command, as in bash (shlex keeps the newline).
    return shlex.split(command.replace("\\\n", " "), comments=True)


def isosweep_argv(command: str) -> list[str] | None:
    """The isosweep arguments of a command: plain, inside `ray exec FILE '...'`, or after `--`."""
    argv = words(command)
    if argv and argv[0] == "ray" and argv[1:2] == ["exec"]:
        inner = words(argv[3])
        return inner[1:] if inner and inner[0] == "isosweep" else None
    if "--" in argv:
        argv = argv[argv.index("--") + 1 :]
    return argv[1:] if argv and argv[0].endswith("isosweep") else None


def check_isosweep_parses(argv: list[str]) -> None:
    from isosweep.cli import build_parser
    from isosweep.studies import get_study

    args = build_parser().parse_args(argv)
    if args.command in ("run", "report"):
        study = get_study(args.study)
        if getattr(args, "budget", None):
            study.budget(args.budget)


def check_ray_command(command: str, ray: Path) -> None:
    """`ray SUB [SUB2] ... --option`: the subcommand exists and takes every option used."""
    argv = [w for w in words(command) if w != "&"]
    sub = [argv[1]] + ([argv[2]] if argv[1] == "job" else [])
    proc = subprocess.run([str(ray), *sub, "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"`ray {' '.join(sub)}` is not a ray command: {proc.stderr[-500:]}"
    options = [w.split("=")[0] for w in argv if w.startswith("-") and w != "--"]
    if "--" in argv:
        options = [w for w in options if argv.index(w) < argv.index("--")]
    for option in options:
        assert re.search(rf"(^|[\s,]){re.escape(option)}([\s,=]|$)", proc.stdout, re.MULTILINE), (
            f"`ray {' '.join(sub)}` has no option {option}"
        )
    for word in argv:
        if word.endswith((".yaml", ".yml")):
            assert (REPO / word).is_file(), f"{word} is not in the repository"


def prepare(command: str) -> str | None:
    """The command as this test runs it; None where it is checked without running."""
    argv = words(command)
    if argv[:1] == ["make"] and argv[1:2] and (argv[1].startswith("test") or argv[1] in ("lint", "docs")):
        return f"make -n {argv[1]} >/dev/null"
    long_run = "paper" in argv or ("quick" in argv and argv[2:3] in (["anomaly"], ["anomaly-paper"]))
    if (
        argv
        and argv[0].endswith("isosweep")
        and argv[1:2] == ["run"]
        and long_run
        and not os.environ.get("ISOSWEEP_README_FULL")
    ):
        return shlex.join([*argv, "--dry-run"])
    return command


@pytest.mark.timeout(5400)
def test_readme_from_a_fresh_clone(tmp_path):
    clone = tmp_path / "readme-check"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    blocks = [block for page in FOLLOWED for block in code_blocks((clone / page).read_text())]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ISOSWEEP_STORE", "VIRTUAL_ENV"))}
    env["PATH"] = f"{clone / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    # The README's anomaly commands read $ISOSWEEP_DATA, as it tells its reader to set: the real
    # data sets where present, else small files in their formats.
    if not env.get("ISOSWEEP_DATA"):
        shared = REPO.parent / "shared" / "data"
        env["ISOSWEEP_DATA"] = str(shared if shared.is_dir() else write_anomaly_files(tmp_path / "data"))
    ray = Path(sys.executable).parent / "ray"
    ran, checked = [], []
    for block in blocks:
        cmds = commands(block)
        on_cluster = any(words(c)[0] == "ray" for c in cmds)
        script = []
        for command in cmds:
            argv = isosweep_argv(command)
            if words(command)[0] == "ray":
                check_ray_command(command, ray)
                if argv is not None:
                    check_isosweep_parses(argv)
                checked.append(command)
            elif on_cluster or any(r in command for r in REMOTE):
                if argv is not None:
                    check_isosweep_parses(argv)
                checked.append(command)
            else:
                prepared = prepare(command)
                script.append(prepared)
                ran.append(prepared)
        if script:
            proc = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", "\n".join(script)],
                cwd=clone,
                env=env,
                capture_output=True,
                text=True,
                timeout=3600,
            )
            assert proc.returncode == 0, (
                f"block failed (exit {proc.returncode}):\n"
                + "\n".join(script)
                + f"\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
            )
            print(f"$ {chr(10).join(script)}\n{proc.stdout[-3000:]}", flush=True)
    assert any(c.startswith("make demo") for c in ran) and any("custom" in c for c in ran)
    assert any("ray up cluster.yaml" in c for c in checked)
