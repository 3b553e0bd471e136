"""The documentation says what is true of this repository: README.md, CONTRIBUTING.md and every
page under docs/.

- the README stays short (at most 200 lines): the rest lives in docs/;
- every relative link resolves to a file of the repository, and every #anchor to a heading of the
  page it names (slugged as the site builds them); no link leaves the repository;
- every repository path cited in backticks or in a code block exists;
- nothing refers to the working notes the pages were written from;
- every `isosweep ...` command line, in a code block or an inline code span, parses with the
  command line's own parser, and names a registered study and one of its budgets;
- every python code block compiles;
- `mkdocs build --strict` builds the site (broken links and anchors fail it).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from markdown.extensions.toc import slugify

REPO = Path(__file__).resolve().parents[1]
PAGES = sorted([REPO / "README.md", REPO / "CONTRIBUTING.md", *(REPO / "docs").rglob("*.md")])
README_MAX_LINES = 200

FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"(?<!!)\[(?:[^\[\]]|\[[^\]]*\])*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
CODE_SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$", re.MULTILINE)

# What a cited repository path starts with: the repository's own folders and root files.
REPO_ROOTS = (
    "isosweep/",
    "trainers/",
    "orchestrator/",
    "analysis/",
    "tests/",
    "benchmarks/",
    "examples/",
    "docs/",
    ".ci/",
)
ROOT_FILES = {
    "README.md",
    "CONTRIBUTING.md",
    "Makefile",
    "mkdocs.yml",
    "pyproject.toml",
    "constraints.txt",
    "cluster.yaml",
    "cluster-onprem.yaml",
}
FORBIDDEN = re.compile(r"METHOD\.md|ARCHITECTURE\.md|STYLE\.md|\.\./shared|/work/")


def _rel(page: Path) -> str:
    return str(page.relative_to(REPO))


def _text(page: Path) -> str:
    return page.read_text(encoding="utf-8")


def _without_code(text: str) -> str:
    """The page's prose: fenced blocks blanked (line count kept), code spans left in place."""
    return FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)


def _blocks(text: str, *langs: str) -> list[str]:
    return [m.group("body") for m in FENCE.finditer(text) if m.group("lang") in langs]


def _anchors(page: Path) -> set[str]:
    """The ids the site gives the page's headings (Python-Markdown's toc slugs, made unique)."""
    seen: dict[str, int] = {}
    anchors = set()
    for _, title in HEADING.findall(_without_code(_text(page))):
        title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title).replace("`", "")
        slug = slugify(title, "-")
        if slug in seen:
            seen[slug] += 1
            slug = f"{slug}_{seen[slug]}"
        else:
            seen[slug] = 0
        anchors.add(slug)
    return anchors


def test_the_readme_is_short():
    lines = _text(REPO / "README.md").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


def test_the_pages_exist():
    names = {_rel(p) for p in PAGES}
    for name in (
        "docs/index.md",
        "docs/method.md",
        "docs/architecture.md",
        "docs/results/toy.md",
        "docs/results/anomaly.md",
        "docs/results/images.md",
        "docs/guide/api.md",
        "docs/guide/cli.md",
    ):
        assert name in names, name


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_every_relative_link_and_anchor_resolves(page):
    problems = []
    for match in LINK.finditer(_without_code(_text(page))):
        target = match.group("target")
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:: not a file of the repository
            continue
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if not dest.is_relative_to(REPO):
            problems.append(f"{target}: leaves the repository")
            continue
        if not dest.exists():
            problems.append(f"{target}: no such file")
            continue
        if anchor:
            if dest.suffix != ".md":
                problems.append(f"{target}: an anchor into a file that is not a page")
            elif anchor not in _anchors(dest):
                problems.append(f"{target}: {_rel(dest)} has no heading with the anchor #{anchor}")
    assert not problems, f"{_rel(page)}:\n" + "\n".join(problems)


def _cited_paths(text: str) -> set[str]:
    """Repository paths named in code spans and code blocks."""
    words: list[str] = []
    for span in CODE_SPAN.findall(_without_code(text)):
        words.extend(span.split())
    for block in _blocks(text, "bash", "text", "sh", ""):
        words.extend(block.split())
    cited = set()
    for word in words:
        word = word.strip("'\"()[],;:")
        if any(c in word for c in "<>*$?{}") or "://" in word or word.startswith("."):
            if not word.startswith(".ci/"):
                continue
        if word.startswith(REPO_ROOTS) or word in ROOT_FILES:
            cited.add(word.rstrip("."))
    return cited


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_every_cited_repository_path_exists(page):
    missing = sorted(p for p in _cited_paths(_text(page)) if not (REPO / p).exists())
    assert not missing, f"{_rel(page)} cites paths that are not in the repository: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_no_page_refers_to_files_outside_the_repository(page):
    found = sorted({m.group(0) for m in FORBIDDEN.finditer(_text(page))})
    assert not found, f"{_rel(page)} mentions {found}"


def _commands(block: str) -> list[str]:
    """A block's shell commands: a command spans lines while a quote is open or a line ends in \\."""
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
        out.append(current.replace("\\\n", " "))
        current = ""
    assert not current, f"unterminated command: {current!r}"
    return out


def _isosweep_argv(argv: list[str]) -> list[str] | None:
    """The isosweep arguments of a command: plain, inside `ray exec FILE '...'`, or after `--`."""
    if argv[:2] == ["ray", "exec"] and len(argv) > 3:
        return _isosweep_argv(shlex.split(argv[3]))
    if "--" in argv:
        argv = argv[argv.index("--") + 1 :]
    argv = [w for w in argv if w != "&"]
    if argv and Path(argv[0]).name == "isosweep":
        return argv[1:]
    return None


def _command_lines(text: str) -> list[list[str]]:
    """Every isosweep command line of a page, as arguments: in code blocks (with the block's shell
    variables, `S="--store ..."`, expanded) and in inline code spans without placeholders."""
    lines = []
    for block in _blocks(text, "bash", "sh"):
        variables: dict[str, str] = {}
        for command in _commands(block):
            words = shlex.split(command, comments=True)
            if len(words) == 1 and re.fullmatch(r"[A-Za-z_]\w*=.*", words[0]):
                name, _, value = words[0].partition("=")
                variables[name] = value
                continue
            for name, value in variables.items():
                command = command.replace(f"${name}", value)
            argv = _isosweep_argv(shlex.split(command, comments=True))
            if argv is not None:
                lines.append(argv)
    for span in CODE_SPAN.findall(_without_code(text)):
        if not span.startswith("isosweep ") or "..." in span or "[" in span or span.startswith("isosweep --"):
            continue
        try:
            argv = shlex.split(span)[1:]
        except ValueError:
            continue
        # A usage line with placeholders (`isosweep resume NAME --store URL`), a bare command name
        # (`isosweep run`) or a command's flag (`isosweep report --out`) is not a command line.
        if len(argv) < 2 or (len(argv) == 2 and argv[1].startswith("-")):
            continue
        if any(re.fullmatch(r"[A-Z][A-Z_]+", w) for w in argv):
            continue
        lines.append(argv)
    return lines


PAGES_WITH_COMMANDS = [p for p in PAGES if _command_lines(_text(p))]


def test_the_docs_hold_command_lines():
    assert len(PAGES_WITH_COMMANDS) >= 8, [_rel(p) for p in PAGES_WITH_COMMANDS]


@pytest.mark.parametrize("page", PAGES_WITH_COMMANDS, ids=_rel)
def test_every_isosweep_command_line_parses(page):
    from isosweep.cli import build_parser
    from isosweep.studies import get_study

    parser = build_parser()
    problems = []
    for argv in _command_lines(_text(page)):
        try:
            args = parser.parse_args(argv)
            if args.command in ("run", "report"):
                study = get_study(args.study)
                if getattr(args, "budget", None):
                    study.budget(args.budget)
        except (Exception, SystemExit) as exc:
            problems.append(f"isosweep {shlex.join(argv)}: {type(exc).__name__}: {exc}")
    assert not problems, f"{_rel(page)}:\n" + "\n".join(problems)


SITE_PAGES = [p for p in PAGES if p.is_relative_to(REPO / "docs")]


@pytest.mark.parametrize("page", SITE_PAGES, ids=_rel)
def test_nested_lists_are_indented_as_the_site_reads_them(page):
    """The site's Markdown nests a list item only at 4 spaces: at 2 or 3 it flattens the list."""
    shallow = [line for line in _without_code(_text(page)).splitlines() if re.match(r"^ {1,3}([-*]|\d+\.) ", line)]
    assert not shallow, f"{_rel(page)}: indent nested list items by 4 spaces: {shallow[:3]}"


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_every_named_query_cited_exists(page):
    cited = set(re.findall(r"(?<![\w.])@([a-z][a-z0-9_]*)\b", _text(page))) - {"name"}
    missing = sorted(q for q in cited if not (REPO / "analysis" / "sql" / f"{q}.sql").is_file())
    assert not missing, f"{_rel(page)} cites named queries that analysis/sql/ lacks: {missing}"


def test_every_named_query_is_listed_in_the_guide():
    listed = set(re.findall(r"^\| `@([a-z0-9_]+)` \|", _text(REPO / "docs" / "guide" / "queries.md"), re.MULTILINE))
    assert listed == {p.stem for p in (REPO / "analysis" / "sql").glob("*.sql")}


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_every_python_block_compiles(page):
    for i, block in enumerate(_blocks(_text(page), "python", "py")):
        compile(block, f"{_rel(page)}, python block {i + 1}", "exec")


def test_the_site_builds_strictly(tmp_path):
    pytest.importorskip("material", reason="mkdocs-material is a dev extra: make install")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (tmp_path / "site" / "method" / "index.html").is_file()
