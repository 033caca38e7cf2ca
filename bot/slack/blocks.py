"""PURE message builders: one function renders every state of an alert from the store's record.

Built with slack_sdk's Block Kit models, so Slack's limits are checked when rendering. Every
value that came from AWS (or from a user) passes through `mrkdwn()` first, and every text object
that carries one is `verbatim`, so Slack does not auto-link what is inside either.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, ContextBlock, MarkdownTextObject, SectionBlock
from slack_sdk.models.metadata import Metadata

from bot.checks.story import TITLE, story, title
from bot.models import DIGEST, AlertRecord, Finding
from bot.slack.escape import code, mrkdwn
from bot.slack.ids import (
    ACK_ACTION,
    CONFIRM_NO_ACTION,
    CONFIRM_VIEW,
    CONFIRM_YES_ACTION,
    DIGEST_EVENT,
    FINDING_EVENT,
    QUESTION_EVENT,
    REMEDIATION_ACTION,
    REPLY_EVENT,
    SUMMARY_EVENT,
)
from bot.timeutil import parse_time

NAME_LIMIT, DETAIL_LIMIT, REASON_LIMIT, LINE_LIMIT = 100, 1500, 500, 600  # escaped characters
TEXT_LIMIT = 2900  # Slack caps a section's text at 3,000
SEVERITY_ICON = {
    "critical": ":rotating_light:",
    "high": ":red_circle:",
    "medium": ":large_orange_diamond:",
    "low": ":white_circle:",
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
    "coverage_gap": "rootcheck is blind here. Fix the role or permission named below so the account is checked again.",
}
HIGH_RISK_GUIDANCE = (
    "A high-risk call: it can blind your logging, keep access or hand the account away. Find "
    "out now who made it; if nobody planned it, treat it as an incident."
)
Names = Callable[[str | None], str | None]
REASON_BLOCK = "reason"


@dataclass(frozen=True)
class Message:
    text: str
    blocks: list[dict]
    metadata: dict | None = None


def md(text: str) -> MarkdownTextObject:
    """A mrkdwn text object that Slack takes literally (no auto-linking of URLs or #channels)."""
    return MarkdownTextObject(text=text, verbatim=True)


def render_alert(
    record: AlertRecord, names: Names, remediation_url: str, now: datetime, members: Sequence[Finding] = ()
) -> Message:
    """The alert in its current state: open, acknowledged, expected, resolved; a digest lists `members`."""
    if record.alert.grouping == DIGEST:
        return _digest(record, list(members), names, remediation_url)
    alert, opener = record.alert, record.opener
    severity = record.severity
    heading = mrkdwn(title(alert, opener), 300)
    account = _account(alert.account_id, names(alert.account_id))
    count = f" · {alert.summary.count} findings" if alert.summary.count > 1 else ""
    blocks: list[Block] = [SectionBlock(text=md(f"{SEVERITY_ICON[severity]}  *{severity.upper()}* · {heading}{count}"))]
    if opener is not None:
        blocks.append(SectionBlock(fields=[md(t) for t in _fields(opener, account, now)]))
    lines = [f"*{label}*: {mrkdwn(text, LINE_LIMIT)}" for label, text in story(alert)]
    if lines:
        blocks.append(SectionBlock(text=md(_fit("\n".join(lines)))))
    guidance = HIGH_RISK_GUIDANCE if "high_risk" in alert.escalations else GUIDANCE[alert.kind]
    detail = f"\n_{mrkdwn(opener.detail, DETAIL_LIMIT)}_" if opener is not None and alert.summary.count == 1 else ""
    blocks.append(SectionBlock(text=md(f"*Now* {guidance}{detail}")))
    blocks += _status(record)
    blocks.append(_actions(record, remediation_url))
    fallback = f"{severity.upper()}: {heading} in {account}{count}" + (" (expected)" if record.expected_by else "")
    payload = {
        "finding_id": alert.id,
        "account_id": alert.account_id or "",
        "kind": alert.kind,
        "severity": severity,
        "count": alert.summary.count,
    }
    return Message(
        text=fallback[:3000],
        blocks=[b.to_dict() for b in blocks],
        metadata=Metadata(event_type=FINDING_EVENT, event_payload=payload).to_dict(),
    )


def render_summary(record: AlertRecord, now: datetime) -> Message:
    """The one activity summary reply in a session's thread, edited in place as the session goes on."""
    lines = [f"*{label}*: {mrkdwn(text, LINE_LIMIT)}" for label, text in story(record.alert)]
    text = _fit(
        f":memo: *Activity so far* ({record.alert.summary.count} findings, updated "
        f"{now:%H:%M:%S} UTC)\n" + "\n".join(lines)
    )
    payload = {"alert_id": record.id, "count": record.alert.summary.count}
    return Message(
        text=f"Activity so far: {record.alert.summary.count} findings",
        blocks=[SectionBlock(text=md(text)).to_dict()],
        metadata=Metadata(event_type=SUMMARY_EVENT, event_payload=payload).to_dict(),
    )


def render_reply(reply_id: str, body: dict, admins: list[str]) -> Message:
    """A thread reply (audit, reminder, call-out) from the data the store queued; its metadata
    carries the reply id, so a reply posted just before a crash is found again, not repeated."""
    kind = body.get("kind")
    if kind == "ack":
        text = f":white_check_mark: Acknowledged by <@{mrkdwn(body['user'])}> at {_at(body['at'])} UTC."
    elif kind == "reminder":
        text = (
            f":alarm_clock: {_mentions(admins)} this {mrkdwn(body.get('severity'))} alert is still not "
            f"acknowledged (reminder {int(body['count'])}). Please look at it and press *Acknowledge*."
        )
    elif kind == "new_ip":
        text = (
            f":warning: A key of this root session was used from a new source IP: {code(body.get('ip'))} "
            f"({code(body.get('event_name'))} at {mrkdwn(body.get('event_time'))}, key "
            f"{code(body.get('key'))}). A stolen session looks like this."
        )
    elif kind == "raised":
        text = (
            f":arrow_up: Raised to *{mrkdwn(str(body.get('severity')).upper())}* after it was acknowledged: "
            f"{int(body.get('count') or 0)} finding(s) now."
        )
    elif kind == "confirmed":
        text = (
            f":white_check_mark: Confirmed as planned by <@{mrkdwn(body['user'])}>: "
            f"{mrkdwn(body.get('reason'), REASON_LIMIT)}. Acknowledged by them at {_at(body['at'])} UTC."
        )
    elif kind == "owner_no":
        text = (
            f":rotating_light: <@{mrkdwn(body['user'])}> does not recognise this root use. {_mentions(admins)} "
            f"please respond now: treat it as an incident until you know who it was."
        )
    elif kind == "owner_no_called":
        text = f":rotating_light: <@{mrkdwn(body['user'])}> does not recognise this root use (the admins were called)."
    elif kind in ("silence", "unreachable"):
        asked = " ".join(f"<@{mrkdwn(u)}>" for u in body.get("asked") or []) or "nobody"
        why = (
            f"{asked} did not answer within {_minutes(body.get('timeout'))}"
            if kind == "silence"
            else f"no direct message could reach the owners ({asked})"
        )
        text = f":mega: {_mentions(admins)} {why}: please look at this alert."
    else:
        text = mrkdwn(body.get("text") or kind)
    return Message(
        text=text,
        blocks=[SectionBlock(text=md(text)).to_dict()],
        metadata=Metadata(event_type=REPLY_EVENT, event_payload={"reply_id": reply_id}).to_dict(),
    )


def render_announcement(body: dict) -> Message:
    """Planned root use announced (or its window closed), for everyone in the account's channel."""
    who = f"<@{mrkdwn(body['user'])}>"
    account = _account(body.get("account"), body.get("name"))
    if body.get("kind") == "expect_cancel":
        text = f":calendar: {who} closed the announced window of planned root use in {account}."
    else:
        text = (
            f":calendar: {who} announced planned root use in {account} until {_at(body['until'])} UTC: "
            f"{mrkdwn(body.get('reason'), REASON_LIMIT)}. Root alerts of this account in that window are posted "
            f"as expected, at low severity. `/rootcheck expect cancel {mrkdwn(body.get('account'))}` closes it."
        )
    return Message(text=text, blocks=[SectionBlock(text=md(text)).to_dict()])


def text_blocks(text: str) -> list[dict]:
    """Verbatim sections of whole lines, each within Slack's limit: an answer of any length renders."""
    sections, current = [], ""
    for line in text.split("\n"):
        line = line if len(line) <= TEXT_LIMIT else line[: TEXT_LIMIT - 1] + "…"
        if current and len(current) + len(line) + 1 > TEXT_LIMIT:
            sections.append(current)
            current = ""
        current += ("\n" if current else "") + line
    sections.append(current or " ")
    return [SectionBlock(text=md(section)).to_dict() for section in sections[:50]]


def render_question(record: AlertRecord, owner: str, names: Names, permalink: str | None) -> Message:
    """The direct message asking an owner "was this you?", in every state: asked, then answered."""
    alert, opener = record.alert, record.opener
    account = _account(alert.account_id, names(alert.account_id))
    when = f"{opener.event_time.replace('T', ' ').rstrip('Z')} UTC" if opener and opener.event_time else "recently"
    mfa = {True: "with MFA", False: "without MFA", None: "MFA unknown"}[opener.mfa_used if opener else None]
    what = [
        f":wave: *Was this you?* {mrkdwn(title(alert, opener), 200)} in {account}, {when}, from "
        f"{code(opener.source_ip if opener else None)} ({mfa})."
    ]
    lines = [f"*{label}*: {mrkdwn(text, LINE_LIMIT)}" for label, text in story(alert) if label != "Before"][:4]
    link = (
        f"<{permalink}|the alert in the channel>"
        if permalink and permalink.startswith("https://")
        else "the alert in the channel"
    )
    what.append(f"You are an owner of this account, so you can tell planned work from an incident. See {link}.")
    blocks: list[Block] = [SectionBlock(text=md("\n".join(what + lines)))]
    if record.answered_at is None:
        blocks.append(
            ActionsBlock(
                elements=[
                    ButtonElement(
                        text="Yes, this was planned", action_id=CONFIRM_YES_ACTION, value=record.id, style="primary"
                    ),
                    ButtonElement(
                        text="No, I don't recognise it", action_id=CONFIRM_NO_ACTION, value=record.id, style="danger"
                    ),
                ]
            )
        )
    else:
        blocks.append(ContextBlock(elements=[md(_answered(record, owner))]))
    payload = {"question_id": f"{record.id}:{owner}", "alert_id": record.id}
    return Message(
        text=f"Was this you? Root use in {account}",
        blocks=[b.to_dict() for b in blocks],
        metadata=Metadata(event_type=QUESTION_EVENT, event_payload=payload).to_dict(),
    )


def render_reason_modal(alert_id: str) -> dict:
    """The modal a Yes opens: why was root used (required, up to 500 characters)."""
    return {
        "type": "modal",
        "callback_id": CONFIRM_VIEW,
        "private_metadata": alert_id,
        "title": {"type": "plain_text", "text": "Planned root use"},
        "submit": {"type": "plain_text", "text": "Confirm"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": {"type": "plain_text", "text": "Why was the root user used?"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_BLOCK,
                    "multiline": True,
                    "max_length": 500,
                    "placeholder": {"type": "plain_text", "text": "e.g. closing the account, support plan change"},
                },
            }
        ],
    }


def render_notice_modal(text: str) -> dict:
    """A modal that only says something (the form was answered meanwhile)."""
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Planned root use"},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text[:2900], "verbatim": True}}],
    }


def answered_text(answer: str | None, by: str | None, at: datetime | None) -> str:
    """What a late click is told: who answered, what, and when."""
    said = {"yes": "it was planned", "no": "they do not recognise it"}.get(answer or "", mrkdwn(answer))
    return f"<@{mrkdwn(by)}> already answered at {at:%Y-%m-%d %H:%M} UTC: {said}." if at else "Already answered."


def _answered(record: AlertRecord, owner: str) -> str:
    if record.answered_by == owner:
        return (
            ":white_check_mark: Thanks, recorded: planned."
            if record.answer == "yes"
            else ":rotating_light: Thanks: security was called and will follow up."
        )
    return answered_text(record.answer, record.answered_by, record.answered_at)


def _minutes(seconds: int | None) -> str:
    return f"{round(seconds / 60)} min" if seconds else "the time given"


def mention(admin_id: str) -> str:
    """`<@U…>` for a user, `<!subteam^S…>` for a user group."""
    return f"<!subteam^{admin_id}>" if admin_id.startswith("S") else f"<@{admin_id}>"


def _mentions(admins: list[str]) -> str:
    return " ".join(mention(a) for a in admins) if admins else "<!here>"


def _digest(record: AlertRecord, members: list[Finding], names: Names, remediation_url: str) -> Message:
    """Many hygiene findings (or coverage gaps) of one kind in one message, acknowledged together."""
    kind, severity = record.alert.kind, record.severity
    lines = [f"• {_account(m.account_id, names(m.account_id))}: {mrkdwn(m.detail, 200)}" for m in members[:40]]
    text, shown = "", 0
    for line in lines:  # whole lines only
        if len(text) + len(line) + 40 > TEXT_LIMIT:
            break
        text += ("\n" if text else "") + line
        shown += 1
    total = record.alert.summary.count
    if total > shown:
        text += f"\n…and {total - shown} more"
    heading = f"{TITLE.get(kind, kind)}: {total} accounts"
    blocks = [
        SectionBlock(text=md(f"{SEVERITY_ICON[severity]}  *{severity.upper()}* · *{heading}*\n{GUIDANCE[kind]}")),
        SectionBlock(text=md(text or "—")),
        *_status(record),
        _actions(record, remediation_url),
    ]
    payload = {
        "digest_id": record.id,
        "finding_ids": [m.id for m in members],
        "kind": kind,
        "severity": severity,
        "count": total,
    }
    return Message(
        text=f"{severity.upper()}: {heading}",
        blocks=[b.to_dict() for b in blocks],
        metadata=Metadata(event_type=DIGEST_EVENT, event_payload=payload).to_dict(),
    )


def _fields(opener: Finding, account: str, now: datetime) -> list[str]:
    fields = [f"*Account*\n{account}", f"*When*\n{_when(opener, now)}"]
    if opener.source == "cloudtrail":
        mfa = {True: "yes", False: "no", None: "unknown"}[opener.mfa_used]
        fields += [
            f"*Source IP*\n{code(opener.source_ip)}",
            f"*User agent*\n{code(opener.user_agent)}",
            f"*Region · MFA*\n{code(opener.region)} · {mfa}",
            f"*Event*\n{code(opener.event_id)}",
        ]
    else:
        fields.append(f"*Source*\n{mrkdwn(opener.source.replace('_', ' '))}")
    return fields


def _account(account_id: str | None, name: str | None) -> str:
    if not account_id:
        return "unknown account"
    return f"{mrkdwn(name, NAME_LIMIT)} ({account_id})" if name else account_id


def _when(finding: Finding, now: datetime) -> str:
    moment = parse_time(finding.event_time) if finding.event_time else None
    if moment is None:
        return {
            "credential_report": "from the latest credential report",
            "rootcheck": "found by rootcheck's sweeps",
        }.get(finding.source, "time not recorded")
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


def _status(record: AlertRecord) -> list:
    notes = []
    if record.expected_by:
        notes.append(
            f":calendar: *Expected*: announced by <@{mrkdwn(record.expected_by)}>: "
            f"{mrkdwn(record.expected_reason, REASON_LIMIT)}"
        )
    if record.resolved_at:
        why = (
            "the account was checked again"
            if record.alert.kind == "coverage_gap"
            else "the latest credential report no longer shows this"
        )
        notes.append(f":recycle: *Resolved*: {why} ({record.resolved_at:%Y-%m-%d %H:%M} UTC).")
    notes += _owners(record)
    if record.acked_at:
        notes.append(
            f":white_check_mark: Acknowledged by <@{mrkdwn(record.acked_by)}> at {record.acked_at:%Y-%m-%d %H:%M} UTC"
        )
    return [ContextBlock(elements=[md(note)]) for note in notes]


def _owners(record: AlertRecord) -> list[str]:
    """Where the "was this you?" question stands."""
    if record.asked_at is None or not record.owners_asked:
        return []
    asked = ", ".join(f"<@{mrkdwn(u)}>" for u in record.owners_asked)
    more = (
        f" Also owners, not asked (over 20): {', '.join(f'<@{mrkdwn(u)}>' for u in record.owners_more[:30])}"
        + (f" +{len(record.owners_more) - 30} more" if len(record.owners_more) > 30 else "")
        if record.owners_more
        else ""
    )
    if record.answer == "yes":
        return [
            f":white_check_mark: *Confirmed as planned* by <@{mrkdwn(record.answered_by)}>: "
            f"{mrkdwn(record.answer_reason, REASON_LIMIT)}"
        ]
    if record.answer == "no":
        return [
            f":rotating_light: *<@{mrkdwn(record.answered_by)}> does not recognise it* "
            f"({record.answered_at:%Y-%m-%d %H:%M} UTC): the admins were called."
        ]
    if record.escalated_at:
        return [f":mega: Asked {asked}; no answer: the admins were called at {record.escalated_at:%H:%M} UTC." + more]
    until = f" until {record.confirm_deadline:%H:%M} UTC" if record.confirm_deadline else ""
    return [f":speech_balloon: Asked {asked} whether this was planned; waiting{until}." + more]


def _actions(record: AlertRecord, remediation_url: str) -> ActionsBlock:
    buttons = [ButtonElement(text="Remediation guide", action_id=REMEDIATION_ACTION, url=remediation_url)]
    if record.acked_at is None:
        buttons.append(ButtonElement(text="Acknowledge", action_id=ACK_ACTION, value=record.id, style="primary"))
    return ActionsBlock(elements=buttons)


def _fit(text: str) -> str:
    """Whole lines up to Slack's section limit (each line is escaped and bounded already)."""
    if len(text) <= TEXT_LIMIT:
        return text
    kept = ""
    for line in text.split("\n"):
        if len(kept) + len(line) + 1 > TEXT_LIMIT - 20:
            return kept + "\n…(more)"
        kept += ("\n" if kept else "") + line
    return kept


def _at(iso: str) -> str:
    moment = parse_time(iso)
    return f"{moment:%Y-%m-%d %H:%M}" if moment else mrkdwn(iso)
