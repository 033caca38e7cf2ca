"""Who may acknowledge, scan and announce root use: ROOTCHECK_ADMINS (users, and user groups
expanded with usergroups.users.list), or, when unset, the members of the channel in question.
Lookups are cached briefly so a burst of clicks costs one Slack call.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError


class Authorizer:
    def __init__(self, client: WebClient, admins: list[str], ttl: float = 60.0,
                 clock: Callable[[], float] = time.monotonic):
        self.client = client
        self.admins = admins
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def allowed(self, user: str, channel: str | None) -> bool:
        """True for an admin (or, without admins, a member of `channel`). Fails closed."""
        try:
            if self.admins:
                return user in self._admin_users()
            return bool(channel) and user in self._cached(f"members:{channel}", lambda: self._members(channel))
        except (SlackApiError, SlackRequestError, OSError):
            return False

    def _admin_users(self) -> frozenset[str]:
        users = {a for a in self.admins if a[0] in "UW"}
        for group in (a for a in self.admins if a.startswith("S")):
            users |= self._cached(f"group:{group}", lambda g=group: frozenset(
                self.client.usergroups_users_list(usergroup=g).get("users", [])))
        return frozenset(users)

    def _members(self, channel: str) -> frozenset[str]:
        members: set[str] = set()
        cursor = None
        while True:
            page = self.client.conversations_members(channel=channel, limit=1000, cursor=cursor)
            members.update(page.get("members", []))
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return frozenset(members)

    def _cached(self, key: str, load: Callable[[], frozenset[str]]) -> frozenset[str]:
        now = self.clock()
        with self._lock:
            hit = self._cache.get(key)
        if hit and now - hit[0] < self.ttl:
            return hit[1]
        value = load()
        with self._lock:
            self._cache[key] = (now, value)
        return value
