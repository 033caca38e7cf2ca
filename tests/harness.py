"""Run the real `rootcheck serve` process against the loopback fakes, as an operator would.

with Serve(env) as bot:          # starts the installed console script, waits for /healthz
    bot.command("status", user="U0ADMIN")   # a signed slash command
    bot.click(finding_id, ts, user="U0ADMIN")  # a signed Acknowledge click
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

SIGNING_SECRET = "test-signing-secret-9f2c"
BOT_TOKEN = "xoxb-test-token"
CHANNEL = "C0ALERTS"
BIN = Path(sys.executable).parent / "rootcheck"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_env(slack, aws_env: dict, db_url: str, **extra: str) -> dict:
    """The environment of a `serve` process pointed at the fake Slack and an AWS stand-in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ROOTCHECK_", "SLACK_"))}
    env.update(aws_env)
    env.update(
        {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "ROOTCHECK_CHANNEL": CHANNEL,
            "ROOTCHECK_SLACK_API_URL": slack.api_url,
            "ROOTCHECK_DATABASE_URL": db_url,
            "ROOTCHECK_HOST": "127.0.0.1",
            "PORT": str(free_port()),
            "ROOTCHECK_SWEEP_INTERVAL": "5s",
            "ROOTCHECK_LOG_FORMAT": "json",
        }
    )
    env.update(extra)
    return env


def sign(body: bytes, timestamp: str | None = None, secret: str = SIGNING_SECRET) -> dict:
    timestamp = timestamp or str(int(time.time()))
    digest = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


class Serve:
    def __init__(self, env: dict, log_path: Path | None = None, binary: Path | None = None):
        self.env = env
        self.binary = binary or BIN  # another release's console script (a benchmark's "before")
        self.port = int(env["PORT"])
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Serve:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, wait: bool = True) -> Serve:
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen([str(self.binary), "serve"], env=self.env, stdout=out, stderr=subprocess.STDOUT)
        if wait:
            self.wait_listening()
        return self

    def wait_listening(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"rootcheck serve exited with {self.process.returncode}")
            try:
                self.get("/healthz")
                return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("rootcheck serve did not start listening")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.base + path, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def health(self) -> tuple[int, dict]:
        status, body = self.get("/healthz")
        return status, json.loads(body or b"{}")

    def post(self, body: bytes, headers: dict) -> tuple[int, bytes, float]:
        request = urllib.request.Request(self.base + "/slack/events", data=body, headers=headers)
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read(), time.monotonic() - started
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), time.monotonic() - started

    def command(
        self, text: str, user: str, response_url: str, channel: str = CHANNEL, headers: dict | None = None
    ) -> tuple[int, bytes, float]:
        body = urllib.parse.urlencode(
            {
                "command": "/rootcheck",
                "text": text,
                "user_id": user,
                "channel_id": channel,
                "team_id": "T0TEST",
                "response_url": response_url,
                "trigger_id": "1.2.3",
            }
        ).encode()
        return self.post(body, headers or sign(body))

    def click(
        self,
        value: str,
        ts: str,
        user: str,
        action_id: str = "rootcheck_ack",
        channel: str = CHANNEL,
        headers: dict | None = None,
    ) -> tuple[int, bytes, float]:
        payload = {
            "type": "block_actions",
            "user": {"id": user},
            "team": {"id": "T0TEST"},
            "channel": {"id": channel},
            "container": {"type": "message", "message_ts": ts, "channel_id": channel},
            "message": {"ts": ts},
            "trigger_id": "1.2.3",
            "response_url": "http://127.0.0.1:9/unused",
            "actions": [{"action_id": action_id, "value": value, "type": "button", "block_id": "b"}],
        }
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        return self.post(body, headers or sign(body))


def wait_for(predicate, timeout: float = 15.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(interval)
