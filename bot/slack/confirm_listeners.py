"""The owners' answers: "Yes, this was planned" (a modal asks why), "No, I don't recognise it".

Only the owners recorded when the question was asked may answer, checked against the store with no
Slack call, so the Yes modal opens within the 3 s its `trigger_id` lives. Anyone else is refused
through the click's `response_url`: an ephemeral message cannot go into someone else's direct
messages. The first complete answer wins; a later one is told who answered, what and when.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from bot.slack.blocks import REASON_BLOCK, answered_text, render_notice_modal, render_reason_modal
from bot.slack.ids import CONFIRM_NO_ACTION, CONFIRM_VIEW, CONFIRM_YES_ACTION
from bot.slack.notifier import SlackError
from bot.slack.ports import Bot

log = logging.getLogger(__name__)
NOT_AN_OWNER = ":no_entry: Only the owners asked about this alert may answer it."
REASON_MISSING = "Please say why the root user was used (up to 500 characters)."
REASON_LIMIT = 500


def register(app: Any, bot: Bot, submit: Callable[[Callable[[], None]], None], busy: type[Exception]) -> None:

    def run(job: Callable[[], None], respond: Callable[..., Any]) -> None:
        try:
            submit(job)
        except busy:
            respond(
                text=":hourglass: rootcheck is busy; please press the button again in a minute.",
                response_type="ephemeral",
                replace_original=False,
            )

    def clicked(
        ack: Callable[[], None], body: dict, action: dict, respond: Callable[..., Any]
    ) -> tuple[str, str] | None:
        """(user, alert id) of an owner's click that may count; anyone else is told why not."""
        ack()
        user, alert_id = body["user"]["id"], action.get("value", "")
        refusal = refusal_for(bot, alert_id, user)
        if refusal:
            _tell(respond, refusal)
            return None
        return user, alert_id

    @app.action(CONFIRM_YES_ACTION)
    def on_yes(ack, body, action, respond):
        if (click := clicked(ack, body, action, respond)) is None:
            return
        _, alert_id = click
        try:  # here, not on the work pool: the trigger_id expires within 3 s of the click
            bot.deliverer.notifier.open_view(body.get("trigger_id", ""), render_reason_modal(alert_id))
        except SlackError as exc:
            _tell(respond, f":warning: The form could not be opened ({exc.code}); please press Yes again.")

    @app.view(CONFIRM_VIEW)
    def on_reason(ack, body, view):
        user, alert_id = body["user"]["id"], view.get("private_metadata", "")
        reason = (((view.get("state") or {}).get("values") or {}).get(REASON_BLOCK) or {}).get(REASON_BLOCK, {}).get(
            "value"
        ) or ""
        if not reason.strip():
            ack(response_action="errors", errors={REASON_BLOCK: REASON_MISSING})
            return
        refusal = refusal_for(bot, alert_id, user)
        if refusal:
            ack(response_action="update", view=render_notice_modal(refusal))
            return
        ack()  # a Yes that loses the race to another owner's answer: its direct message is updated to say so
        run(lambda: answered(bot, alert_id, user, "yes", reason.strip()[:REASON_LIMIT], None), lambda **kw: None)

    @app.action(CONFIRM_NO_ACTION)
    def on_no(ack, body, action, respond):
        if (click := clicked(ack, body, action, respond)) is None:
            return
        user, alert_id = click
        run(lambda: answered(bot, alert_id, user, "no", None, respond), respond)


def answered(
    bot: Bot, alert_id: str, user: str, answer: str, reason: str | None, respond: Callable[..., Any] | None
) -> None:
    result = bot.answer(alert_id, user, answer, reason)
    if not result.counted and respond is not None:
        _tell(respond, ":information_source: " + answered_text(result.answer, result.by, result.at))


def refusal_for(bot: Bot, alert_id: str, user: str) -> str | None:
    """Why `user` may not answer about this alert now (from the store alone), or None."""
    record = bot.store.alerts.get(alert_id)
    if record is None:
        return ":grey_question: This alert is no longer known to rootcheck."
    if user not in record.owners_asked:
        bot.store.state.audit(bot.clock(), user, "answer_refused", alert_id)
        return NOT_AN_OWNER
    if record.answered_at is not None:
        return ":information_source: " + answered_text(record.answer, record.answered_by, record.answered_at)
    return None


def _tell(respond: Callable[..., Any], text: str) -> None:
    try:
        respond(text=text, response_type="ephemeral", replace_original=False)
    except Exception as exc:  # noqa: BLE001 - telling is best effort; nothing changed either way
        log.warning("could not answer a click: %s", exc.__class__.__name__)
