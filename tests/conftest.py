"""Shared fixtures: the corpus, the installed `rootcheck`, and a runner for it."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
CORPUS = FIXTURES / "corpus"
BIN = Path(sys.executable).parent
logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto server's per-request lines


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
        return subprocess.run(
            [rootcheck_bin, *args], input=stdin, capture_output=True, env=full_env, cwd=tmp_path, timeout=timeout
        )

    return run


def json_lines(output: bytes) -> list[dict]:
    return [json.loads(line) for line in output.decode().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def moto_server():
    """One moto server (STS, Organizations, S3, SQS) for the whole session, on 127.0.0.1."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def standin():
    """The loopback CloudTrail/IAM/STS/Account stand-in; tests add accounts with unique ids."""
    from tests.fakes.aws_standin import AwsStandIn

    with AwsStandIn() as server:
        yield server


_account_ids = iter(range(300000000001, 399999999999))


def new_account_id() -> str:
    """A fresh 12-digit id, so tests sharing the session stand-in never collide."""
    return str(next(_account_ids))


@pytest.fixture(scope="session")
def fake_slack():
    """The stateful fake Slack Web API; tests add channels with unique ids as they need them."""
    from tests.fakes.slack_api import FakeSlack
    from tests.harness import CHANNEL

    with FakeSlack() as fake:
        fake.add_channel(CHANNEL, members=["U0ADMIN", "U0MEMBER"])
        yield fake
