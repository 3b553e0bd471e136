"""One package, ``isosweep``, built from real folders: the three layers live in the checkout's
top-level ``orchestrator/``, ``trainers/`` and ``analysis/`` and are installed as
``isosweep.orchestrator``, ``isosweep.trainers`` and ``isosweep.analysis`` (pyproject's package-dir).

The wheel is built offline (no index, no build isolation: the virtual environment's setuptools)
from a copy of the working tree's tracked and untracked-but-not-ignored files, so that nothing a
build or a run left in the checkout (``build/``, stores, caches) can reach it.
"""

from __future__ import annotations

import configparser
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

from helpers import REPO

PYTHON = sys.executable
VERSION = version("isosweep")

# A file of each source folder, with its name inside the package.
REAL_FILES = {
    "isosweep/orchestrator/plan.py": "orchestrator/plan.py",
    "isosweep/trainers/run.py": "trainers/run.py",
    "isosweep/analysis/sql/toy_summary.sql": "analysis/sql/toy_summary.sql",
    "isosweep/cli.py": "isosweep/cli.py",
    "isosweep/__init__.py": "isosweep/__init__.py",
}
LAYERS = {"orchestrator": "isosweep.orchestrator", "trainers": "isosweep.trainers", "analysis": "isosweep.analysis"}


def test_the_checkout_holds_no_links() -> None:
    links = [
        p.relative_to(REPO).as_posix()
        for p in REPO.rglob("*")
        if p.is_symlink() and not {".git", ".venv"} & set(p.relative_to(REPO).parts)
    ]
    assert links == []


# Run in a fresh interpreter from the repository root (the way pytest, the CLI and a notebook
# opened there see it): every module of the package imported, then each file must be loaded once,
# under one name, and no layer under a bare top-level name.
_IMPORT_ALL = """
import importlib, pkgutil, sys
root = sys.argv[1]
import isosweep
names = [m.name for m in pkgutil.walk_packages(isosweep.__path__, "isosweep.")]
for name in ("isosweep.orchestrator", "isosweep.trainers", "isosweep.analysis"):
    pkg = importlib.import_module(name)
    names += [name] + [m.name for m in pkgutil.walk_packages(pkg.__path__, name + ".")]
names = [n for n in names if not n.endswith(".__main__")]  # that one runs the CLI
for name in names:
    importlib.import_module(name)
by_file = {}
for name, module in list(sys.modules.items()):
    path = getattr(module, "__file__", None)
    # The package's own files (the standard library and some dependencies alias theirs).
    if path and any(path.startswith(root + folder + "/") for folder in ("isosweep", "orchestrator", "trainers", "analysis")):
        by_file.setdefault(path, []).append(name)
print(len(set(names)))
for path, loaded in by_file.items():
    if len(loaded) > 1:
        print("TWICE", path, loaded)
for bare in ("orchestrator", "trainers", "analysis"):
    if bare in sys.modules:
        print("BARE", bare)
for name in names:
    print("FILE", name, sys.modules[name].__file__)
"""


def test_every_module_is_loaded_once_under_one_name_from_the_repository_root() -> None:
    proc = subprocess.run(
        [PYTHON, "-c", _IMPORT_ALL, str(REPO) + os.sep],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert int(lines[0]) > 50  # the package's modules, not an empty walk
    assert [line for line in lines if line.startswith(("TWICE", "BARE"))] == []
    # Each module is the checkout's own file, from the folder its layer is named for.
    for line in lines:
        if line.startswith("FILE"):
            _, name, path = line.split(" ", 2)
            layer = name.split(".")[1] if name.count(".") else ""
            folder = REPO / (layer if layer in LAYERS else "isosweep")
            assert Path(path).is_relative_to(folder), (name, path)
    # Every source file of a layer is a module that was imported.
    imported = {Path(line.split(" ", 2)[2]) for line in lines if line.startswith("FILE")}
    for folder in LAYERS:
        files = {p for p in (REPO / folder).rglob("*.py") if "__pycache__" not in p.parts}
        assert files <= imported, sorted(str(p) for p in files - imported)


def _copy_source(dest: Path) -> None:
    """Copy what git would put in a source distribution: tracked files and untracked ones that
    .gitignore does not exclude, symlinks as symlinks."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("building the wheel from a clean copy needs a git checkout")
    listed = (
        subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=REPO,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        src = REPO / name
        if not os.path.lexists(src):
            continue  # tracked but deleted in the working tree
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target, follow_symlinks=False)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("wheel")
    source, out = base / "src", base / "out"
    _copy_source(source)
    proc = subprocess.run(
        [PYTHON, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    wheels = list(out.glob("*.whl"))
    assert [w.name for w in wheels] == [f"isosweep-{VERSION}-py3-none-any.whl"]
    return wheels[0]


def test_wheel_holds_only_the_isosweep_package(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        top = {name.split("/")[0] for name in z.namelist()}
    assert top == {"isosweep", f"isosweep-{VERSION}.dist-info"}


def test_the_layers_folders_are_installed_inside_the_package(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        infos = {i.filename: i for i in z.infolist()}
        for inside, source in REAL_FILES.items():
            assert inside in infos, f"{inside} missing from the wheel"
            mode = infos[inside].external_attr >> 16
            assert not stat.S_ISLNK(mode), f"{inside} is a link in the wheel"
            assert z.read(inside) == (REPO / source).read_bytes(), f"{inside} differs from {source}"
        # Every module of the three folders is there, not only the ones named above.
        for folder in ("orchestrator", "trainers", "analysis"):
            modules = {
                p.relative_to(REPO).as_posix() for p in (REPO / folder).rglob("*.py") if "__pycache__" not in p.parts
            }
            missing = {m for m in modules if f"isosweep/{m}" not in infos}
            assert not missing, f"not in the wheel: {sorted(missing)}"


def test_wheel_entry_point(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        text = z.read(f"isosweep-{VERSION}.dist-info/entry_points.txt").decode()
    entry_points = configparser.ConfigParser()
    entry_points.read_string(text)
    assert dict(entry_points["console_scripts"]) == {"isosweep": "isosweep.console:main"}


def test_wheel_installs_one_package_into_a_fresh_venv(wheel: Path, tmp_path: Path) -> None:
    """Installed without its dependencies into an empty venv: site-packages gets isosweep and its
    metadata only, and ``import isosweep`` works there (it needs none of them)."""
    venv = tmp_path / "venv"
    subprocess.run([PYTHON, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    fresh = venv / "bin" / "python"
    # This environment's pip installs into the fresh one (pip --python): no pip there, no network.
    proc = subprocess.run(
        [PYTHON, "-m", "pip", "--python", str(fresh), "install", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    site = subprocess.run(
        [str(fresh), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    names = {p.name for p in Path(site).iterdir() if p.name != "__pycache__"}
    assert names == {"isosweep", f"isosweep-{VERSION}.dist-info"}
    assert (venv / "bin" / "isosweep").is_file()
    # From a folder outside the repository, so that nothing but the install can be imported.
    probe = (
        "import isosweep, importlib.resources as r; print(isosweep.__file__); print(isosweep.__version__); "
        "print(r.files('isosweep.analysis').joinpath('sql', 'toy_summary.sql').is_file())"
    )
    out = subprocess.run(
        [str(fresh), "-c", probe],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    ).stdout.split()
    assert out == [str(Path(site) / "isosweep" / "__init__.py"), VERSION, "True"]


def test_the_command_line_imports_neither_torch_nor_ray_nor_duckdb_until_a_command_needs_them() -> None:
    """`isosweep status` and `query` start in well under a second: the command line's modules leave
    torch (the trainers), Ray (a sweep on Ray) and DuckDB (a query) to the commands that use them."""
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, isosweep.cli; print(sorted({'torch', 'ray', 'duckdb'} & set(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert loaded == "[]"
