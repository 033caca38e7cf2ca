"""Who may act on what, and who may see which accounts: the interface's `ROOTCHECK_ADMINS` rules.

- With `ROOTCHECK_ADMINS` set: the admins (users, and user groups expanded) may do everything and
  see every account; an account's owners may acknowledge, scan and `expect` that account and see it.
- Without it: members of `ROOTCHECK_CHANNEL` may scan all accounts and see all; members of an
  account's alert channel may act on and see that account; the owners as above; for an alert,
  members of the channel it is in may acknowledge it.

Never the channel a command happens to be typed in: anyone can type in a public channel they join.
Every lookup failure refuses (fails closed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from slack_sdk.errors import SlackApiError, SlackRequestError

from bot.models import Account
from bot.slack.people import People

log = logging.getLogger(__name__)
_LOOKUP_ERRORS = (SlackApiError, SlackRequestError, OSError)


class Authorizer:
    def __init__(
        self,
        people: People,
        admins: list[str],
        default_channel: str | None,
        account: Callable[[str | None], Account | None],
        channel_of: Callable[[str | None], str | None],
    ):
        self.people = people
        self.admins = admins
        self.default_channel = default_channel
        self.account = account
        self.channel_of = channel_of

    def may_act(self, user: str, account_id: str | None) -> bool:
        """Scan or `expect` one account (`account_id`), or scan them all (None)."""
        return self._safely(
            lambda: (
                self._admin(user)
                or (account_id is not None and self._owner(user, account_id))
                or (
                    not self.admins
                    and self._member(user, self.channel_of(account_id) if account_id else self.default_channel)
                )
            )
        )

    def may_ack(self, user: str, channel: str | None, account_id: str | None) -> bool:
        """Acknowledge an alert posted in `channel` about `account_id` (None: a digest)."""
        return self._safely(
            lambda: (
                self._admin(user)
                or (account_id is not None and self._owner(user, account_id))
                or (not self.admins and self._member(user, channel))
            )
        )

    def visible(self, user: str, account_ids: Iterable[str]) -> set[str] | None:
        """The accounts `user` may see by name; None means all of them (and any to come)."""
        account_ids = list(account_ids)
        try:
            if self._admin(user) or (not self.admins and self._member(user, self.default_channel)):
                return None
            mine = {a for a in account_ids if self._owner(user, a)}
            if not self.admins:
                channels = {a: self.channel_of(a) for a in account_ids if a not in mine}
                mine |= {
                    a
                    for a, channel in channels.items()
                    if channel != self.default_channel and self._member(user, channel)
                }
            return mine
        except _LOOKUP_ERRORS as exc:
            log.warning("cannot tell which accounts %s may see (%s): showing none", user, exc.__class__.__name__)
            return set()

    def owners(self, account_id: str | None) -> tuple[str, ...]:
        """The account's owners as Slack user ids (groups expanded, emails looked up)."""
        account = self.account(account_id)
        return self.people.resolve(account.owners).users if account and account.owners else ()

    def _admin(self, user: str) -> bool:
        return bool(self.admins) and user in self.people.resolve(self.admins).users

    def _owner(self, user: str, account_id: str) -> bool:
        return user in self.owners(account_id)

    def _member(self, user: str, channel: str | None) -> bool:
        return channel is not None and user in self.people.members(channel)

    def _safely(self, decide: Callable[[], bool]) -> bool:
        try:
            return bool(decide())
        except _LOOKUP_ERRORS as exc:
            log.warning("authorization lookup failed (%s): refused", exc.__class__.__name__)
            return False
