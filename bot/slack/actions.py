"""Button listeners: Acknowledge (allowed users only) and the remediation link (ack only)."""

from __future__ import annotations

import logging
from typing import Any, Callable

from bot.slack.ids import ACK_ACTION, REMEDIATION_ACTION
from bot.slack.notifier import SlackError

log = logging.getLogger(__name__)

REFUSAL = ":no_entry: You are not allowed to acknowledge rootcheck alerts. Ask a rootcheck admin."


def register(app: Any, bot: Any, submit: Callable[[Callable[[], None]], None]) -> None:

    @app.action(ACK_ACTION)
    def on_ack(ack, body, action):
        ack()
        user = body["user"]["id"]
        channel = (body.get("channel") or {}).get("id")
        submit(lambda: acknowledge(bot, action.get("value", ""), user, channel))

    @app.action(REMEDIATION_ACTION)
    def on_remediation(ack):
        ack()  # a URL button still sends an interaction; nothing else to do


def acknowledge(bot: Any, delivery_id: str, user: str, channel: str | None) -> None:
    """Check the user, then store the ack once and update the message in place."""
    delivery = bot.store.outbox.get(delivery_id)
    if delivery is None:
        return
    if not bot.authz.allowed(user, delivery.channel or channel):
        bot.store.state.audit(bot.clock(), user, "ack_refused", delivery_id)
        try:
            bot.deliverer.notifier.ephemeral(delivery.channel or channel, user, REFUSAL)
        except SlackError as exc:  # the refusal is best effort; nothing changed either way
            log.warning("could not tell %s the ack was refused: %s", user, exc.code)
        return
    if bot.deliverer.acknowledge(delivery_id, user):
        bot.store.state.audit(bot.clock(), user, "ack", delivery_id)
        bot.metrics.observe_ack(delivery, bot.clock())
