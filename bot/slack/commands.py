"""`/rootcheck`: parse, ack at once, answer ephemerally through response_url.

`ack()` is the first line of the listener and never waits on AWS or the database; everything
else runs on the bot's work pool. Who may scan, announce root use and see which accounts is
decided by `authz` from the account's own channel (or owners, or admins), never from the channel
the command was typed in.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.slack.blocks import text_blocks
from bot.slack.escape import mrkdwn
from bot.slack.ids import COMMAND
from bot.slack.ports import Bot
from bot.timeutil import parse_duration

HELP = (
    f"*{COMMAND}* watches the AWS accounts for use of the root user.\n"
    f"• `{COMMAND} status`: last sweep, accounts that could not be checked, open alerts\n"
    f"• `{COMMAND} open`: alerts nobody has acknowledged yet\n"
    f"• `{COMMAND} accounts`: the accounts being watched\n"
    f"• `{COMMAND} scan [ACCOUNT_ID]`: sweep now (allowed users)\n"
    f"• `{COMMAND} expect ACCOUNT_ID DURATION REASON`: announce planned root use, e.g. "
    f"`{COMMAND} expect 111122223333 2h support plan change` (allowed users)\n"
    f"• `{COMMAND} expect cancel ACCOUNT_ID`: close that account's announced window now\n"
    f"• `{COMMAND} help`: this text"
)
VERBS = ("status", "open", "accounts", "scan", "expect")  # `help` is answered in the ack itself
MAX_EXPECT = timedelta(days=7)
_ACCOUNT = re.compile(r"^\d{12}$")


class CommandError(ValueError):
    """A request we understood but cannot do: the user sees the message."""


@dataclass(frozen=True)
class Request:
    verb: str
    args: list[str]
    user: str
    channel: str | None


def parse(text: str, user: str, channel: str | None) -> Request:
    words = (text or "").split()
    verb = words[0].lower() if words else "help"
    return Request(verb, words[1:], user, channel)


def cancel_args(args: list[str]) -> str | None:
    """`cancel ACCOUNT_ID`: the account; None when the arguments are not a cancel."""
    if not args or args[0].lower() != "cancel":
        return None
    if len(args) != 2 or not _ACCOUNT.match(args[1]):
        raise CommandError(f"usage: `{COMMAND} expect cancel ACCOUNT_ID` with a 12-digit account id")
    return args[1]


def expect_args(args: list[str]) -> tuple[str, timedelta, str]:
    """`ACCOUNT_ID DURATION REASON`, validated; raises CommandError with what is wrong."""
    if len(args) < 3:
        raise CommandError(f"usage: `{COMMAND} expect ACCOUNT_ID DURATION REASON`")
    account, duration_text, reason = args[0], args[1], " ".join(args[2:])
    if not _ACCOUNT.match(account):
        raise CommandError(f"`{mrkdwn(account)}` is not a 12-digit account id")
    try:
        duration = parse_duration(duration_text)
    except ValueError:
        raise CommandError(f"`{mrkdwn(duration_text)}` is not a duration (e.g. 30m, 2h, 1d)") from None
    if not timedelta(0) < duration <= MAX_EXPECT:
        raise CommandError("the duration must be more than zero and at most 7d")
    return account, duration, reason


def scan_args(args: list[str]) -> list[str] | None:
    if not args:
        return None
    if len(args) > 1 or not _ACCOUNT.match(args[0]):
        raise CommandError(f"usage: `{COMMAND} scan [ACCOUNT_ID]` with a 12-digit account id")
    return [args[0]]


BUSY = ":hourglass: rootcheck is busy right now; please try again in a minute."


def register(
    app: Any,
    handle: Callable[[Request, Callable[[str], None]], None],
    submit: Callable[[Callable[[], None]], None],
    busy: type[Exception] = Exception,
) -> None:
    """Wire `/rootcheck` into the Bolt app; `handle` does the work on the pool via `submit`."""

    @app.command(COMMAND)
    def on_command(ack, command, respond):
        request = parse(command.get("text", ""), command["user_id"], command.get("channel_id"))
        if request.verb == "help":
            ack(text=HELP, response_type="ephemeral")
            return
        ack()

        def answer(text: str) -> None:  # verbatim blocks: names from AWS and reasons from users stay text
            respond(text=text[:3000], blocks=text_blocks(text), response_type="ephemeral", replace_original=False)

        try:
            submit(lambda: handle(request, answer))
        except busy:
            answer(BUSY)


class Commands:
    """What each verb does; runs on the work pool, answers through `answer`."""

    def __init__(self, bot: Bot):
        self.bot = bot

    def __call__(self, request: Request, answer: Callable[[str], None]) -> None:
        handler = getattr(self, f"_{request.verb}") if request.verb in VERBS else None
        try:
            if handler is None:
                raise CommandError(f"unknown command `{mrkdwn(request.verb)}`.\n\n{HELP}")
            handler(request, answer)
        except CommandError as exc:
            answer(f":warning: {exc}")

    def _status(self, request: Request, answer: Callable[[str], None]) -> None:
        from bot.slack.replies import status_text  # noqa: PLC0415 - keeps the parser module light

        visible = self._visible(request)
        answer(status_text(self.bot.status(visible)))

    def _open(self, request: Request, answer: Callable[[str], None]) -> None:
        from bot.slack.replies import open_text  # noqa: PLC0415

        visible = self._visible(request)
        alerts = self.bot.store.alerts.open_alerts(accounts=visible, limit=50)
        answer(open_text(alerts, self.bot.monitor.account_name))

    def _accounts(self, request: Request, answer: Callable[[str], None]) -> None:
        from bot.slack.replies import accounts_text  # noqa: PLC0415

        accounts = list(self.bot.monitor.accounts.values()) or self.bot.monitor.refresh_accounts()
        visible = self._visible(request, [a.id for a in accounts])
        accounts = [a for a in accounts if visible is None or a.id in visible]
        answer(accounts_text(accounts, {a.id: self.bot.store.state.account(a.id) for a in accounts}, self._email))

    def _email(self, address: str) -> dict[str, str | None]:
        """{address: the user it resolves to, or None}; {} when Slack cannot say right now."""
        try:
            return {address: self.bot.authz.people.email(address)}
        except Exception:  # noqa: BLE001 - a listing shows the address as written then
            return {}

    def _scan(self, request: Request, answer: Callable[[str], None]) -> None:
        only = scan_args(request.args)
        self._require(request, only[0] if only else None, "scan " + ("that account" if only else "all accounts"))
        self.bot.scan(request.user, only, answer)

    def _expect(self, request: Request, answer: Callable[[str], None]) -> None:
        cancelled = cancel_args(request.args)
        if cancelled is not None:
            self._require(request, cancelled, "cancel announced root use there")
            closed = self.bot.cancel_expectation(request.user, cancelled)
            answer(
                f":calendar: Closed {closed} announced window(s) for `{cancelled}`."
                if closed
                else f":calendar: No announced window is open for `{cancelled}`."
            )
            return
        account, duration, reason = expect_args(request.args)
        self._require(request, account, "announce root use there")
        self.bot.expect(request.user, account, duration, reason)
        answer(
            f":calendar: Noted: root use in `{account}` is expected for {mrkdwn(request.args[1])}, announced by "
            f"<@{request.user}>: {mrkdwn(reason)}. Alerts in that window are still posted, marked expected; "
            f"the announcement is in the account's alert channel."
        )

    def _visible(self, request: Request, account_ids: list[str] | None = None) -> set[str] | None:
        """The accounts this user may see by name; a user who may see none is told so."""
        if account_ids is None:
            account_ids = list(self.bot.monitor.accounts) or [a.id for a in self.bot.monitor.refresh_accounts()]
        visible = self.bot.authz.visible(request.user, account_ids)
        if visible is not None and not visible:
            raise CommandError(
                "you may not see rootcheck's accounts. Ask a rootcheck admin, or join an account's alert channel."
            )
        return visible

    def _require(self, request: Request, account_id: str | None, what: str) -> None:
        if not self.bot.authz.may_act(request.user, account_id):
            self.bot.store.state.audit(
                self.bot.clock(), request.user, "refused", request.verb, " ".join(request.args)[:200]
            )
            raise CommandError(f"you are not allowed to {what}. Ask a rootcheck admin.")
