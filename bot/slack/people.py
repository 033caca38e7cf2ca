"""Who is who in Slack: user groups expanded, email addresses looked up, channel members listed.

Every answer is cached for a while, so a burst of clicks (or an alert asking many owners) costs one
Slack call per group, address or channel. Failures raise: callers deciding who may act fail closed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

USER_PREFIXES = ("U", "W")


@dataclass(frozen=True)
class Resolved:
    """People named by a list of user ids, user-group ids and email addresses."""

    users: tuple[str, ...]
    unresolved: tuple[str, ...] = ()  # emails nobody in the workspace has


class People:
    def __init__(
        self,
        client: WebClient,
        ttl: float = 60.0,
        email_ttl: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.client = client
        self.ttl = ttl
        self.email_ttl = email_ttl
        self.clock = clock
        self._cache: dict[str, tuple[float, object]] = {}
        self._lock = threading.Lock()

    def resolve(self, entries: Iterable[str]) -> Resolved:
        """User ids as they are, groups expanded, emails looked up, in order and without repeats."""
        users: dict[str, None] = {}
        unresolved = []
        for entry in entries:
            if entry.startswith(USER_PREFIXES) and "@" not in entry:
                users[entry] = None
            elif entry.startswith("S") and "@" not in entry:
                users.update(dict.fromkeys(self.group(entry)))
            else:
                user = self.email(entry)
                if user:
                    users[user] = None
                else:
                    unresolved.append(entry)
        return Resolved(tuple(users), tuple(unresolved))

    def group(self, group_id: str) -> tuple[str, ...]:
        return self._cached(
            f"group:{group_id}",
            self.ttl,
            lambda: tuple(self.client.usergroups_users_list(usergroup=group_id).get("users", [])),
        )

    def email(self, address: str) -> str | None:
        def look_up() -> str | None:
            try:
                return self.client.users_lookupByEmail(email=address)["user"]["id"]
            except SlackApiError as exc:
                if exc.response is not None and exc.response.get("error") == "users_not_found":
                    return None
                raise

        return self._cached(f"email:{address.lower()}", self.email_ttl, look_up)

    def members(self, channel: str) -> frozenset[str]:
        def load() -> frozenset[str]:
            found: set[str] = set()
            cursor = None
            while True:
                page = self.client.conversations_members(channel=channel, limit=1000, cursor=cursor)
                found.update(page.get("members", []))
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    return frozenset(found)

        return self._cached(f"members:{channel}", self.ttl, load)

    def _cached(self, key: str, ttl: float, load: Callable[[], object]):
        now = self.clock()
        with self._lock:
            hit = self._cache.get(key)
        if hit and now - hit[0] < ttl:
            return hit[1]
        value = load()
        with self._lock:
            self._cache[key] = (now, value)
        return value
