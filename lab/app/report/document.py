"""The report's content as a list of blocks, and its Markdown rendering (html.py renders the same
blocks as one self-contained HTML page): one source of what the report says, two renderings.

Text inside blocks uses three inline marks that both renderings understand: `code`, **bold** and
[text](relative/link).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    anchor: str = ""                          # HTML only: the heading's id (a link target), if any


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Quote:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    css_class: str = ""                       # HTML only: "summary", "results"
    flagged_rows: frozenset[int] = field(default_factory=frozenset)   # HTML only: rows to highlight


@dataclass(frozen=True)
class Image:
    path: Path
    title: str
    caption: str


Block = Heading | Paragraph | Quote | Bullets | Table | Image


def markdown_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def relative(path: Path, base: Path) -> str:
    """`path` relative to the report's directory (as given if it lies elsewhere)."""
    try:
        return str(Path(path).resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def to_markdown(blocks: list[Block], out_dir: Path) -> str:
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            lines += ["#" * block.level + " " + block.text, ""]
        elif isinstance(block, Paragraph):
            lines += [block.text, ""]
        elif isinstance(block, Quote):
            lines += [f"> {block.text}", ""]
        elif isinstance(block, Bullets):
            lines += [f"- {item}" for item in block.items] + [""]
        elif isinstance(block, Table):
            lines.append("| " + " | ".join(markdown_cell(h) for h in block.header) + " |")
            lines.append("|" + "---|" * len(block.header))
            lines += ["| " + " | ".join(markdown_cell(c) for c in row) + " |" for row in block.rows]
            lines.append("")
        elif isinstance(block, Image):
            lines += [f"### {block.title}", "", f"![{block.title}]({relative(block.path, out_dir)})", "",
                      block.caption, ""]
    return "\n".join(lines)
