"""Render the README's example alert, before and after Acknowledge, with the real builders.

    .venv/bin/python docs/alert_examples.py     # rewrites docs/alert-*.json and docs/alerts.md

tests/test_docs.py checks the committed files match what the code renders today.
"""

from __future__ import annotations

import json
import urllib.parse
from datetime import datetime, timezone
from pathlib import Path

from bot.checks.cloudtrail import check_record
from bot.config import DEFAULT_REMEDIATION_URL
from bot.models import Delivery
from bot.slack.blocks import render_alert

HERE = Path(__file__).parent
RECORD = {
    "eventVersion": "1.08", "eventTime": "2026-11-28T08:15:02Z", "eventSource": "signin.amazonaws.com",
    "eventName": "ConsoleLogin", "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.7",
    "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
    "userIdentity": {"type": "Root", "principalId": "111122223333", "arn": "arn:aws:iam::111122223333:root",
                     "accountId": "111122223333"},
    "responseElements": {"ConsoleLogin": "Success"}, "additionalEventData": {"MFAUsed": "No"},
    "eventID": "7c1a3e52-5d0b-4d1e-9a55-2f9c1f2b8a01", "eventType": "AwsConsoleSignIn",
    "recipientAccountId": "111122223333",
}
NOW = datetime(2026, 11, 28, 8, 27, tzinfo=timezone.utc)
ACKED_AT = datetime(2026, 11, 28, 8, 31, tzinfo=timezone.utc)


def states() -> dict[str, dict]:
    finding = check_record(RECORD)
    open_ = Delivery(id=finding.id, is_digest=False, state="posted", target="C0ALERTS", finding=finding)
    acked = Delivery(id=finding.id, is_digest=False, state="acked", target="C0ALERTS", finding=finding,
                     acked_by="U0ALICE", acked_at=ACKED_AT)
    return {name: {"text": m.text, "blocks": m.blocks, "metadata": m.metadata} for name, m in (
        ("open", render_alert(open_, "prod-payments", DEFAULT_REMEDIATION_URL, NOW)),
        ("acked", render_alert(acked, "prod-payments", DEFAULT_REMEDIATION_URL, NOW)))}


def builder_url(message: dict) -> str:
    return "https://app.slack.com/block-kit-builder#" + urllib.parse.quote(json.dumps({"blocks": message["blocks"]}))


def main() -> None:
    lines = ["# What an alert looks like", "",
             "Rendered by `bot/slack/blocks.py` (regenerate with `.venv/bin/python docs/alert_examples.py`).", ""]
    for name, message in states().items():
        (HERE / f"alert-{name}.json").write_text(json.dumps(message, indent=2) + "\n")
        lines += [f"- **{name}**: [`alert-{name}.json`](alert-{name}.json) · "
                  f"[open in Block Kit Builder]({builder_url(message)})"]
    (HERE / "alerts.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
