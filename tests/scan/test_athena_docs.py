"""The Athena policy in deploy/README.md grants what `scan --athena` and its messages ask for."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _policy() -> dict:
    text = (ROOT / "deploy" / "README.md").read_text()
    section = text.split("## Athena scan (`scan --athena`)", 1)[1].split("\n## ", 1)[0]
    return json.loads(re.search(r"```json\n(.*?)```", section, re.S).group(1))


def test_the_policy_grants_every_permission_the_error_messages_name():
    granted = set()
    for statement in _policy()["Statement"]:
        actions = statement["Action"]
        granted.update([actions] if isinstance(actions, str) else actions)
    named = set()
    for module in ("bot/aws/athena.py", "bot/scan/athena_scan.py"):
        named.update(re.findall(r"\b(athena:[A-Za-z]+|glue:[A-Za-z]+|s3:[A-Za-z]+)", (ROOT / module).read_text()))
    assert named and named <= granted, named - granted


def test_the_readme_documents_the_flags_and_links_the_policy():
    readme = (ROOT / "README.md").read_text()
    for text in (
        "--athena [WORKGROUP/]DATABASE.TABLE",
        "--max-scan-gb",
        "rootcheck athena-table --bucket",
        "**Which scan to use.**",
        "deploy/README.md#athena-scan-scan---athena",
    ):
        assert text in readme, text
