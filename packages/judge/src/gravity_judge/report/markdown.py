"""report.md."""

from __future__ import annotations

from typing import Any

from gravity_judge.report.tables import Table, sections


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table_markdown(table: Table) -> str:
    lines = []
    if table.caption:
        lines += [f"**{_cell(table.caption)}**", ""]
    lines.append("| " + " | ".join(_cell(h) for h in table.headers) + " |")
    lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(table.headers))) + "|")
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows]
    return "\n".join(lines)


def render_markdown(report: dict[str, Any]) -> str:
    parts = ["# GRAVITY evaluation report", ""]
    for section in sections(report):
        parts += ["#" * section.level + " " + section.title, ""]
        for paragraph in section.paragraphs:
            parts += [paragraph, ""]
        for table in section.tables:
            parts += [table_markdown(table), ""]
    return "\n".join(parts).rstrip() + "\n"
