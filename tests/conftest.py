"""Shared fixtures: the corpus, the installed `rootcheck`, and a runner for it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
CORPUS = FIXTURES / "corpus"
BIN = Path(sys.executable).parent


def corpus_expectations() -> dict:
    return json.loads((CORPUS / "expected.json").read_text())


@pytest.fixture(scope="session")
def rootcheck_bin() -> str:
    path = BIN / "rootcheck"
    assert path.exists(), f"rootcheck is not installed next to {sys.executable}; run pip install -e '.[dev]'"
    return str(path)


@pytest.fixture
def run_rootcheck(rootcheck_bin, tmp_path):
    """Run the installed console script as a user would; returns the CompletedProcess."""

    def run(*args: str, env: dict | None = None, stdin: bytes | None = None, timeout: float = 60):
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ROOTCHECK_", "SLACK_"))}
        full_env.update({"HOME": str(tmp_path), "NO_COLOR": "1"})
        full_env.update(env or {})
        return subprocess.run([rootcheck_bin, *args], input=stdin, capture_output=True,
                              env=full_env, cwd=tmp_path, timeout=timeout)

    return run


def json_lines(output: bytes) -> list[dict]:
    return [json.loads(line) for line in output.decode().splitlines() if line.strip()]
