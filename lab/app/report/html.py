"""The report as one self-contained HTML page (report.html): the same blocks as report.md, with
the figures embedded as base64 PNG and the style inline, so the file opens anywhere with nothing
else beside it — only the links to the run archives are relative paths."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from lab.app.report.document import Block, Bullets, Heading, Image, Paragraph, Quote, Table

REPORT_HTML_NAME = "report.html"

STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1400px;
       padding: 0 1.5em; color: #1b1f23; line-height: 1.45; }
h1 { border-bottom: 2px solid #d0d7de; padding-bottom: .3em; }
h2 { border-bottom: 1px solid #d0d7de; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .8em 0 1.2em; font-size: 0.9em; }
th, td { border: 1px solid #d0d7de; padding: .3em .6em; text-align: left; vertical-align: top; }
th { background: #f3f5f7; }
tr:nth-child(even) td { background: #fafbfc; }
table.summary td:nth-child(2), table.summary td:nth-child(3), table.summary td:nth-child(4),
table.summary td:nth-child(6), table.results td:nth-child(4),
table.results td:nth-child(5) { text-align: right; white-space: nowrap; }
table.results td:nth-child(2) { text-align: right; }
table.summary td:nth-child(5) { min-width: 14em; }
.table-wrap { overflow-x: auto; }
tr.flagged td { background: #fff4e5 !important; }
code { font-family: SFMono-Regular, Consolas, monospace; font-size: .92em; background: #f3f5f7;
       padding: .05em .3em; border-radius: 3px; }
blockquote { border-left: 4px solid #d0d7de; margin: .8em 0; padding: .2em 1em; color: #57606a; }
figure { margin: 1em 0 1.6em; }
figure img { max-width: 100%; height: auto; border: 1px solid #d0d7de; }
figcaption { color: #57606a; font-size: .9em; margin-top: .3em; }
"""

_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")


def run_anchor(run_id: str) -> str:
    """The id of the report's section showing run `run_id` (`report.html#run-<run_id>`): stable,
    so a link to a run's section survives the report being rewritten after every run."""
    return "run-" + re.sub(r"[^A-Za-z0-9_.:-]", "_", run_id)


def inline(text: str) -> str:
    """`code`, **bold** and [text](href) as HTML; everything else escaped (code spans verbatim)."""
    parts = _CODE.split(text)
    out = []
    for k, part in enumerate(parts):
        if k % 2:
            out.append(f"<code>{html.escape(part)}</code>")
            continue
        escaped = html.escape(part, quote=False)
        escaped = _BOLD.sub(r"<strong>\1</strong>", escaped)
        escaped = _LINK.sub(lambda m: f'<a href="{html.escape(m.group(2))}">{m.group(1)}</a>', escaped)
        out.append(escaped)
    joined = "".join(out)
    # A link whose text is a code span: [`x`](y) was split around the code span; join it again.
    return re.sub(r"\[(<code>[^<]*</code>)\]\(([^)\s]+)\)",
                  lambda m: f'<a href="{html.escape(m.group(2))}">{m.group(1)}</a>', joined)


def _image(block: Image) -> str:
    try:
        data = base64.b64encode(block.path.read_bytes()).decode("ascii")
        img = f'<img src="data:image/png;base64,{data}" alt="{html.escape(block.title)}">'
    except OSError as exc:
        img = f"<p><strong>figure missing:</strong> {html.escape(str(exc))}</p>"
    return (f"<h3>{inline(block.title)}</h3>\n<figure>{img}<figcaption>{inline(block.caption)}</figcaption>"
            "</figure>")


def _table(block: Table) -> str:
    head = "".join(f"<th>{inline(h)}</th>" for h in block.header)
    rows = []
    for k, row in enumerate(block.rows):
        flagged = ' class="flagged"' if k in block.flagged_rows else ""
        rows.append(f"<tr{flagged}>" + "".join(f"<td>{inline(c)}</td>" for c in row) + "</tr>")
    css = f' class="{block.css_class}"' if block.css_class else ""
    return (f'<div class="table-wrap"><table{css}>\n<thead><tr>{head}</tr></thead>\n<tbody>\n' + "\n".join(rows)
            + "\n</tbody></table></div>")


def to_html(blocks: list[Block], title: str) -> str:
    body = []
    for block in blocks:
        if isinstance(block, Heading):
            anchor = f' id="{html.escape(block.anchor)}"' if block.anchor else ""
            body.append(f"<h{block.level}{anchor}>{inline(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            body.append(f"<p>{inline(block.text)}</p>")
        elif isinstance(block, Quote):
            body.append(f"<blockquote>{inline(block.text)}</blockquote>")
        elif isinstance(block, Bullets):
            body.append("<ul>" + "".join(f"<li>{inline(item)}</li>" for item in block.items) + "</ul>")
        elif isinstance(block, Table):
            body.append(_table(block))
        elif isinstance(block, Image):
            body.append(_image(block))
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


def write_atomically(path: Path, text: str) -> None:
    """`text` into `path` through a temporary file beside it (no half file on a full disk)."""
    import os

    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)

