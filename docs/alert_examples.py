"""Render the README's example alerts with the real grouping and builders: a root session (open,
then acknowledged), its thread summary, a burst of failed sign-ins, and "was this you?" (the direct
message to an owner, the alert while it waits, after Yes with a reason, and after No).

    .venv/bin/python docs/alert_examples.py     # rewrites docs/alert-*.json and docs/alerts.md

The session is the day in `tests/fixtures/corpus/sessions/day.jsonl` (a sign-in after three failed
ones, four calls in two Regions, one of them `StopLogging`). tests/test_docs.py checks the
committed files match what the code renders today.
"""

from __future__ import annotations

import json
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.checks.cloudtrail import check_record
from bot.checks.grouping import group
from bot.config import DEFAULT_REMEDIATION_URL
from bot.models import AlertRecord, Finding
from bot.slack.blocks import render_alert, render_question, render_summary

HERE = Path(__file__).parent
DAY = HERE.parent / "tests" / "fixtures" / "corpus" / "sessions" / "day.jsonl"
NOW = datetime(2026, 11, 20, 10, 12, tzinfo=UTC)
ACKED_AT = datetime(2026, 11, 20, 10, 21, tzinfo=UTC)
ASKED_AT = datetime(2026, 11, 20, 10, 12, 5, tzinfo=UTC)
ANSWERED_AT = datetime(2026, 11, 20, 10, 14, tzinfo=UTC)
PERMALINK = "https://example.slack.com/archives/C0ALERTS/p1763632800000100"
NAMES = {"111122223333": "prod-payments"}


def _findings() -> list[Finding]:
    records = [json.loads(line) for line in DAY.read_text().splitlines() if line.strip()]
    return [f for f in (check_record(r) for r in records) if f is not None]


def _failure_burst() -> list[Finding]:
    """Twelve failed sign-ins from four addresses in six minutes: possible password guessing."""
    template = json.loads(DAY.read_text().splitlines()[0])
    burst = []
    for n in range(12):
        record = dict(
            template,
            eventID=f"burst-{n}",
            sourceIPAddress=f"198.51.100.{60 + n % 4}",
            eventTime=(datetime(2026, 11, 20, 9, 0, tzinfo=UTC) + timedelta(seconds=30 * n)).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
        )
        burst.append(check_record(record))
    return burst


def _record(findings: list[Finding], event_id: str, **state) -> AlertRecord:
    opener = next(f for f in findings if f.event_id == event_id)
    alert = group(findings, []).alerts[opener.id]
    state.setdefault("severity", alert.severity())
    return AlertRecord(alert=alert, opener=opener, state="posted", channel="C0ALERTS", ts="1763632800.000100", **state)


def states() -> dict[str, dict]:
    day = _findings()
    session = _record(day, "s-login")
    acked = _record(day, "s-login", acked_by="U0ALICE", acked_at=ACKED_AT)
    failures = _record(_failure_burst(), "burst-0")
    asked = {
        "owners_asked": ("U0ALICE", "U0BOB"),
        "asked_at": ASKED_AT,
        "confirm_deadline": ASKED_AT + timedelta(minutes=15),
    }
    waiting = _record(day, "s-login", **asked)
    confirmed = _record(
        day,
        "s-login",
        **asked,
        answer="yes",
        answered_by="U0ALICE",
        answered_at=ANSWERED_AT,
        answer_reason="Closing the sandbox account, CHG-1234",
        acked_by="U0ALICE",
        acked_at=ANSWERED_AT,
    )
    denied = _record(
        day,
        "s-login",
        **asked,
        answer="no",
        answered_by="U0BOB",
        answered_at=ANSWERED_AT,
        escalated_at=ANSWERED_AT,
        severity="critical",
    )
    messages = {
        "session-open": render_alert(session, NAMES.get, DEFAULT_REMEDIATION_URL, NOW),
        "session-acked": render_alert(acked, NAMES.get, DEFAULT_REMEDIATION_URL, NOW),
        "session-summary": render_summary(session, NOW),
        "failures-open": render_alert(failures, NAMES.get, DEFAULT_REMEDIATION_URL, NOW),
        "question": render_question(waiting, "U0ALICE", NAMES.get, PERMALINK),
        "session-asked": render_alert(waiting, NAMES.get, DEFAULT_REMEDIATION_URL, NOW),
        "session-confirmed": render_alert(confirmed, NAMES.get, DEFAULT_REMEDIATION_URL, NOW),
        "session-denied": render_alert(denied, NAMES.get, DEFAULT_REMEDIATION_URL, NOW),
    }
    return {name: {"text": m.text, "blocks": m.blocks, "metadata": m.metadata} for name, m in messages.items()}


def builder_url(message: dict) -> str:
    return "https://app.slack.com/block-kit-builder#" + urllib.parse.quote(json.dumps({"blocks": message["blocks"]}))


def main() -> None:
    lines = [
        "# What an alert looks like",
        "",
        "Rendered by `bot/slack/blocks.py` from the day in `tests/fixtures/corpus/sessions/day.jsonl` "
        "(regenerate with `.venv/bin/python docs/alert_examples.py`).",
        "",
    ]
    for old in HERE.glob("alert-*.json"):
        old.unlink()
    for name, message in states().items():
        (HERE / f"alert-{name}.json").write_text(json.dumps(message, indent=2) + "\n")
        lines += [
            f"- **{name}**: [`alert-{name}.json`](alert-{name}.json) · "
            f"[open in Block Kit Builder]({builder_url(message)})"
        ]
    (HERE / "alerts.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
