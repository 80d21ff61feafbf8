"""The evaluation report: report.json (every number), report.md (the tables), report.html (tables + plots)."""

from gravity_judge.report.build import build_report
from gravity_judge.report.html import render_html
from gravity_judge.report.markdown import render_markdown
from gravity_judge.report.write import REPORT_FILES, report_files, write_report

__all__ = ["REPORT_FILES", "build_report", "render_html", "render_markdown", "report_files", "write_report"]
