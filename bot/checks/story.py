"""An alert in words: its title and the lines that tell its story, as plain text.

PURE. Slack (escaped mrkdwn) and `rootcheck scan --format table` show the same words, so the
channel and the terminal never disagree about what happened. Everything here may contain text
from AWS: callers escape it for wherever it goes.
"""

from __future__ import annotations

from bot.models import CREDENTIALS, FAILURES, GUESSING_COUNT, HIGH_RISK, SESSION, Alert, Finding, Summary

TOP_EVENTS = 5
NAME_CHARS = 64  # an event name longer than any AWS uses is cut, so the line always says how many more
IPS_SHOWN = 5
RISKY_SHOWN = 5
TITLE = {
    "root_console_login": "Root console sign-in",
    "root_console_login_failed": "Failed root console sign-in",
    "root_activity": "Root user activity",
    "root_password_used": "Root password used",
    "root_access_key_active": "Root access key is active",
    "root_mfa_disabled": "Root user has no MFA",
    "coverage_gap": "Account could not be checked",
}


def title(alert: Alert, opener: Finding | None) -> str:
    if alert.grouping == SESSION:
        mfa = {True: "with MFA", False: "without MFA", None: "(MFA unknown)"}[opener.mfa_used if opener else None]
        return f"Root console sign-in {mfa}"
    if alert.grouping == FAILURES:
        what = "Failed root sign-in" if alert.summary.count == 1 else f"{alert.summary.count} failed root sign-ins"
        return what + (": possible password guessing" if alert.summary.guessing() else "")
    if alert.grouping == HIGH_RISK:
        return f"High-risk root call: {opener.event_name if opener else '?'}"
    if alert.grouping == CREDENTIALS:
        label = credentials_label(alert)
        if "high_risk" in alert.escalations and opener is not None:
            return f"{label}: high-risk call {opener.event_name}"
        return label
    return TITLE.get(alert.kind, alert.kind)


def credentials_label(alert: Alert) -> str:
    """What root credentials these are: a root access key, temporary credentials, a console session."""
    key = alert.key or ""
    if key.startswith("AKIA"):
        return "Root access key in use"
    if alert.console:
        return "Root console session, sign-in not in view"
    if key.startswith("ASIA"):
        return "Temporary root credentials in use"
    return "Root credentials in use, no sign-in in view"


def story(alert: Alert) -> list[tuple[str, str]]:
    """(label, text) lines of what the alert's findings add up to; empty for a single finding."""
    s = alert.summary
    lines: list[tuple[str, str]] = []
    if alert.grouping == FAILURES:
        lines.append(("Failed sign-ins", failures_line(s)))
        lines.append(("Addresses", addresses(s)))
    if alert.grouping in (SESSION, CREDENTIALS):
        if alert.grouping == CREDENTIALS and alert.key:
            lines.append(("Access key" if alert.key in s.keys else "Source IP (no access key)", alert.key))
        lines.append(("Calls", calls_line(s)))
        if s.calls:
            lines.append(("Most frequent", events_line(s)))
            lines.append(("Regions", ", ".join(s.regions) or "unknown"))
            lines.append(("First and last call", span(s.first_call, s.last_call)))
        if s.risky:
            lines.append(("High-risk calls", risky_line(s)))
        if alert.grouping == SESSION and s.failures_before:
            lines.append(
                (
                    "Before",
                    f"After {s.failures_before} failed sign-in(s) in the hour before"
                    + (" (possible password guessing)" if s.failures_before >= GUESSING_COUNT else ""),
                )
            )
    return lines


def calls_line(s: Summary) -> str:
    if not s.calls:
        return "no calls seen yet"
    writes = s.calls - s.read_only
    failed = f", {s.failed_calls} failed" if s.failed_calls else ""
    return f"{s.calls} call(s): {s.read_only} read-only, {writes} write(s){failed}"


def events_line(s: Summary) -> str:
    top = s.top_events(TOP_EVENTS)
    more = len(s.events) - len(top)
    text = ", ".join(f"{_cut(name)} ×{count}" for name, count in top)
    return text + (f", +{more} more event name(s)" if more > 0 else "")


def span(first: str | None, last: str | None) -> str:
    """`2026-11-20 10:01 to 10:07 UTC`; the date is written twice only when it changes."""
    if not first:
        return "time not recorded"
    if not last or _hm(first) == _hm(last):
        return f"{_hm(first)} UTC"
    end = _hm(last)[11:] if first[:10] == last[:10] else _hm(last)
    return f"{_hm(first)} to {end} UTC"


def risky_line(s: Summary) -> str:
    shown = [
        f"{_cut(r['event_name'])} at {_hm(r['event_time'])} UTC ({_cut(r['region'] or '?')})"
        for r in s.risky[:RISKY_SHOWN]
    ]
    more = len(s.risky) - len(shown) + s.more_risky
    return "; ".join(shown) + (f"; +{more} more" if more > 0 else "")


def failures_line(s: Summary) -> str:
    verdict = (
        f"{GUESSING_COUNT} or more within 10 minutes: possible password guessing"
        if s.guessing()
        else f"under the threshold of {GUESSING_COUNT} within 10 minutes"
    )
    return f"{s.count}, {span(s.first, s.last)}; {verdict}"


def addresses(s: Summary) -> str:
    shown = s.ips[:IPS_SHOWN]
    more = len(s.ips) - len(shown) + s.more_ips
    return ", ".join(shown) + (f" +{more} more" if more > 0 else "") if shown else "unknown"


def _cut(text: str) -> str:
    return text if len(text) <= NAME_CHARS else text[: NAME_CHARS - 1] + "…"


def _hm(iso: str | None) -> str:
    """`2026-11-20 10:07` from `2026-11-20T10:07:00Z`."""
    return iso[:16].replace("T", " ") if iso else "?"
