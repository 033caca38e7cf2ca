"""Shared by every benchmark: describe the machine, and rewrite one section of docs/benchmarks.md."""

from __future__ import annotations

import os
import platform
import re
from datetime import UTC, datetime
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
INTRO = (
    "# Benchmarks\n\nMeasured performance of rootcheck. Each section names the command that produced it "
    "(run from the repository root after the README's setup), the machine and the date.\n"
)


def cpu_model(default: str = "unknown") -> str:
    """The CPU's model name from /proc/cpuinfo, or `default` where there is none."""
    try:
        match = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
    except OSError:
        return default
    return match.group(1).strip() if match else default


def host() -> dict:
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "date": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
    }


def machine() -> str:
    h = host()
    return f"Machine: {h['nproc']} CPU(s), {h['cpu']}, Python {h['python']}; measured {h['date']}."


def write_section(title: str, body: str, path: Path = DOC) -> None:
    """Replace the `## title` section (or append it), leaving every other section alone."""
    text = path.read_text() if path.exists() else INTRO
    heading = f"## {title}"
    section = f"{heading}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(text):
        text = pattern.sub(lambda m: section + ("\n" if m.end() < len(text) else ""), text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def write_section_keeping_notes(title: str, body: str, path: Path = DOC) -> None:
    """`write_section`, keeping the hand-written `### ` subsections under the generated figures, so that
    the analysis survives a re-run."""
    notes = ""
    if path.exists():
        match = re.search(rf"^## {re.escape(title)}\n.*?^(### .*?)(?=^## |\Z)", path.read_text(), re.M | re.S)
        notes = match.group(1).strip() if match else ""
    write_section(title, body + ("\n\n" + notes if notes else ""), path)
