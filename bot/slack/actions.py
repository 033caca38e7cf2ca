"""Button listeners: Acknowledge (allowed users only) and the remediation link (ack only)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from bot.slack.ids import ACK_ACTION, REMEDIATION_ACTION
from bot.slack.notifier import SlackError
from bot.slack.ports import Bot

log = logging.getLogger(__name__)

REFUSAL = ":no_entry: You are not allowed to acknowledge rootcheck alerts. Ask a rootcheck admin."


BUSY = ":hourglass: rootcheck is busy right now; please press the button again in a minute."


def register(
    app: Any, bot: Bot, submit: Callable[[Callable[[], None]], None], busy: type[Exception] = Exception
) -> None:

    @app.action(ACK_ACTION)
    def on_ack(ack, body, action, respond):
        ack()
        user = body["user"]["id"]
        channel = (body.get("channel") or {}).get("id")
        try:
            submit(lambda: acknowledge(bot, action.get("value", ""), user, channel, respond))
        except busy:
            respond(text=BUSY, response_type="ephemeral", replace_original=False)

    @app.action(REMEDIATION_ACTION)
    def on_remediation(ack):
        ack()  # a URL button still sends an interaction; nothing else to do


def acknowledge(
    bot: Bot, alert_id: str, user: str, channel: str | None, respond: Callable[..., Any] | None = None
) -> None:
    """Check the user against the alert's own channel, then store the ack once and update it in place."""
    record = bot.store.alerts.get(alert_id)
    if record is None:
        return
    if not bot.authz.may_ack(user, record.channel, record.account_id):
        bot.store.state.audit(bot.clock(), user, "ack_refused", alert_id)
        try:
            bot.deliverer.notifier.ephemeral(record.channel or channel or "", user, REFUSAL)
        except SlackError as exc:  # e.g. user_not_in_channel: a non-member clicked in a public channel
            _refuse_via_response_url(respond, user, exc.code)
        return
    if bot.deliverer.acknowledge(alert_id, user):
        bot.store.state.audit(bot.clock(), user, "ack", alert_id)
        bot.metrics.observe_ack(record.posted_at, bot.clock())


def _refuse_via_response_url(respond: Callable[..., Any] | None, user: str, code: str) -> None:
    """chat.postEphemeral needs the user in the channel; the click's response_url reaches anyone."""
    try:
        if respond is None:
            raise RuntimeError("no response_url")
        respond(text=REFUSAL, response_type="ephemeral", replace_original=False)
    except Exception as exc:  # noqa: BLE001 - the refusal is best effort; nothing changed either way
        log.warning("could not tell %s the ack was refused: %s, then %s", user, code, exc.__class__.__name__)
