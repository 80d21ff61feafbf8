"""report.md. Every piece of text is escaped: a description, method name, country or genre holding
``|``, ``*``, ``<script>`` or a newline cannot break a table or inject Markdown or HTML."""

from __future__ import annotations

import html
import re
from typing import Any

from gravity_judge.report.tables import Table, is_numeric, sections

# Characters with inline meaning in (GitHub-flavoured) Markdown: code, emphasis, strike-through, table
# cells, math. HTML's <, > and & become entities first (no tag, no autolink); a newline would end a table
# row. A link or image needs "](" (reference definitions need a line start, which escaped text never
# has), so that pair is broken instead of escaping every bracket of "12.5 [10.0, 15.0]".
_MARKDOWN = re.compile(r"([\\`*_|~$])")


def escape(text: str) -> str:
    """``text`` as literal Markdown: one line, HTML entities for <, > and &, Markdown specials
    backslash-escaped."""
    flat = " ".join(str(text).split())
    return _MARKDOWN.sub(r"\\\1", html.escape(flat, quote=False)).replace("](", "]\\(")


def table_markdown(table: Table) -> str:
    lines = []
    if table.caption:
        lines += [f"**{escape(table.caption)}**", ""]
    lines.append("| " + " | ".join(escape(h) for h in table.headers) + " |")
    numeric = [i > 0 and all(is_numeric(row[i]) for row in table.rows) for i in range(len(table.headers))]
    lines.append("|" + "|".join("---:" if right else "---" for right in numeric) + "|")
    lines += ["| " + " | ".join(escape(c) for c in row) + " |" for row in table.rows]
    return "\n".join(lines)


def render_markdown(report: dict[str, Any]) -> str:
    parts = ["# GRAVITY evaluation report", ""]
    for section in sections(report):
        parts += ["#" * section.level + " " + escape(section.title), ""]
        for paragraph in section.paragraphs:
            parts += [escape(paragraph), ""]
        for table in section.tables:
            parts += [table_markdown(table), ""]
    return "\n".join(parts).rstrip() + "\n"
