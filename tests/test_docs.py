"""The documentation shows what the code does today."""

from __future__ import annotations

import json
import re
import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_example_alerts_match_the_renderer():
    examples = runpy.run_path(str(ROOT / "docs" / "alert_examples.py"))
    for name, message in examples["states"]().items():
        assert json.loads((ROOT / "docs" / f"alert-{name}.json").read_text()) == message, name


def test_readme_opens_with_the_two_commands_and_ci_runs_the_second():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^```bash\n(.*?)```", readme, re.S | re.M)[0]
    lines = [line for line in commands.splitlines() if line and not line.startswith("#")]
    assert len(lines) == 2 and "rootcheck scan --events examples/" in lines[0]
    assert lines[1] in (ROOT / ".ci" / "run").read_text()
