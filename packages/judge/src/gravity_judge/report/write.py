"""Writing the report files into a directory (batch) or the artifact store (service): report.json, .md and
.html from the report, and judgments.jsonl (every judgment) from the run when it is given."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gravity_core.artifacts import ArtifactStore
from gravity_core.names import GRAVITY
from gravity_judge.drilldown import JUDGMENTS_FILE, judgments_jsonl, records
from gravity_judge.evaluate import EvaluationRun
from gravity_judge.report.html import render_html
from gravity_judge.report.markdown import render_markdown
from gravity_judge.report.plots import render_figures

REPORT_FILES = ("report.json", "report.md", "report.html")


def report_files(
    report: dict[str, Any], focus: str = GRAVITY, run: EvaluationRun | None = None
) -> dict[str, bytes]:
    figures = render_figures(report, focus)
    files = {
        "report.json": (json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode(
            "utf-8"
        ),
        "report.md": render_markdown(report).encode("utf-8"),
        "report.html": render_html(report, figures).encode("utf-8"),
    }
    if run is not None:
        files[JUDGMENTS_FILE] = judgments_jsonl(list(records(run)))
    return files


def write_report(
    report: dict[str, Any], out_dir: str | Path, focus: str = GRAVITY, run: EvaluationRun | None = None
) -> dict[str, Path]:
    """Write each file atomically into ``out_dir`` (other files there are left alone)."""
    store = ArtifactStore(out_dir)
    written = {}
    for name, data in report_files(report, focus, run).items():
        store.write_bytes(name, data)
        written[name] = store.path(name)
    return written
