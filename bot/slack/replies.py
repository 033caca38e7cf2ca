"""PURE text of `/rootcheck` answers (mrkdwn, escaped), built from plain data."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from bot.checks.story import title
from bot.models import Account, AlertRecord
from bot.slack.escape import mrkdwn

MAX_LINES = 25


def status_text(status: dict[str, Any]) -> str:
    sweep = status.get("last_sweep")
    lines = [f"*rootcheck status* ({'healthy' if status.get('healthy') else 'UNHEALTHY'})"]
    if sweep:
        lines.append(
            f"• Last sweep: finished {_t(sweep['finished_at'])}, {sweep['accounts']} account(s), "
            f"{sweep['failed']} could not be checked, {sweep['findings']} new finding(s)"
        )
    else:
        lines.append("• Last sweep: none finished yet")
    for account in status.get("failing", [])[:MAX_LINES]:
        lines.append(
            f"    – `{account['account_id']}` could not be checked {account['failures']} time(s) in a row: "
            f"{mrkdwn(account['last_error'], 500)}"
        )
    if status.get("sweep_error"):
        lines.append(f"• :warning: Sweeps are failing: {mrkdwn(status['sweep_error'])}")
    lines.append(
        f"• Open alerts: {status.get('open_alerts', 0)}; waiting to be posted: {status.get('pending', 0)}"
        + (
            f"; :warning: {status['failed_alerts']} cannot be posted (see `/rootcheck open`)"
            if status.get("failed_alerts")
            else ""
        )
    )
    for window in status.get("expected", [])[:MAX_LINES]:
        lines.append(
            f"• :calendar: Root use expected in `{window.account_id}` until {_t(window.ends_at)}, announced "
            f"by <@{mrkdwn(window.user_id)}>: {mrkdwn(window.reason)}"
        )
    slack = status.get("slack") or {}
    if slack.get("error"):
        lines.append(f"• :warning: Slack delivery failing: `{mrkdwn(slack['error'])}`: {mrkdwn(slack['fix'])}")
    queue = status.get("queue")
    if queue:
        lines.append(
            f"• Queue consumer: {mrkdwn(queue.get('state'))}, last message {_t(queue.get('last_message_at'))}, "
            f"lag {queue.get('lag_seconds', '-')} s, errors {queue.get('errors', 0)}"
            + (f", last: {mrkdwn(queue['last_error'])}" if queue.get("last_error") else "")
        )
    if status.get("scheduler"):
        lines.append(f"• Scheduler: {mrkdwn(status['scheduler'])}")
    return "\n".join(lines)


def open_text(alerts: list[AlertRecord], name_of: Callable[[str | None], str | None]) -> str:
    """Unacknowledged alerts, most severe first, with how many findings each holds."""
    if not alerts:
        return ":white_check_mark: No open alerts."
    lines = [f"*{len(alerts)} open alert(s)*"]
    for record in alerts[:MAX_LINES]:
        alert, name = record.alert, name_of(record.account_id)
        where = (
            (f"{mrkdwn(name)} ({alert.account_id})" if name else alert.account_id)
            if alert.account_id
            else "several accounts"
        )
        state = {
            "posted": "posted" + (f", :warning: {mrkdwn(record.last_error, 300)}" if record.last_error else ""),
            "failed": f"cannot be posted ({mrkdwn(record.last_error, 300)})",
        }.get(record.state, f"not posted yet ({mrkdwn(record.last_error or 'queued', 300)})")
        since = record.opener.event_time if record.opener and record.opener.event_time else "no event time"
        lines.append(
            f"• *{record.severity.upper()}* {mrkdwn(title(alert, record.opener))} in {where}: "
            f"{alert.summary.count} finding(s) since {since}; {state}"
        )
    if len(alerts) > MAX_LINES:
        lines.append(f"…and {len(alerts) - MAX_LINES} more")
    return "\n".join(lines)


def accounts_text(
    accounts: Iterable[Account],
    states: dict[str, dict],
    owners: Callable[[str], dict[str, str | None]] = lambda entry: {},
) -> str:
    """The accounts, when each was last checked, which are failing, and their owners: `owners(entry)`
    maps an email address to the user it resolves to (None: nobody)."""
    accounts = list(accounts)
    lines = [f"*{len(accounts)} account(s) watched*"]
    for account in accounts[: MAX_LINES * 4]:
        state = states.get(account.id, {})
        checked = _t(state.get("last_checked_at")) if state.get("last_checked_at") else "not yet"
        failing = f", :warning: failing {state['failures']}x" if state.get("failures") else ""
        name = f" {mrkdwn(account.name)}" if account.name else ""
        owned = f"; owners: {', '.join(_owner(entry, owners) for entry in account.owners)}" if account.owners else ""
        lines.append(f"• `{account.id}`{name}: checked {checked}{failing}{owned}")
    if len(accounts) > MAX_LINES * 4:
        lines.append(f"…and {len(accounts) - MAX_LINES * 4} more")
    return "\n".join(lines)


def _owner(entry: str, resolve: Callable[[str], dict[str, str | None]]) -> str:
    if "@" not in entry:
        return f"<!subteam^{mrkdwn(entry)}>" if entry.startswith("S") else f"<@{mrkdwn(entry)}>"
    found = resolve(entry)
    if entry not in found:
        return f"`{mrkdwn(entry)}`"
    user = found[entry]
    return f"<@{mrkdwn(user)}> (`{mrkdwn(entry)}`)" if user else f"`{mrkdwn(entry)}` :warning: resolves to nobody"


def scan_text(accounts: int, new_findings: int, errors: list) -> str:
    text = f":mag: Scan finished: {accounts} account(s), {new_findings} new finding(s)"
    if errors:
        text += f", {len({e.account_id for e in errors})} could not be checked:"
        text += "".join(
            f"\n• `{e.account_id}`: {mrkdwn(e.code)}: {mrkdwn(e.hint or e.message)}" for e in errors[:MAX_LINES]
        )
    return text


def _t(value: Any) -> str:
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M:%S} UTC"
    return mrkdwn(value) if value else "never"
