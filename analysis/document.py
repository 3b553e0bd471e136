"""The report as data (sections of text, tables and figures) and its renderings.

A :class:`Document` is rendered to markdown (figures linked as ``figures/<name>.png``, tables
written beside it as ``tables/<name>.csv``) and to one self-contained HTML page (figures embedded
as base64 PNG, no external resources).
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

FIGURES_DIR = "figures"
TABLES_DIR = "tables"


@dataclass(frozen=True)
class Table:
    """A table of the report, also written as ``tables/<name>.csv``."""

    name: str
    """File stem, unique within the report."""
    caption: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    source: str = ""
    """The named query the rows come from (shown as ``isosweep query @source``)."""
    fold_above: int = 0
    """In HTML, fold the table away (click to open) when it has more rows than this; 0: never."""


@dataclass(frozen=True)
class Figure:
    """A figure of the report, also written as ``figures/<name>.png``."""

    name: str
    """File stem, unique within the report."""
    caption: str
    png: bytes


@dataclass(frozen=True)
class Note:
    """A paragraph of text; ``warning`` marks what is missing or wrong."""

    text: str
    warning: bool = False


Block = Note | Table | Figure


@dataclass
class Section:
    """A titled part of the report: text, tables and figures, in order."""

    title: str
    blocks: list[Block] = field(default_factory=list)

    def note(self, text: str, warning: bool = False) -> None:
        self.blocks.append(Note(text, warning))

    def add(self, block: Table | Figure) -> None:
        self.blocks.append(block)


@dataclass
class Document:
    """A whole report: a title, a few lines that say what it covers, and its sections."""

    title: str
    lead: list[str]
    sections: list[Section]

    def tables(self) -> list[Table]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, Table)]

    def figures(self) -> list[Figure]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, Figure)]


# -- cells ----------------------------------------------------------------------------------------


def display_cell(value: Any) -> str:
    """A cell as a reader sees it: 4 significant digits, empty for missing values."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if value == int(value) and abs(value) < 1e6:
            return str(int(value))
        return f"{value:.4g}"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def table_csv(table: Table) -> str:
    """The table as CSV with full precision (empty cells for missing values)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow(["" if v is None else repr(v) if isinstance(v, float) else v for v in row])
    return buf.getvalue()


# -- markdown -------------------------------------------------------------------------------------


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _md_table(table: Table) -> list[str]:
    lines = ["| " + " | ".join(_md_escape(c) for c in table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(_md_escape(display_cell(v)) for v in row) + " |" for row in table.rows]
    return lines


def _source(table: Table) -> str:
    return f" (`isosweep query @{table.source}`)" if table.source else ""


def to_markdown(doc: Document) -> str:
    """The report as markdown; figures and CSV files are referenced by relative path."""
    out = [f"# {doc.title}", ""]
    for line in doc.lead:
        out += [line, ""]
    if len(doc.sections) > 1:
        out += ["Contents: " + " · ".join(s.title for s in doc.sections), ""]
    for section in doc.sections:
        out += [f"## {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, Note):
                out += [("**Missing:** " if block.warning else "") + block.text, ""]
            elif isinstance(block, Table):
                out += [f"**{block.caption}** ([CSV]({TABLES_DIR}/{block.name}.csv)){_source(block)}", ""]
                out += (_md_table(block) if block.rows else ["(no rows)"]) + [""]
            else:
                out += [f"![{block.caption}]({FIGURES_DIR}/{block.name}.png)", "", f"*{block.caption}*", ""]
    return "\n".join(out).rstrip() + "\n"


# -- HTML -----------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1300px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ddd; padding: 2px 8px; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
caption { caption-side: top; text-align: left; font-weight: 600; padding: 4px 0; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #444; }
p.missing { background: #fff4e5; border-left: 4px solid #e08a00; padding: 6px 10px; }
code { background: #f4f4f4; padding: 0 3px; }
nav a { margin-right: 1em; }
details { margin: 0.5em 0 1.5em; } summary { cursor: pointer; font-weight: 600; font-size: 0.9em; }
"""


def _anchor(i: int) -> str:
    return f"s{i + 1}"


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(display_cell(v))}</td>" for v in row) + "</tr>" for row in table.rows
    )
    source = f" <code>isosweep query @{html.escape(table.source)}</code>" if table.source else ""
    caption = f"<caption>{html.escape(table.caption)}{source}</caption>"
    if not table.rows:
        body = f'<tr><td colspan="{len(table.columns)}">(no rows)</td></tr>'
    element = (
        f'<table id="t-{html.escape(table.name)}">{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    )
    if table.fold_above and len(table.rows) > table.fold_above:
        return (
            f"<details><summary>{html.escape(table.caption)} ({len(table.rows)} rows; click to show)</summary>"
            f"{element}</details>"
        )
    return element


def _html_figure(figure: Figure) -> str:
    data = base64.b64encode(figure.png).decode("ascii")
    caption = html.escape(figure.caption)
    return (
        f'<figure id="f-{html.escape(figure.name)}"><img src="data:image/png;base64,{data}" '
        f'alt="{caption}"><figcaption>{caption}</figcaption></figure>'
    )


def to_html(doc: Document) -> str:
    """The report as one self-contained HTML page."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(doc.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(doc.title)}</h1>",
    ]
    parts += [f"<p>{html.escape(line)}</p>" for line in doc.lead]
    if len(doc.sections) > 1:
        parts.append(
            "<nav>"
            + "".join(f'<a href="#{_anchor(i)}">{html.escape(s.title)}</a>' for i, s in enumerate(doc.sections))
            + "</nav>"
        )
    for i, section in enumerate(doc.sections):
        parts.append(f'<section id="{_anchor(i)}"><h2>{html.escape(section.title)}</h2>')
        for block in section.blocks:
            if isinstance(block, Note):
                cls = ' class="missing"' if block.warning else ""
                prefix = "<strong>Missing:</strong> " if block.warning else ""
                parts.append(f"<p{cls}>{prefix}{html.escape(block.text)}</p>")
            elif isinstance(block, Table):
                parts.append(_html_table(block))
            else:
                parts.append(_html_figure(block))
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def check_unique_names(doc: Document) -> None:
    """Raise ValueError when two tables or two figures share a file name."""
    for kind, names in (("table", [t.name for t in doc.tables()]), ("figure", [f.name for f in doc.figures()])):
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise ValueError(f"two {kind}s are named {name!r}")
            seen.add(name)


def plain_rows(rows: Sequence[Sequence[Any]]) -> tuple[tuple[Any, ...], ...]:
    """Rows as tuples of plain Python values (NumPy scalars converted)."""

    def plain(v: Any) -> Any:
        if v is pd.NA:  # the missing value of pandas' nullable columns (integers with a NULL)
            return None
        if hasattr(v, "item") and not isinstance(v, (str, bytes)):
            v = v.item()
        if isinstance(v, float) and math.isnan(v):
            return None
        return v

    return tuple(tuple(plain(v) for v in row) for row in rows)


def frame_table(
    name: str, caption: str, df: pd.DataFrame, columns: Sequence[str] | None, source: str, fold_above: int = 0
) -> Table:
    """A table of the DataFrame's ``columns`` (those it has, in that order; None: all of them)."""
    present = [c for c in (columns if columns is not None else df.columns) if c in df.columns]
    return Table(name, caption, tuple(present), plain_rows(df[present].itertuples(index=False)), source, fold_above)
