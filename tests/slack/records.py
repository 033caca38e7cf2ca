"""Alert records built from real findings with the real grouping, as the store would hold them."""

from __future__ import annotations

from bot.checks.grouping import group
from bot.models import DIGEST, Alert, AlertRecord, Finding


def record_of(findings: list[Finding], opener: Finding | None = None, **state) -> AlertRecord:
    """The alert `opener` (the first finding by default) opens over `findings`, posted in C0ALERTS."""
    opener = opener or findings[0]
    alert = group(findings, []).alerts[opener.id]
    expected = bool(state.get("expected_by"))
    state.setdefault("severity", alert.severity(expected=expected))
    return AlertRecord(
        alert=alert,
        opener=opener,
        **{"state": "posted", "target": "C0ALERTS", "channel": "C0ALERTS", "ts": "1700000000.000100", **state},
    )


def digest_of(members: list[Finding], digest_id: str = "digest-123", **state) -> AlertRecord:
    alert = Alert(id=digest_id, account_id=None, kind=members[0].kind, grouping=DIGEST, start=None)
    for member in members:
        alert.summary.add(member)
    return AlertRecord(
        alert=alert,
        opener=None,
        **{
            "state": "posted",
            "target": "C0ALERTS",
            "channel": "C0ALERTS",
            "ts": "1700000000.000200",
            "severity": alert.severity(),
            **state,
        },
    )
