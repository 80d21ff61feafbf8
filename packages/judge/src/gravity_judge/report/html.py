"""report.html: the Markdown report's tables plus the figures, embedded as PNG so the file stands alone.
Every text from the report is HTML-escaped (descriptions and names come from input files)."""

from __future__ import annotations

import base64
from html import escape
from typing import Any

from gravity_judge.report.plots import render_figures
from gravity_judge.report.tables import Table, is_numeric, sections

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }
th:first-child, td:first-child, td.text { text-align: left; }
td.text { max-width: 40rem; }
th { background: #f3f3f3; }
caption { caption-side: top; text-align: left; font-weight: 600; padding: 0.3rem 0; }
figure { margin: 1rem 0 2rem; }
img { max-width: 100%; }
"""


def _cell(text: str) -> str:
    # numbers stay right-aligned; prose (descriptions, reasons) reads left to right
    css = "" if is_numeric(text) else ' class="text"'
    return f"<td{css}>{escape(text)}</td>"


def table_html(table: Table) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in table.headers)
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in table.rows)
    caption = f"<caption>{escape(table.caption)}</caption>" if table.caption else ""
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report: dict[str, Any], figures: dict[str, tuple[str, bytes]] | None = None) -> str:
    """``figures``: name -> (caption, PNG bytes); rendered from the report when not given."""
    figures = render_figures(report) if figures is None else figures
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>GRAVITY evaluation report</title>',
        f"<style>{_STYLE}</style></head><body>",
        "<h1>GRAVITY evaluation report</h1>",
    ]
    for section in sections(report):
        level = min(6, section.level)
        parts.append(f"<h{level}>{escape(section.title)}</h{level}>")
        parts += [f"<p>{escape(p)}</p>" for p in section.paragraphs]
        parts += [table_html(t) for t in section.tables]
        for name in section.figures:
            if name not in figures:
                continue
            caption, png = figures[name]
            data = base64.b64encode(png).decode("ascii")
            parts.append(
                f'<figure id="{escape(name)}"><img alt="{escape(caption)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{escape(caption)}</figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
