"""PURE message builders: one function renders every state of an alert from the store's data.

Built with slack_sdk's Block Kit models, so Slack's limits are checked when rendering. Every
value that came from AWS (or from a user) passes through `mrkdwn()` first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)
from slack_sdk.models.metadata import Metadata

from bot.models import Delivery, Finding
from bot.slack.escape import code, mrkdwn
from bot.slack.ids import ACK_ACTION, DIGEST_EVENT, FINDING_EVENT, REMEDIATION_ACTION
from bot.timeutil import parse_time

NAME_LIMIT, DETAIL_LIMIT, REASON_LIMIT = 100, 1500, 500  # raw characters; Slack caps a text at 2-3k
DIGEST_TEXT_LIMIT = 2900
SEVERITY_ICON = {"critical": ":rotating_light:", "high": ":red_circle:", "medium": ":large_orange_diamond:",
                 "low": ":white_circle:"}
TITLE = {
    "root_console_login": "Root console sign-in",
    "root_console_login_failed": "Failed root console sign-in",
    "root_activity": "Root user activity",
    "root_password_used": "Root password used",
    "root_access_key_active": "Root access key is active",
    "root_mfa_disabled": "Root user has no MFA",
    "coverage_gap": "Account could not be checked",
}
GUIDANCE = {
    "root_console_login": "Confirm with the account owner. If it was not planned: reset the root password, "
                          "check for new root access keys and IAM changes since then, and use IAM identities "
                          "or IAM Identity Center from now on.",
    "root_console_login_failed": "Someone tried the root password. If it was not your team: rotate the root "
                                 "password, confirm MFA is on, and lock the credentials away.",
    "root_activity": "Root should not be used for daily work. Confirm who did this and why; create IAM "
                     "identities for the task and lock root away.",
    "root_password_used": "Find out who signed in as root. Rotate the root password and store it with MFA "
                          "in your break-glass process.",
    "root_access_key_active": "Delete the root access keys: root should never have them. Use IAM roles instead.",
    "root_mfa_disabled": "Enable MFA on the root user now (a hardware key is best), or remove its credentials "
                         "with centralized root access.",
    "coverage_gap": "rootcheck is blind here. Fix the role or permission named below so the account is "
                    "checked again.",
}


@dataclass(frozen=True)
class Message:
    text: str
    blocks: list[dict]
    metadata: dict | None = None


def render_alert(delivery: Delivery, account_name: str | None, remediation_url: str, now: datetime) -> Message:
    """The alert in its current state: open, acknowledged, expected or resolved."""
    finding = delivery.finding
    assert finding is not None
    severity = "low" if delivery.expected_by else finding.severity
    title = _title(finding)
    blocks = [
        SectionBlock(text=MarkdownTextObject(text=f"{SEVERITY_ICON[severity]}  *{severity.upper()}* · {title}")),
        SectionBlock(fields=[MarkdownTextObject(text=t) for t in _fields(finding, account_name, now)]),
        SectionBlock(text=MarkdownTextObject(
            text=f"*Now* {GUIDANCE[finding.kind]}\n_{mrkdwn(finding.detail, DETAIL_LIMIT)}_")),
    ]
    blocks += _status_context(delivery)
    blocks.append(_actions(delivery, remediation_url))
    text = (f"{severity.upper()}: {title} in {_account(finding.account_id, account_name)}"
            + (" (expected)" if delivery.expected_by else ""))
    payload = {"finding_id": finding.id, "account_id": finding.account_id or "", "kind": finding.kind,
               "severity": severity}
    return Message(text=text, blocks=[b.to_dict() for b in blocks],
                   metadata=Metadata(event_type=FINDING_EVENT, event_payload=payload).to_dict())


def render_digest(delivery: Delivery, members: list[Delivery], names: dict[str, str | None],
                  remediation_url: str, now: datetime) -> Message:
    """Many hygiene findings of one kind in one message, acknowledged together."""
    kind = delivery.kind
    lines = [f"• {_account(m.finding.account_id, names.get(m.finding.account_id or ''))}: "
             f"{mrkdwn(m.finding.detail, 200)}" for m in members[:40] if m.finding]
    text = ""
    for shown, line in enumerate(lines):  # whole lines only: a cut must not split an escaped entity
        if len(text) + len(line) + 40 > DIGEST_TEXT_LIMIT:
            break
        text += ("\n" if text else "") + line
    else:
        shown = len(lines)
    if len(members) > shown:
        text += f"\n…and {len(members) - shown} more"
    severity = members[0].finding.severity if members and members[0].finding else "high"
    blocks = [
        HeaderBlock(text=f"{TITLE[kind]}: {len(members)} accounts"),
        SectionBlock(text=MarkdownTextObject(text=f"{SEVERITY_ICON[severity]}  *{severity.upper()}* · "
                                                  f"{GUIDANCE[kind]}")),
        SectionBlock(text=MarkdownTextObject(text=text)),
        *_status_context(delivery),
        _actions(delivery, remediation_url),
    ]
    payload = {"digest_id": delivery.id, "finding_ids": delivery.finding_ids, "kind": kind, "severity": severity}
    return Message(text=f"{severity.upper()}: {TITLE[kind]} in {len(members)} accounts",
                   blocks=[b.to_dict() for b in blocks],
                   metadata=Metadata(event_type=DIGEST_EVENT, event_payload=payload).to_dict())


def ack_reply(user: str, at: datetime) -> str:
    return f":white_check_mark: Acknowledged by <@{mrkdwn(user)}> at {at:%Y-%m-%d %H:%M} UTC."


def reminder_reply(mentions: list[str], count: int, finding: Finding) -> str:
    who = " ".join(mentions) if mentions else "<!here>"
    return (f":alarm_clock: {who} this {finding.severity} alert is still not acknowledged "
            f"(reminder {count}). Please look at it and press *Acknowledge*.")


def mention(admin_id: str) -> str:
    """`<@U…>` for a user, `<!subteam^S…>` for a user group."""
    return f"<!subteam^{admin_id}>" if admin_id.startswith("S") else f"<@{admin_id}>"


def _title(finding: Finding) -> str:
    if finding.kind == "root_console_login":
        mfa = {True: "with MFA", False: "without MFA", None: "(MFA unknown)"}[finding.mfa_used]
        return f"{TITLE[finding.kind]} {mfa}"
    return TITLE.get(finding.kind, finding.kind)


def _fields(finding: Finding, account_name: str | None, now: datetime) -> list[str]:
    fields = [f"*Account*\n{_account(finding.account_id, account_name)}", f"*When*\n{_when(finding, now)}"]
    if finding.source == "cloudtrail":
        mfa = {True: "yes", False: "no", None: "unknown"}[finding.mfa_used]
        fields += [f"*Source IP*\n{code(finding.source_ip)}", f"*User agent*\n{code(finding.user_agent)}",
                   f"*Region · MFA*\n{code(finding.region)} · {mfa}", f"*Event*\n{code(finding.event_id)}"]
    else:
        fields.append(f"*Source*\n{mrkdwn(finding.source.replace('_', ' '))}")
    return fields


def _account(account_id: str | None, name: str | None) -> str:
    if not account_id:
        return "unknown account"
    return f"{mrkdwn(name, NAME_LIMIT)} ({account_id})" if name else account_id


def _when(finding: Finding, now: datetime) -> str:
    moment = parse_time(finding.event_time) if finding.event_time else None
    if moment is None:
        return {"credential_report": "from the latest credential report",
                "rootcheck": "found by rootcheck's sweeps"}.get(finding.source, "time not recorded")
    utc = f"{moment:%Y-%m-%d %H:%M} UTC"
    local = f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{utc}>"
    return f"{local} ({utc}), {_ago(now - moment)} before this alert"


def _ago(delta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 1:
        return "less than a minute"
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h" if minutes < 2880 else f"{minutes // 1440} days"


def _status_context(delivery: Delivery) -> list:
    notes = []
    if delivery.expected_by:
        notes.append(f":calendar: *Expected*: announced by <@{mrkdwn(delivery.expected_by)}>: "
                     f"{mrkdwn(delivery.expected_reason, REASON_LIMIT)}")
    if delivery.resolved_at:
        why = ("the account was checked again" if delivery.kind == "coverage_gap"
               else "the latest credential report no longer shows this")
        notes.append(f":recycle: *Resolved*: {why} ({delivery.resolved_at:%Y-%m-%d %H:%M} UTC).")
    if delivery.acked_at:
        notes.append(f":white_check_mark: Acknowledged by <@{mrkdwn(delivery.acked_by)}> "
                     f"at {delivery.acked_at:%Y-%m-%d %H:%M} UTC")
    return [ContextBlock(elements=[MarkdownTextObject(text=note)]) for note in notes]


def _actions(delivery: Delivery, remediation_url: str) -> ActionsBlock:
    buttons = [ButtonElement(text="Remediation guide", action_id=REMEDIATION_ACTION, url=remediation_url)]
    if delivery.acked_at is None:
        buttons.append(ButtonElement(text="Acknowledge", action_id=ACK_ACTION, value=delivery.id, style="primary"))
    return ActionsBlock(elements=buttons)
