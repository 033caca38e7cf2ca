"""Fixtures of the live-sweep tests."""

from __future__ import annotations

import pytest

from tests.fakes.aws_standin import AwsStandIn


@pytest.fixture
def hub_env(monkeypatch):
    """Point boto3 in this process at a fresh stand-in (options as AwsStandIn's); returns it."""

    def make(**options) -> AwsStandIn:
        server = AwsStandIn(**options)
        server.start()
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        made.append(server)
        return server

    made: list[AwsStandIn] = []
    yield make
    for server in made:
        server.stop()
