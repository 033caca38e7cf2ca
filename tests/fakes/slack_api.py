"""A stateful fake of the Slack Web API (plus a Socket Mode server) for tests.

Use in-process::

    from tests.fakes.slack_api import FakeSlack

    with FakeSlack() as fake:
        fake.add_channel("C123", members=["U1", "U2"], bot_is_member=True)
        client = WebClient(token=fake.bot_token, base_url=fake.api_url)
        client.chat_postMessage(channel="C123", text="hi")
        assert fake.messages("C123")[0]["text"] == "hi"

or as a process (for running the product by hand, benchmarks, crash tests)::

    python -m tests.fakes.slack_api --port 0 --channel C0ALERTS --member U0ADMIN

which prints its base API URL (``http://127.0.0.1:<port>/api/``) on one line and
serves until SIGTERM/SIGINT.  Another process can read state and inject faults
over ``/_fake/...`` (see ``_Handler._control``).

Only the standard library and ``websockets`` (Socket Mode server) are used.

Behaviour notes (what real Slack does and this fake copies):

* every Web API method answers HTTP 200 with ``{"ok": false, "error": ...}`` on
  API errors; only injected faults use other statuses (429 carries
  ``Retry-After``);
* the token comes from ``Authorization: Bearer`` or a ``token`` form/JSON/query
  field; bodies may be form-encoded, JSON, or multipart;
* ``conversations.history`` lists top-level messages (and thread broadcasts)
  newest first; thread replies only appear in ``conversations.replies``;
* ``metadata`` is only returned by history/replies with ``include_all_metadata``;
* ``conversations.members`` includes the bot user when the bot is a member;
* message ``ts`` values come from the wall clock (strictly increasing per
  channel) unless ``ts_start`` is given, then they are deterministic:
  ``ts_start``, ``ts_start + 0.000100``, ... per channel;
* ``conversations.open`` (``users=`` one user; scope ``im:write``) gives the
  same ``D...`` id for the same user every time (``no_op``/``already_open``
  after the first); an unknown user is ``user_not_found``, a deactivated one
  ``user_disabled``, a bot ``cannot_dm_bot``.  The IM's members are the bot
  and the user; history/replies there need ``im:history``.
  ``chat.postMessage`` with a user id as ``channel`` posts into that DM (the
  answer names the ``D...`` id); a DM opened before the user was deactivated
  still takes posts;
* ``users.lookupByEmail`` (scope ``users:read.email``) answers
  ``users_not_found`` for unknown *and* deactivated users; ``users.info``
  leaves ``profile.email`` out without ``users:read.email``;
* ``missing_scope`` answers carry ``needed`` and ``provided``.  Only the
  methods added with the scopes above are scope-checked (``conversations.open``,
  ``users.lookupByEmail``, IM history/replies, ``users.info``'s email);
  the older methods are not;
* ``views.open`` takes a ``trigger_id`` the fake issued (``new_trigger_id``)
  at most once (``exchanged_trigger_id``) and within ``trigger_ttl`` seconds
  (default 3; ``expired_trigger_id``); any other id is
  ``invalid_trigger_id``.  The view must be a modal with a ``plain_text``
  title of at most 24 characters, at most 100 blocks, ``private_metadata`` of
  at most 3000 and ``callback_id``/``external_id`` of at most 255 characters,
  a ``submit`` when it has input blocks, else ``invalid_arguments`` with
  ``response_metadata.messages``; a reused ``external_id`` is
  ``duplicate_external_id``.  A refused call does not use up the trigger;
* ``chat.getPermalink`` gives
  ``https://<team domain>.slack.com/archives/<channel>/p<ts without dot>``,
  plus ``?thread_ts=<parent>&cid=<channel>`` for a thread reply;
* ``chat.update``: ``metadata`` given replaces the old one, left out keeps it,
  ``{}`` removes it.  Every successful update is kept with its wall-clock time
  (``edits``);
* rate limits are off unless ``set_rate_limit`` switches them on for a method
  (workspace-wide, or per channel): past the budget the answer is HTTP 429,
  ``{"ok":false,"error":"ratelimited"}`` and ``Retry-After`` in whole seconds.
"""

from __future__ import annotations

import argparse
import base64
import copy
import email.parser
import email.policy
import json
import math
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from decimal import Decimal, InvalidOperation
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

__all__ = ["FakeSlack", "main"]

DEFAULT_SCOPES = (
    "chat:write",
    "channels:history",
    "groups:history",
    "channels:read",
    "groups:read",
    "users:read",
    "usergroups:read",
    "commands",
    "im:write",
    "im:history",
    "users:read.email",
)

# Scopes checked before a method runs (the older methods are not checked; see the notes above).
_NEEDED_SCOPES = {
    "conversations.open": "im:write",
    "users.lookupByEmail": "users:read.email",
}

_VIEW_MAX_BYTES = 250_000

_ERROR_FOR_STATUS = {
    429: "ratelimited",
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


class _ApiError(Exception):
    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, (int, float)):
        return value != 0
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _int(value: Any, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _ApiError("invalid_arguments")


def _ts_key(ts: Any) -> int:
    """'1700000000.000100' -> 1700000000000100 (microseconds)."""
    try:
        d = Decimal(str(ts))
    except (InvalidOperation, ValueError):
        raise _ApiError("invalid_ts_latest")
    return int(d * 1_000_000)


def _fmt_ts(key: int) -> str:
    return f"{key // 1_000_000}.{key % 1_000_000:06d}"


def _encode_cursor(kind: str, value: Any) -> str:
    return base64.b64encode(f"{kind}:{value}".encode()).decode()


def _decode_cursor(cursor: Any, kind: str) -> str | None:
    if not cursor:
        return None
    try:
        k, v = base64.b64decode(str(cursor).encode()).decode().split(":", 1)
    except Exception:
        raise _ApiError("invalid_cursor")
    if k != kind:
        raise _ApiError("invalid_cursor")
    return v


def _parse_json_field(value: Any, error: str, want: type) -> Any:
    """Accept a decoded object or a JSON string of it (form-encoded bodies)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise _ApiError(error)
    if not isinstance(value, want):
        raise _ApiError(error)
    return value


class FakeSlack:
    """Stateful fake Slack Web API + Socket Mode server on 127.0.0.1.

    All public methods are thread-safe.  ``wait_*`` helpers raise
    ``TimeoutError`` when their condition does not hold in time.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        bot_token: str = "xoxb-test-token",
        app_token: str | None = None,
        scopes: Iterable[str] = DEFAULT_SCOPES,
        team_id: str = "T0TEST",
        team: str = "Rootcheck Test",
        bot_user_id: str = "U0BOT",
        bot_user_name: str = "rootcheck",
        bot_id: str = "B0BOT",
        app_id: str = "A0TEST",
        ts_start: float | None = None,
        socket_mode: bool = True,
        trigger_ttl: float = 3.0,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.bot_token = bot_token
        self.app_token = app_token  # None: any "xapp-..." token is accepted
        self.team_id = team_id
        self.team = team
        self.bot_user_id = bot_user_id
        self.bot_user_name = bot_user_name
        self.bot_id = bot_id
        self.app_id = app_id
        self._socket_mode_enabled = socket_mode
        self.trigger_ttl = float(trigger_ttl)
        self._ts_start = (
            None if ts_start is None else _ts_key(repr(ts_start) if isinstance(ts_start, float) else ts_start)
        )

        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)

        self._scopes: list[str] = list(scopes)
        self._token_revoked = False
        self._channels: dict[str, dict[str, Any]] = {}
        self._msgs: dict[str, list[dict[str, Any]]] = {}  # channel -> all messages (incl. replies), ts order
        self._last_ts: dict[str, int] = {}
        self._ephemerals: list[dict[str, Any]] = []
        self._users: dict[str, dict[str, Any]] = {}
        self._usergroups: dict[str, list[str]] = {}
        self._calls: list[dict[str, Any]] = []
        self._responses: dict[str, list[dict[str, Any]]] = {}
        self._in_flight: dict[str, int] = {}
        self._dms: dict[str, str] = {}  # user -> D... channel id
        self._triggers: dict[str, dict[str, Any]] = {}
        self._trigger_seq = 0
        self._views: list[dict[str, Any]] = []
        self._edits: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._rate_limits: dict[str, dict[str, Any]] = {}

        # faults
        self._fail_rules: list[dict[str, Any]] = []
        self._outages: list[dict[str, Any]] = []
        self._errors: dict[str, tuple[str, int]] = {}
        self._delays: dict[str, tuple[float, str]] = {}
        self._dm_errors: dict[str, str] = {}
        self._release = threading.Event()

        # socket mode
        self._ws_server: Any = None
        self._ws_thread: threading.Thread | None = None
        self._ws_port: int | None = None
        self._ws_conns: dict[int, Any] = {}
        self._ws_conn_seq = 0
        self._ws_connect_count = 0
        self._ws_tickets: set = set()
        self._ws_received: list[dict[str, Any]] = []
        self._ws_sent: list[dict[str, Any]] = []

        self._httpd: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self._closed = False

        self.add_user(bot_user_id, name=bot_user_name, is_bot=True)

    # ------------------------------------------------------------------ life cycle

    def start(self) -> FakeSlack:
        if self._httpd is not None:
            return self
        fake = self

        class Handler(_Handler):
            pass

        Handler.fake = fake
        httpd = ThreadingHTTPServer((self.host, self._requested_port), Handler)
        httpd.daemon_threads = True
        self._httpd = httpd
        self._http_thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-slack-http", daemon=True
        )
        self._http_thread.start()
        if self._socket_mode_enabled:
            self._start_ws()
        return self

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._release.set()
        if self._ws_server is not None:
            try:
                self._ws_server.shutdown()
            except Exception:
                pass
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        with self._cond:
            self._cond.notify_all()

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "call start() first"
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """Pass as ``WebClient(base_url=...)``; ends with ``/api/``."""
        return f"{self.base_url}/api/"

    @property
    def ws_port(self) -> int | None:
        return self._ws_port

    # ------------------------------------------------------------------ configuration

    def add_channel(
        self,
        channel_id: str,
        members: Iterable[str] = (),
        bot_is_member: bool = True,
        *,
        name: str | None = None,
        is_private: bool = False,
        is_archived: bool = False,
    ) -> None:
        """Create or reconfigure a channel (existing messages are kept)."""
        with self._cond:
            members = list(members)
            for u in members:
                if u not in self._users:
                    self.add_user(u)
            self._channels[channel_id] = {
                "id": channel_id,
                "name": name or channel_id.lower(),
                "members": members,
                "bot_is_member": bot_is_member,
                "is_private": is_private,
                "is_archived": is_archived,
                "is_im": False,
                "created": int(time.time()),
            }
            self._msgs.setdefault(channel_id, [])
            self._cond.notify_all()

    def set_bot_membership(self, channel_id: str, is_member: bool) -> None:
        with self._cond:
            self._channels[channel_id]["bot_is_member"] = is_member

    def add_user(
        self,
        user_id: str,
        *,
        name: str | None = None,
        real_name: str | None = None,
        is_admin: bool = False,
        is_owner: bool = False,
        is_bot: bool = False,
        deleted: bool = False,
        tz: str = "UTC",
        email: str | None = None,
    ) -> None:
        name = name or user_id.lower()
        with self._cond:
            self._users[user_id] = {
                "id": user_id,
                "team_id": self.team_id,
                "name": name,
                "real_name": real_name or name,
                "deleted": deleted,
                "is_admin": is_admin,
                "is_owner": is_owner,
                "is_bot": is_bot,
                "is_app_user": False,
                "tz": tz,
                "profile": {
                    "real_name": real_name or name,
                    "display_name": name,
                    **({"email": email} if email else {}),
                },
            }

    def add_usergroup(self, usergroup_id: str, users: Iterable[str]) -> None:
        """Create or replace a user group (``S...``); unknown users are created."""
        with self._cond:
            users = list(users)
            for u in users:
                if u not in self._users:
                    self.add_user(u)
            self._usergroups[usergroup_id] = users

    def open_dm(self, user: str) -> str:
        """Open (or find) the bot's DM with ``user`` as if it already existed;
        return its ``D...`` id.  ``user`` is created if unknown."""
        with self._cond:
            if user not in self._users:
                self.add_user(user)
            return self._open_dm_locked(user)["id"]

    def new_trigger_id(self, user: str | None = None) -> str:
        """Issue a trigger id (as Slack puts in a slash command or click
        payload) that ``views.open`` accepts once, within ``trigger_ttl`` s."""
        with self._cond:
            self._trigger_seq += 1
            tid = f"{self._trigger_seq}.{int(time.time())}.{uuid.uuid4().hex[:24]}"
            self._triggers[tid] = {
                "trigger_id": tid,
                "user": user,
                "issued": time.monotonic(),
                "issued_at": time.time(),
                "used": False,
            }
            return tid

    def set_scopes(self, scopes: Iterable[str]) -> None:
        """Scopes reported in the ``x-oauth-scopes`` response header."""
        with self._cond:
            self._scopes = list(scopes)

    def set_token_revoked(self, revoked: bool = True) -> None:
        """While set, every bot-token call answers ``token_revoked``."""
        with self._cond:
            self._token_revoked = revoked

    def add_message(
        self,
        channel: str,
        text: str = "",
        *,
        user: str = "U0HUMAN",
        blocks: list | None = None,
        metadata: dict | None = None,
        thread_ts: str | None = None,
        ts: str | None = None,
    ) -> dict[str, Any]:
        """Seed a message (e.g. from a human) directly, bypassing the API."""
        with self._cond:
            if channel not in self._channels:
                raise KeyError(f"unknown channel {channel}")
            msg = self._store_message(
                channel,
                {"user": user, "text": text, "blocks": blocks, "metadata": metadata, "thread_ts": thread_ts},
                from_bot=False,
                ts=ts,
            )
            return copy.deepcopy(msg)

    # ------------------------------------------------------------------ fault injection

    def fail_next(
        self,
        n: int = 1,
        status: int = 500,
        retry_after: int | None = None,
        method: str | None = None,
        error: str | None = None,
    ) -> None:
        """Answer the next ``n`` matching requests with HTTP ``status``.

        ``method`` limits the rule to one API method (``"response_url"`` for the
        response_url endpoint); ``None`` matches every API method and
        response_url.  429 gets ``Retry-After`` (default 1) and
        ``{"ok":false,"error":"ratelimited"}``.  ``status=0`` drops the
        connection without any response.  Rules are consumed in order.
        """
        with self._cond:
            self._fail_rules.append(
                {
                    "remaining": int(n),
                    "status": int(status),
                    "retry_after": retry_after,
                    "method": method,
                    "error": error,
                }
            )

    def outage(
        self,
        seconds: float,
        status: int = 500,
        method: str | None = None,
        retry_after: int | None = None,
        error: str | None = None,
    ) -> None:
        """Fail every matching request with ``status`` for ``seconds`` from now.
        ``outage(0)`` ends all outages."""
        with self._cond:
            if seconds <= 0:
                self._outages.clear()
                return
            self._outages.append(
                {
                    "until": time.monotonic() + seconds,
                    "status": int(status),
                    "method": method,
                    "retry_after": retry_after,
                    "error": error,
                }
            )

    def set_delay(self, method: str, seconds: float | None, when: str = "before") -> None:
        """Answer ``method`` slowly.  ``when="before"``: wait, then process (the
        message is stored only when the answer is sent); ``when="after"``:
        process/store first, then hold the answer.  ``seconds=None``/0 clears.
        ``release_delays()`` ends every pending delay at once."""
        if when not in ("before", "after"):
            raise ValueError("when must be 'before' or 'after'")
        with self._cond:
            if not seconds:
                self._delays.pop(method, None)
            else:
                self._delays[method] = (float(seconds), when)

    def release_delays(self) -> None:
        """Wake every request currently held by ``set_delay`` and clear delays."""
        with self._cond:
            self._delays.clear()
            old = self._release
            self._release = threading.Event()
        old.set()

    def set_error(self, method: str, error: str | None, status: int = 200) -> None:
        """Permanent ``{"ok":false,"error":error}`` for ``method``; ``None`` clears."""
        with self._cond:
            if error is None:
                self._errors.pop(method, None)
            else:
                self._errors[method] = (error, int(status))

    def set_dm_error(self, user: str, error: str | None) -> None:
        """Make every DM to ``user`` fail with ``error`` (e.g. ``"cannot_dm_bot"``,
        ``"user_disabled"``): ``conversations.open`` for them and
        ``chat.postMessage`` to their user id or open DM.  ``None`` clears."""
        with self._cond:
            if error is None:
                self._dm_errors.pop(user, None)
            else:
                self._dm_errors[user] = error

    def set_rate_limit(
        self,
        method: str,
        per_minute: float | None = None,
        *,
        per_second: float | None = None,
        burst: int | None = None,
        per_channel: bool = False,
    ) -> None:
        """Switch on a rate limit for ``method`` (off by default): a token
        bucket refilled at ``per_minute``/60 (or ``per_second``) per second,
        holding ``burst`` requests (default: ``per_minute``, or one second's
        worth).  Workspace-wide, or one bucket per ``channel`` parameter with
        ``per_channel``.  Past it: HTTP 429, ``ratelimited``, ``Retry-After``.
        Tier 3 (``chat.update``): ``set_rate_limit("chat.update", per_minute=50)``;
        posting: ``set_rate_limit("chat.postMessage", per_second=1, burst=3,
        per_channel=True)``.  Both rates ``None`` switches it off."""
        with self._cond:
            if per_minute is None and per_second is None:
                self._rate_limits.pop(method, None)
                return
            rate = float(per_second) if per_second is not None else float(per_minute) / 60.0  # type: ignore[arg-type]
            if burst is not None:
                capacity = float(burst)
            elif per_minute is not None:
                capacity = float(per_minute)
            else:
                capacity = max(1.0, rate)
            if rate <= 0 or capacity < 1:
                raise ValueError("a rate limit needs a positive rate and room for at least one request")
            self._rate_limits[method] = {
                "per_minute": per_minute,
                "per_second": per_second,
                "burst": capacity,
                "rate": rate,
                "per_channel": bool(per_channel),
                "buckets": {},
            }

    def clear_faults(self) -> None:
        """Drop fail rules, outages, permanent errors, DM errors and delays
        (rate limits stay: ``set_rate_limit(method, None)`` ends one)."""
        with self._cond:
            self._fail_rules.clear()
            self._outages.clear()
            self._errors.clear()
            self._dm_errors.clear()
        self.release_delays()

    # ------------------------------------------------------------------ inspection

    def _public_copy(self, msg: dict[str, Any]) -> dict[str, Any]:
        m = copy.deepcopy(msg)
        m.setdefault("blocks", None)
        m.setdefault("metadata", None)
        m.setdefault("thread_ts", None)
        return m

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """Top-level messages (and thread broadcasts), oldest first.  Each has
        ``ts, text, blocks, metadata, thread_ts, user, update_count, history``
        (previous versions, oldest first), ``reply_count``..."""
        with self._lock:
            return [self._public_copy(m) for m in self._msgs.get(channel, []) if self._is_top_level(m)]

    def all_messages(self, channel: str) -> list[dict[str, Any]]:
        """Every stored message of the channel, replies included, in ts order."""
        with self._lock:
            return [self._public_copy(m) for m in self._msgs.get(channel, [])]

    def replies(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """Replies of the thread ``ts`` (parent excluded), oldest first."""
        with self._lock:
            return [
                self._public_copy(m) for m in self._msgs.get(channel, []) if m.get("thread_ts") == ts and m["ts"] != ts
            ]

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        with self._lock:
            m = self._find(channel, ts)
            return None if m is None else self._public_copy(m)

    def dm_channel(self, user: str) -> str | None:
        """The ``D...`` id of the bot's DM with ``user``, or None if never opened."""
        with self._lock:
            return self._dms.get(user)

    def dm_channels(self) -> dict[str, str]:
        """Every open DM: user id -> ``D...`` id."""
        with self._lock:
            return dict(self._dms)

    def edits(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """Every successful ``chat.update`` of one message, oldest first: the
        message as it was right after it (``text, blocks, attachments,
        metadata``), ``time`` (wall clock) and ``edited_ts``."""
        with self._lock:
            return copy.deepcopy(self._edits.get((channel, ts), []))

    def edit_counts(self, channel: str | None = None) -> dict[str, dict[str, int]]:
        """channel -> {ts: number of successful updates} (only edited messages)."""
        with self._lock:
            out: dict[str, dict[str, int]] = {}
            for (cid, ts), edits in self._edits.items():
                if channel is None or cid == channel:
                    out.setdefault(cid, {})[ts] = len(edits)
            return out

    def views(self) -> list[dict[str, Any]]:
        """Views opened by ``views.open``, in order: ``id, trigger_id, user``
        (the trigger's), ``time`` and ``view`` (as answered)."""
        with self._lock:
            return copy.deepcopy(self._views)

    def triggers(self) -> list[dict[str, Any]]:
        """Issued trigger ids: ``trigger_id, user, issued_at, age, used``."""
        with self._lock:
            now = time.monotonic()
            return [
                {
                    "trigger_id": t["trigger_id"],
                    "user": t["user"],
                    "issued_at": t["issued_at"],
                    "age": now - t["issued"],
                    "used": t["used"],
                }
                for t in self._triggers.values()
            ]

    def ephemerals(self, channel: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(e) for e in self._ephemerals if channel is None or e["channel"] == channel]

    def calls(self, method: str | None = None) -> list[dict[str, Any]]:
        """Params of every received request (failed ones included), in order."""
        with self._lock:
            return [copy.deepcopy(c["params"]) for c in self._calls if method is None or c["method"] == method]

    def call_log(self, method: str | None = None) -> list[dict[str, Any]]:
        """Like ``calls`` with details: method, params, token, status, error, time."""
        with self._lock:
            return [copy.deepcopy(c) for c in self._calls if method is None or c["method"] == method]

    def call_count(self, method: str | None = None, **params: Any) -> int:
        """How many requests came for ``method`` whose params equal ``params``
        (compared as strings), failed ones included; e.g.
        ``call_count("users.lookupByEmail", email="a@example.com")``."""
        with self._lock:
            return sum(
                1
                for c in self._calls
                if (method is None or c["method"] == method)
                and all(k in c["params"] and str(c["params"][k]) == str(v) for k, v in params.items())
            )

    def in_flight(self, method: str | None = None) -> int:
        """Requests currently being processed (e.g. held by ``set_delay``)."""
        with self._lock:
            if method is None:
                return sum(self._in_flight.values())
            return self._in_flight.get(method, 0)

    def reset_calls(self) -> None:
        with self._cond:
            self._calls.clear()

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Poll ``predicate`` (woken on every state change) until truthy; return its value."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate()
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"condition not met within {timeout}s")
                self._cond.wait(min(remaining, 0.05))

    # ------------------------------------------------------------------ response_url

    def new_response_url(self) -> str:
        rid = uuid.uuid4().hex[:16]
        with self._cond:
            self._responses[rid] = []
        return f"{self.base_url}/response/{rid}"

    @staticmethod
    def _response_id(id_or_url: str) -> str:
        return id_or_url.rstrip("/").rsplit("/", 1)[-1]

    def responses(self, id_or_url: str) -> list[dict[str, Any]]:
        """JSON bodies POSTed to a response_url (id or full URL), in order."""
        with self._lock:
            return copy.deepcopy(self._responses.get(self._response_id(id_or_url), []))

    def wait_for_responses(self, id_or_url: str, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        rid = self._response_id(id_or_url)
        self.wait_for(lambda: len(self._responses.get(rid, [])) >= count, timeout)
        return self.responses(rid)

    # ------------------------------------------------------------------ socket mode

    def _start_ws(self) -> None:
        from websockets.sync.server import serve

        def process_request(connection: Any, request: Any) -> Any:
            query = parse_qs(urlparse(request.path).query)
            ticket = (query.get("ticket") or [""])[0]
            with self._lock:
                known = ticket in self._ws_tickets
            if not known:
                return connection.respond(HTTPStatus.UNAUTHORIZED, "invalid ticket\n")
            return None

        self._ws_server = serve(
            self._ws_handler,
            self.host,
            0,
            process_request=process_request,
            compression=None,
            close_timeout=1,
            ping_interval=20,
            ping_timeout=20,
        )
        self._ws_port = self._ws_server.socket.getsockname()[1]
        # Handler threads inherit daemon=True from this thread.
        self._ws_thread = threading.Thread(target=self._ws_server.serve_forever, name="fake-slack-ws", daemon=True)
        self._ws_thread.start()

    def _ws_handler(self, conn: Any) -> None:
        with self._cond:
            self._ws_conn_seq += 1
            cid = self._ws_conn_seq
            n = len(self._ws_conns) + 1
        try:
            hello = {
                "type": "hello",
                "num_connections": n,
                "debug_info": {"host": "fake-slack", "build_number": 1, "approximate_connection_time": 18060},
                "connection_info": {"app_id": self.app_id},
            }
            conn.send(json.dumps(hello))
            # Registered only after hello, so socket_send() never overtakes it.
            with self._cond:
                self._ws_conns[cid] = conn
                self._ws_connect_count += 1
                self._ws_sent.append({"conn": cid, "data": hello, "time": time.time()})
                self._cond.notify_all()
            for raw in conn:
                if isinstance(raw, bytes):
                    raw = raw.decode("utf-8", "replace")
                try:
                    data = json.loads(raw)
                except ValueError:
                    data = None
                with self._cond:
                    self._ws_received.append({"conn": cid, "raw": raw, "data": data, "time": time.time()})
                    self._cond.notify_all()
        except Exception:
            pass
        finally:
            with self._cond:
                self._ws_conns.pop(cid, None)
                self._cond.notify_all()

    def socket_connections(self) -> int:
        """Number of currently open Socket Mode connections."""
        with self._lock:
            return len(self._ws_conns)

    def socket_connect_count(self) -> int:
        """Total Socket Mode connections ever accepted."""
        with self._lock:
            return self._ws_connect_count

    def wait_for_socket_connection(self, count: int = 1, timeout: float = 5.0) -> None:
        self.wait_for(lambda: len(self._ws_conns) >= count, timeout)

    def socket_send(self, envelope: dict[str, Any], timeout: float = 5.0) -> str:
        """Deliver ``envelope`` to the newest open connection (waits up to
        ``timeout`` for one).  Fills in ``envelope_id`` if missing; returns it."""
        envelope = dict(envelope)
        envelope.setdefault("envelope_id", uuid.uuid4().hex)
        self.wait_for(lambda: self._ws_conns, timeout)
        with self._lock:
            cid = max(self._ws_conns)
            conn = self._ws_conns[cid]
        conn.send(json.dumps(envelope))
        with self._cond:
            self._ws_sent.append({"conn": cid, "data": envelope, "time": time.time()})
            self._cond.notify_all()
        return envelope["envelope_id"]

    def socket_send_disconnect(
        self, reason: str = "refresh_requested", close_old: bool = False, timeout: float = 5.0
    ) -> None:
        """Send Slack's ``{"type":"disconnect"}``; the client should open a new
        connection.  With ``close_old`` wait for that new connection, then close
        the previous ones server-side, as Slack does a little later.  (slack_sdk's
        builtin client needs up to ~3 s to drop the old socket by itself.)"""
        with self._lock:
            old_ids = set(self._ws_conns)
            before = self._ws_connect_count
        self.socket_send({"type": "disconnect", "reason": reason, "debug_info": {"host": "fake-slack"}}, timeout)
        if close_old:
            self.wait_for(lambda: self._ws_connect_count > before, timeout)
            self.socket_close_all(only=old_ids)

    def socket_close_all(self, only: Iterable[int] | None = None) -> None:
        """Close open Socket Mode connections (all, or the ids in ``only``) from
        the server side, with a WebSocket close frame."""
        with self._lock:
            conns = [c for i, c in self._ws_conns.items() if only is None or i in set(only)]
        for c in conns:
            try:
                c.close()
            except Exception:
                pass

    def socket_received(self, envelope_id: str | None = None) -> list[dict[str, Any]]:
        """Decoded JSON messages the clients sent (acks), optionally for one envelope."""
        with self._lock:
            out = [copy.deepcopy(r["data"]) for r in self._ws_received if isinstance(r["data"], dict)]
        if envelope_id is not None:
            out = [m for m in out if m.get("envelope_id") == envelope_id]
        return out

    def socket_sent(self) -> list[dict[str, Any]]:
        """Everything the fake sent over Socket Mode (hello included)."""
        with self._lock:
            return [copy.deepcopy(r["data"]) for r in self._ws_sent]

    def wait_for_socket_ack(self, envelope_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """Return the first message the client sent for ``envelope_id``."""

        def find() -> dict[str, Any] | None:
            for r in self._ws_received:
                if isinstance(r["data"], dict) and r["data"].get("envelope_id") == envelope_id:
                    return r["data"]
            return None

        try:
            return copy.deepcopy(self.wait_for(find, timeout))
        except TimeoutError:
            raise TimeoutError(f"no ack for envelope {envelope_id!r} within {timeout}s") from None

    # ------------------------------------------------------------------ internals: messages

    @staticmethod
    def _is_top_level(m: dict[str, Any]) -> bool:
        return m.get("thread_ts") in (None, m["ts"]) or m.get("subtype") == "thread_broadcast"

    def _find(self, channel: str, ts: str) -> dict[str, Any] | None:
        for m in self._msgs.get(channel, []):
            if m["ts"] == ts:
                return m
        return None

    def _next_ts(self, channel: str) -> str:
        last = self._last_ts.get(channel)
        if self._ts_start is not None:
            key = self._ts_start if last is None else last + 100
        else:
            key = int(time.time() * 1_000_000)
            if last is not None and key <= last:
                key = last + 1
        self._last_ts[channel] = key
        return _fmt_ts(key)

    def _store_message(
        self, channel: str, fields: dict[str, Any], from_bot: bool, ts: str | None = None
    ) -> dict[str, Any]:
        if ts is None:
            ts = self._next_ts(channel)
        else:
            self._last_ts[channel] = max(self._last_ts.get(channel, 0), _ts_key(ts))
        msg: dict[str, Any] = {"type": "message", "ts": ts, "channel": channel}
        if from_bot:
            msg.update({"user": self.bot_user_id, "bot_id": self.bot_id, "app_id": self.app_id, "team": self.team_id})
        else:
            msg.update({"user": fields.get("user"), "team": self.team_id})
        msg["text"] = fields.get("text") or ""
        for k in ("blocks", "attachments", "metadata", "unfurl_links", "unfurl_media", "username", "icon_emoji"):
            if fields.get(k) is not None:
                msg[k] = fields[k]
        thread_ts = fields.get("thread_ts")
        if thread_ts:
            msg["thread_ts"] = thread_ts
            msg["parent_user_id"] = None
            if fields.get("reply_broadcast"):
                msg["subtype"] = "thread_broadcast"
        msg["update_count"] = 0
        msg["history"] = []
        self._msgs.setdefault(channel, []).append(msg)
        self._msgs[channel].sort(key=lambda m: _ts_key(m["ts"]))
        if thread_ts:
            parent = self._find(channel, thread_ts)
            if parent is not None:
                msg["parent_user_id"] = parent.get("user")
                parent["thread_ts"] = parent["ts"]
                parent["reply_count"] = parent.get("reply_count", 0) + 1
                users = parent.setdefault("reply_users", [])
                if msg.get("user") not in users:
                    users.append(msg.get("user"))
                parent["reply_users_count"] = len(users)
                parent["latest_reply"] = ts
        self._cond.notify_all()
        return msg

    def _api_view(self, m: dict[str, Any], include_metadata: bool = True) -> dict[str, Any]:
        out = {k: copy.deepcopy(v) for k, v in m.items() if k not in ("history", "update_count", "channel")}
        if out.get("parent_user_id") is None:
            out.pop("parent_user_id", None)
        if not include_metadata:
            out.pop("metadata", None)
        return out

    def _open_dm_locked(self, user: str) -> dict[str, Any]:
        did = self._dms.get(user)
        if did is not None:
            return self._channels[did]
        base = "D" + (user[1:] if len(user) > 1 else user)
        did, n = base, 1
        while did in self._channels:
            n += 1
            did = f"{base}{n}"
        self._channels[did] = {
            "id": did,
            "name": None,
            "members": [user],
            "bot_is_member": True,
            "is_private": True,
            "is_archived": False,
            "is_im": True,
            "user": user,
            "created": int(time.time()),
        }
        self._msgs.setdefault(did, [])
        self._dms[user] = did
        self._cond.notify_all()
        return self._channels[did]

    def _team_domain(self) -> str:
        return self.team.lower().replace(" ", "-")

    # ------------------------------------------------------------------ internals: dispatch

    def _match_fault(self, method: str) -> dict[str, Any] | None:
        with self._cond:
            now = time.monotonic()
            self._outages = [o for o in self._outages if o["until"] > now]
            for o in self._outages:
                if o["method"] in (None, method):
                    return o
            for rule in self._fail_rules:
                if rule["remaining"] > 0 and rule["method"] in (None, method):
                    rule["remaining"] -= 1
                    self._fail_rules = [r for r in self._fail_rules if r["remaining"] > 0]
                    return rule
        return None

    def _record(self, method: str, params: dict[str, Any], token: str | None) -> dict[str, Any]:
        rec = {"method": method, "params": params, "token": token, "status": None, "error": None, "time": time.time()}
        with self._cond:
            self._calls.append(rec)
            self._in_flight[method] = self._in_flight.get(method, 0) + 1
            self._cond.notify_all()
        return rec

    def _finish(self, rec: dict[str, Any], status: int, error: str | None) -> None:
        with self._cond:
            rec["status"] = status
            rec["error"] = error
            self._in_flight[rec["method"]] -= 1
            self._cond.notify_all()

    def _hold(self, seconds: float) -> None:
        self._release.wait(seconds)

    def handle_api(
        self, method: str, params: dict[str, Any], token: str | None
    ) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        """Return (status, headers, body); body None with status 0 = drop connection."""
        rec = self._record(method, params, token)
        status, headers, body = 200, {}, None
        try:
            fault = self._match_fault(method)
            if fault is not None:
                status, headers, body = self._fault_response(fault)
                return status, headers, body
            retry_after = self._take_rate_token(method, params)
            if retry_after is not None:
                status, headers = 429, {"Retry-After": str(retry_after)}
                body = {"ok": False, "error": "ratelimited"}
                return status, headers, body
            with self._lock:
                delay = self._delays.get(method)
            if delay and delay[1] == "before":
                self._hold(delay[0])
            with self._cond:
                err = self._errors.get(method)
                if err is not None:
                    status, body = err[1], {"ok": False, "error": err[0]}
                else:
                    try:
                        headers, body = self._dispatch(method, params, token)
                    except _ApiError as e:
                        body = {"ok": False, "error": e.error, **e.extra}
                        if e.error not in ("invalid_auth", "not_authed", "token_revoked", "not_allowed_token_type"):
                            headers = self._scope_headers()
                self._cond.notify_all()
            if delay and delay[1] == "after":
                self._hold(delay[0])
            return status, headers, body
        finally:
            self._finish(rec, status, None if body is None or body.get("ok") else body.get("error"))

    def _take_rate_token(self, method: str, params: dict[str, Any]) -> int | None:
        """None if the request is within the method's rate limit (and count it),
        else the whole seconds until one more request would be."""
        with self._cond:
            rl = self._rate_limits.get(method)
            if rl is None:
                return None
            key = str(params.get("channel") or "") if rl["per_channel"] else ""
            now = time.monotonic()
            tokens, last = rl["buckets"].get(key, (rl["burst"], now))
            tokens = min(rl["burst"], tokens + (now - last) * rl["rate"])
            if tokens >= 1:
                rl["buckets"][key] = (tokens - 1, now)
                return None
            rl["buckets"][key] = (tokens, now)
            return max(1, math.ceil((1 - tokens) / rl["rate"]))

    def _fault_response(self, fault: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        status = fault["status"]
        if status == 0:
            return 0, {}, None
        headers: dict[str, str] = {}
        if status == 429:
            headers["Retry-After"] = str(fault["retry_after"] if fault["retry_after"] is not None else 1)
        elif fault.get("retry_after") is not None:
            headers["Retry-After"] = str(fault["retry_after"])
        error = fault.get("error") or _ERROR_FOR_STATUS.get(status, "fatal_error")
        return status, headers, {"ok": False, "error": error}

    def _scope_headers(self) -> dict[str, str]:
        # lower-case on purpose: slack_bolt reads headers.get("x-oauth-scopes")
        return {"x-oauth-scopes": ",".join(self._scopes)}

    def _require_scope(self, scope: str) -> None:
        if scope not in self._scopes:
            raise _ApiError("missing_scope", needed=scope, provided=",".join(self._scopes))

    def _require_bot(self, token: str | None) -> None:
        if not token:
            raise _ApiError("not_authed")
        if token.startswith("xapp-"):
            raise _ApiError("not_allowed_token_type")
        if token != self.bot_token:
            raise _ApiError("invalid_auth")
        if self._token_revoked:
            raise _ApiError("token_revoked")

    def _channel(self, params: dict[str, Any], key: str = "channel") -> dict[str, Any]:
        cid = params.get(key)
        if not cid:
            raise _ApiError("channel_not_found")
        cid = str(cid)
        ch = self._channels.get(cid)
        if ch is None:
            name = cid.lstrip("#")
            for c in self._channels.values():
                if c["name"] == name:
                    return c
            raise _ApiError("channel_not_found")
        return ch

    def _dispatch(self, method: str, p: dict[str, Any], token: str | None) -> tuple[dict[str, str], dict[str, Any]]:
        if method == "apps.connections.open":
            return {}, self._apps_connections_open(token)
        handler = _METHODS.get(method)
        if handler is None:
            raise _ApiError("unknown_method")
        self._require_bot(token)
        needed = _NEEDED_SCOPES.get(method)
        if needed:
            self._require_scope(needed)
        return self._scope_headers(), handler(self, p)

    # ------------------------------------------------------------------ methods

    def _apps_connections_open(self, token: str | None) -> dict[str, Any]:
        if not token:
            raise _ApiError("not_authed")
        if not token.startswith("xapp-"):
            raise _ApiError("not_allowed_token_type")
        if self.app_token is not None and token != self.app_token:
            raise _ApiError("invalid_auth")
        if self._ws_port is None:
            raise _ApiError("socket_mode_disabled")
        ticket = uuid.uuid4().hex
        self._ws_tickets.add(ticket)
        return {"ok": True, "url": f"ws://{self.host}:{self._ws_port}/link/?ticket={ticket}&app_id={self.app_id}"}

    def _m_auth_test(self, p: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": f"https://{self._team_domain()}.slack.com/",
            "team": self.team,
            "user": self.bot_user_name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _message_fields(self, p: dict[str, Any], update: bool = False) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if "text" in p and p["text"] is not None:
            fields["text"] = str(p["text"])
        if "blocks" in p:
            fields["blocks"] = _parse_json_field(p["blocks"], "invalid_blocks", list)
        if "attachments" in p:
            fields["attachments"] = _parse_json_field(p["attachments"], "invalid_attachments", list)
        if "metadata" in p:
            md = _parse_json_field(p["metadata"], "invalid_metadata_format", dict)
            if update and md == {}:
                md = None  # chat.update: an empty object removes the metadata
            if md is not None and (
                not isinstance(md.get("event_type"), str) or not isinstance(md.get("event_payload"), dict)
            ):
                raise _ApiError("invalid_metadata_format")
            fields["metadata"] = md
        return fields

    def _m_chat_post_message(self, p: dict[str, Any]) -> dict[str, Any]:
        target = str(p.get("channel") or "")
        if target in self._users and target not in self._channels:
            # a user id as channel: Slack posts into the bot's DM with that user
            self._dm_check(target, deactivated_ok=True)
            ch = self._open_dm_locked(target)
        else:
            ch = self._channel(p)
        if ch.get("is_im"):
            err = self._dm_errors.get(ch["user"])
            if err:
                raise _ApiError(err)
        if ch["is_archived"]:
            raise _ApiError("is_archived")
        if not ch["bot_is_member"]:
            raise _ApiError("not_in_channel")
        fields = self._message_fields(p)
        if not fields.get("text") and not fields.get("blocks") and not fields.get("attachments"):
            raise _ApiError("no_text")
        thread_ts = p.get("thread_ts") or None
        if thread_ts:
            thread_ts = str(thread_ts)
            parent = self._find(ch["id"], thread_ts)
            if parent is None:
                raise _ApiError("thread_not_found")
            if parent.get("thread_ts") not in (None, parent["ts"]):
                thread_ts = parent["thread_ts"]  # replying to a reply lands in the same thread
            fields["thread_ts"] = thread_ts
            fields["reply_broadcast"] = _truthy(p.get("reply_broadcast"))
        for k in ("unfurl_links", "unfurl_media"):
            if k in p:
                fields[k] = _truthy(p[k])
        for k in ("username", "icon_emoji"):
            if p.get(k):
                fields[k] = p[k]
        msg = self._store_message(ch["id"], fields, from_bot=True)
        view = self._api_view(msg)
        view.pop("unfurl_links", None)
        view.pop("unfurl_media", None)
        view["bot_profile"] = {
            "id": self.bot_id,
            "app_id": self.app_id,
            "name": self.bot_user_name,
            "team_id": self.team_id,
        }
        return {"ok": True, "channel": ch["id"], "ts": msg["ts"], "message": view}

    def _m_chat_update(self, p: dict[str, Any]) -> dict[str, Any]:
        ch = self._channel(p)
        ts = p.get("ts")
        msg = self._find(ch["id"], str(ts)) if ts else None
        if msg is None:
            raise _ApiError("message_not_found")
        if msg.get("bot_id") != self.bot_id:
            raise _ApiError("cant_update_message")
        fields = self._message_fields(p, update=True)
        if not fields:
            raise _ApiError("no_text")
        prev = {k: copy.deepcopy(msg.get(k)) for k in ("text", "blocks", "attachments", "metadata")}
        prev["edited_ts"] = msg.get("edited", {}).get("ts")
        msg["history"].append(prev)
        # Like Slack: fields not sent are kept; blocks=[] removes the blocks.
        for k, v in fields.items():
            if v is None or (k in ("blocks", "attachments") and v == []):
                msg.pop(k, None)
            else:
                msg[k] = v
        msg["update_count"] += 1
        now = time.time()
        msg["edited"] = {"user": self.bot_user_id, "ts": _fmt_ts(int(now * 1_000_000))}
        edit = {k: copy.deepcopy(msg.get(k)) for k in ("text", "blocks", "attachments", "metadata")}
        edit.update({"time": now, "edited_ts": msg["edited"]["ts"]})
        self._edits.setdefault((ch["id"], msg["ts"]), []).append(edit)
        self._cond.notify_all()
        view = self._api_view(msg)
        return {"ok": True, "channel": ch["id"], "ts": msg["ts"], "text": msg.get("text", ""), "message": view}

    def _m_chat_delete(self, p: dict[str, Any]) -> dict[str, Any]:
        ch = self._channel(p)
        ts = str(p.get("ts") or "")
        msg = self._find(ch["id"], ts)
        if msg is None:
            raise _ApiError("message_not_found")
        if msg.get("bot_id") != self.bot_id:
            raise _ApiError("cant_delete_message")
        self._msgs[ch["id"]].remove(msg)
        return {"ok": True, "channel": ch["id"], "ts": ts}

    def _m_chat_post_ephemeral(self, p: dict[str, Any]) -> dict[str, Any]:
        ch = self._channel(p)
        if not ch["bot_is_member"]:
            raise _ApiError("not_in_channel")
        user = p.get("user")
        if not user or user not in self._users:
            raise _ApiError("user_not_found")
        if user not in ch["members"]:
            raise _ApiError("user_not_in_channel")
        fields = self._message_fields(p)
        if not fields.get("text") and not fields.get("blocks") and not fields.get("attachments"):
            raise _ApiError("no_text")
        ts = _fmt_ts(int(time.time() * 1_000_000))
        rec = {"channel": ch["id"], "user": user, "ts": ts, "thread_ts": p.get("thread_ts") or None}
        rec.update({k: fields.get(k) for k in ("text", "blocks", "attachments")})
        self._ephemerals.append(rec)
        return {"ok": True, "message_ts": ts}

    def _member_check(self, ch: dict[str, Any]) -> None:
        if ch.get("is_im"):
            self._require_scope("im:history")
        if not ch["bot_is_member"]:
            raise _ApiError("not_in_channel")

    def _m_conversations_history(self, p: dict[str, Any]) -> dict[str, Any]:
        ch = self._channel(p)
        self._member_check(ch)
        limit = _int(p.get("limit"), 100) or 100
        limit = min(limit, 999)
        inclusive = _truthy(p.get("inclusive"))
        oldest = _ts_key(p["oldest"]) if p.get("oldest") not in (None, "") else None
        latest = _ts_key(p["latest"]) if p.get("latest") not in (None, "") else None
        include_md = _truthy(p.get("include_all_metadata"))
        before = _decode_cursor(p.get("cursor"), "before")
        before_key = _ts_key(before) if before else None

        def keep(m: dict[str, Any]) -> bool:
            k = _ts_key(m["ts"])
            if oldest is not None and (k < oldest or (k == oldest and not inclusive)):
                return False
            if latest is not None and (k > latest or (k == latest and not inclusive)):
                return False
            if before_key is not None and k >= before_key:
                return False
            return True

        top = [m for m in reversed(self._msgs[ch["id"]]) if self._is_top_level(m) and keep(m)]
        page, rest = top[:limit], top[limit:]
        out: dict[str, Any] = {
            "ok": True,
            "messages": [self._api_view(m, include_md) for m in page],
            "has_more": bool(rest),
            "pin_count": 0,
        }
        out["response_metadata"] = {"next_cursor": _encode_cursor("before", page[-1]["ts"]) if rest else ""}
        return out

    def _m_conversations_replies(self, p: dict[str, Any]) -> dict[str, Any]:
        ch = self._channel(p)
        self._member_check(ch)
        ts = str(p.get("ts") or "")
        msg = self._find(ch["id"], ts)
        if msg is None:
            raise _ApiError("thread_not_found")
        root = msg.get("thread_ts") or msg["ts"]
        parent = self._find(ch["id"], root)
        thread = ([parent] if parent is not None else []) + [
            m for m in self._msgs[ch["id"]] if m.get("thread_ts") == root and m["ts"] != root
        ]
        inclusive = _truthy(p.get("inclusive"))
        oldest = _ts_key(p["oldest"]) if p.get("oldest") not in (None, "") else None
        latest = _ts_key(p["latest"]) if p.get("latest") not in (None, "") else None

        def keep(m: dict[str, Any]) -> bool:
            if m is parent:
                return True  # Slack always returns the parent first
            k = _ts_key(m["ts"])
            if oldest is not None and (k < oldest or (k == oldest and not inclusive)):
                return False
            if latest is not None and (k > latest or (k == latest and not inclusive)):
                return False
            return True

        thread = [m for m in thread if keep(m)]
        include_md = _truthy(p.get("include_all_metadata"))
        return self._paginate(thread, p, 1000, "messages", lambda m: self._api_view(m, include_md))

    def _paginate(
        self, items: list[Any], p: dict[str, Any], default_limit: int, key: str, view: Callable[[Any], Any]
    ) -> dict[str, Any]:
        limit = _int(p.get("limit"), default_limit) or default_limit
        offset = int(_decode_cursor(p.get("cursor"), "offset") or 0)
        page = items[offset : offset + limit]
        more = offset + limit < len(items)
        return {
            "ok": True,
            key: [view(x) for x in page],
            "has_more": more,
            "response_metadata": {"next_cursor": _encode_cursor("offset", offset + limit) if more else ""},
        }

    def _all_members(self, ch: dict[str, Any]) -> list[str]:
        members = list(ch["members"])
        if ch["bot_is_member"] and self.bot_user_id not in members:
            members.append(self.bot_user_id)
        return members

    def _m_conversations_members(self, p: dict[str, Any]) -> dict[str, Any]:
        ch = self._channel(p)
        if ch["is_private"] and not ch["bot_is_member"]:
            raise _ApiError("channel_not_found")
        out = self._paginate(self._all_members(ch), p, 100, "members", lambda u: u)
        out.pop("has_more", None)
        return out

    def _im_info(self, ch: dict[str, Any]) -> dict[str, Any]:
        user = self._users.get(ch["user"], {})
        return {
            "id": ch["id"],
            "created": ch["created"],
            "is_im": True,
            "is_org_shared": False,
            "context_team_id": self.team_id,
            "user": ch["user"],
            "is_user_deleted": bool(user.get("deleted")),
            "priority": 0,
        }

    def _m_conversations_info(self, p: dict[str, Any]) -> dict[str, Any]:
        ch = self._channel(p)
        if ch["is_private"] and not ch["bot_is_member"]:
            raise _ApiError("channel_not_found")
        if ch.get("is_im"):
            return {"ok": True, "channel": self._im_info(ch)}
        info = {
            "id": ch["id"],
            "name": ch["name"],
            "is_channel": not ch["is_private"],
            "is_group": ch["is_private"],
            "is_im": False,
            "is_private": ch["is_private"],
            "is_archived": ch["is_archived"],
            "is_member": ch["bot_is_member"],
            "created": ch["created"],
            "context_team_id": self.team_id,
        }
        if _truthy(p.get("include_num_members")):
            info["num_members"] = len(self._all_members(ch))
        return {"ok": True, "channel": info}

    def _m_conversations_join(self, p: dict[str, Any]) -> dict[str, Any]:
        ch = self._channel(p)
        if ch.get("is_im") or (ch["is_private"] and not ch["bot_is_member"]):
            raise _ApiError("method_not_supported_for_channel_type")
        ch["bot_is_member"] = True
        return {"ok": True, "channel": self._m_conversations_info({"channel": ch["id"]})["channel"]}

    def _user_view(self, u: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(u)
        if "users:read.email" not in self._scopes:
            out["profile"].pop("email", None)
        return out

    def _m_users_info(self, p: dict[str, Any]) -> dict[str, Any]:
        u = self._users.get(str(p.get("user") or ""))
        if u is None:
            raise _ApiError("user_not_found")
        return {"ok": True, "user": self._user_view(u)}

    def _m_users_lookup_by_email(self, p: dict[str, Any]) -> dict[str, Any]:
        email = str(p.get("email") or "").strip().casefold()
        if email:
            for u in self._users.values():
                if not u["deleted"] and str(u["profile"].get("email", "")).casefold() == email:
                    return {"ok": True, "user": self._user_view(u)}
        raise _ApiError("users_not_found")  # deactivated users too, like Slack

    def _dm_check(self, user: str, deactivated_ok: bool = False) -> None:
        u = self._users.get(user)
        if u is None:
            raise _ApiError("user_not_found")
        err = self._dm_errors.get(user)
        if err:
            raise _ApiError(err)
        if u["is_bot"]:
            raise _ApiError("cannot_dm_bot")
        if u["deleted"] and not deactivated_ok:
            raise _ApiError("user_disabled")

    def _m_conversations_open(self, p: dict[str, Any]) -> dict[str, Any]:
        if _truthy(p.get("prevent_creation")):
            raise _ApiError("fake_unsupported_argument", detail="prevent_creation is not modelled by the fake")
        users = [u.strip() for u in str(p.get("users") or "").split(",") if u.strip()]
        if not users:
            if not p.get("channel"):
                raise _ApiError("users_list_not_supplied")
            ch = self._channel(p)
            if not ch.get("is_im"):
                raise _ApiError("method_not_supported_for_channel_type")
            existed = True
        else:
            if len(users) > 8:
                raise _ApiError("too_many_users")
            if len(users) > 1:
                raise _ApiError("fake_unsupported_argument", detail="multi-person DMs are not modelled by the fake")
            self._dm_check(users[0])
            existed = users[0] in self._dms
            ch = self._open_dm_locked(users[0])
        out: dict[str, Any] = {"ok": True}
        if existed:
            out.update({"no_op": True, "already_open": True})
        if _truthy(p.get("return_im")):
            info = self._im_info(ch)
            info.update(
                {"is_open": True, "last_read": "0000000000.000000", "unread_count": 0, "unread_count_display": 0}
            )
            out["channel"] = info
        else:
            out["channel"] = {"id": ch["id"]}
        return out

    def _m_chat_get_permalink(self, p: dict[str, Any]) -> dict[str, Any]:
        ch = self._channel(p)
        if ch["is_private"] and not ch["bot_is_member"]:
            raise _ApiError("channel_not_found")
        ts = str(p.get("message_ts") or "")
        msg = self._find(ch["id"], ts) if ts else None
        if msg is None:
            raise _ApiError("message_not_found")
        link = f"https://{self._team_domain()}.slack.com/archives/{ch['id']}/p{ts.replace('.', '')}"
        root = msg.get("thread_ts")
        if root and root != ts:
            link += f"?thread_ts={root}&cid={ch['id']}"
        return {"ok": True, "channel": ch["id"], "permalink": link}

    @staticmethod
    def _view_errors(view: dict[str, Any]) -> list[str]:
        """Slack-style ``[ERROR] ... [json-pointer:/view/...]`` messages, [] if valid."""
        msgs: list[str] = []

        def err(text: str, pointer: str) -> None:
            msgs.append(f"[ERROR] {text} [json-pointer:/view{pointer}]")

        def plain_text(key: str, required: bool) -> None:
            obj = view.get(key)
            if obj is None:
                if required:
                    err("missing required field: " + key, "")
                return
            if not isinstance(obj, dict) or obj.get("type") != "plain_text" or not isinstance(obj.get("text"), str):
                err("must be a plain_text text object", "/" + key)
            elif not obj["text"]:
                err("must be more than 0 characters", f"/{key}/text")
            elif len(obj["text"]) > 24:
                err("must be less than 25 characters", f"/{key}/text")

        if view.get("type") != "modal":
            err("must be modal", "/type")
        plain_text("title", required=True)
        plain_text("close", required=False)
        plain_text("submit", required=False)
        blocks = view.get("blocks")
        if blocks is None:
            err("missing required field: blocks", "")
        elif not isinstance(blocks, list):
            err("must be an array", "/blocks")
        elif len(blocks) > 100:
            err("no more than 100 items allowed", "/blocks")
        else:
            for i, b in enumerate(blocks):
                if not isinstance(b, dict) or not isinstance(b.get("type"), str):
                    err("must be a block object with a type", f"/blocks/{i}")
            if any(isinstance(b, dict) and b.get("type") == "input" for b in blocks) and view.get("submit") is None:
                err("must provide a submit button when there is an input block", "/submit")
        for key, limit in (("private_metadata", 3000), ("callback_id", 255), ("external_id", 255)):
            v = view.get(key)
            if v is None:
                continue
            if not isinstance(v, str):
                err("must be a string", "/" + key)
            elif len(v) > limit:
                err(f"must be less than {limit + 1} characters", "/" + key)
        return msgs

    def _m_views_open(self, p: dict[str, Any]) -> dict[str, Any]:
        def missing(field: str) -> _ApiError:
            message = f"[ERROR] missing required field: {field}"
            return _ApiError("invalid_arguments", response_metadata={"messages": [message]})

        tid = str(p.get("trigger_id") or p.get("interactivity_pointer") or "")
        if not tid:
            raise missing("trigger_id")
        raw = p.get("view")
        if raw in (None, ""):
            raise missing("view")
        view = _parse_json_field(raw, "invalid_arguments", dict)
        if len(json.dumps(view).encode("utf-8")) > _VIEW_MAX_BYTES:
            raise _ApiError("view_too_large")
        msgs = self._view_errors(view)
        if msgs:
            raise _ApiError("invalid_arguments", response_metadata={"messages": msgs})
        trigger = self._triggers.get(tid)
        if trigger is None:
            raise _ApiError("invalid_trigger_id")
        if trigger["used"]:
            raise _ApiError("exchanged_trigger_id")
        if time.monotonic() - trigger["issued"] > self.trigger_ttl:
            raise _ApiError("expired_trigger_id")
        external_id = view.get("external_id") or ""
        if external_id and any(v["view"]["external_id"] == external_id for v in self._views):
            raise _ApiError("duplicate_external_id")
        trigger["used"] = True
        vid = "V" + uuid.uuid4().hex[:10].upper()
        out = {
            "id": vid,
            "team_id": self.team_id,
            "type": "modal",
            "title": copy.deepcopy(view["title"]),
            **({"close": copy.deepcopy(view["close"])} if view.get("close") else {}),
            **({"submit": copy.deepcopy(view["submit"])} if view.get("submit") else {}),
            "blocks": copy.deepcopy(view["blocks"]),
            "private_metadata": view.get("private_metadata") or "",
            "callback_id": view.get("callback_id") or "",
            "external_id": external_id,
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{uuid.uuid4().hex[:8]}",
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "root_view_id": vid,
            "previous_view_id": None,
            "app_id": self.app_id,
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        self._views.append({"id": vid, "trigger_id": tid, "user": trigger["user"], "time": time.time(), "view": out})
        return {"ok": True, "view": copy.deepcopy(out)}

    def _m_usergroups_users_list(self, p: dict[str, Any]) -> dict[str, Any]:
        ug = self._usergroups.get(str(p.get("usergroup") or ""))
        if ug is None:
            raise _ApiError("no_such_subteam")
        return {"ok": True, "users": list(ug)}

    # ------------------------------------------------------------------ response_url handling

    def handle_response_url(self, rid: str, body: Any) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        rec = self._record("response_url", {"id": rid, "body": body}, None)
        status, headers, out = 200, {}, None
        try:
            fault = self._match_fault("response_url")
            if fault is not None:
                status, headers, out = self._fault_response(fault)
                return status, headers, out
            with self._cond:
                if rid not in self._responses:
                    status, out = 404, {"ok": False, "error": "expired_url"}
                elif not isinstance(body, dict):
                    status, out = 400, {"ok": False, "error": "invalid_payload"}
                else:
                    self._responses[rid].append(body)
                    out = {"ok": True}
                self._cond.notify_all()
            return status, headers, out
        finally:
            self._finish(rec, status, None if out is None or out.get("ok") else out.get("error"))

    # ------------------------------------------------------------------ state for the control endpoint

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "api_url": self.api_url,
                "channels": {
                    cid: {
                        "members": list(ch["members"]),
                        "bot_is_member": ch["bot_is_member"],
                        "messages": len([m for m in self._msgs[cid] if self._is_top_level(m)]),
                        "all_messages": len(self._msgs[cid]),
                        "is_im": bool(ch.get("is_im")),
                    }
                    for cid, ch in self._channels.items()
                },
                "ephemerals": len(self._ephemerals),
                "calls": len(self._calls),
                "socket_connections": len(self._ws_conns),
                "token_revoked": self._token_revoked,
                "scopes": list(self._scopes),
                "dm_channels": dict(self._dms),
                "dm_errors": dict(self._dm_errors),
                "views": len(self._views),
                "triggers": len(self._triggers),
                "edits": self.edit_counts(),
                "rate_limits": {
                    m: {k: rl[k] for k in ("per_minute", "per_second", "burst", "per_channel")}
                    for m, rl in self._rate_limits.items()
                },
            }


_METHODS: dict[str, Callable[[FakeSlack, dict[str, Any]], dict[str, Any]]] = {
    "auth.test": FakeSlack._m_auth_test,
    "chat.postMessage": FakeSlack._m_chat_post_message,
    "chat.update": FakeSlack._m_chat_update,
    "chat.delete": FakeSlack._m_chat_delete,
    "chat.postEphemeral": FakeSlack._m_chat_post_ephemeral,
    "chat.getPermalink": FakeSlack._m_chat_get_permalink,
    "conversations.history": FakeSlack._m_conversations_history,
    "conversations.replies": FakeSlack._m_conversations_replies,
    "conversations.members": FakeSlack._m_conversations_members,
    "conversations.info": FakeSlack._m_conversations_info,
    "conversations.join": FakeSlack._m_conversations_join,
    "conversations.open": FakeSlack._m_conversations_open,
    "users.info": FakeSlack._m_users_info,
    "users.lookupByEmail": FakeSlack._m_users_lookup_by_email,
    "usergroups.users.list": FakeSlack._m_usergroups_users_list,
    "views.open": FakeSlack._m_views_open,
}


def _parse_body(content_type: str, raw: bytes) -> tuple[dict[str, Any], Any]:
    """Return (params dict, decoded JSON body or None)."""
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    if not raw:
        return {}, None
    if ctype == "application/json":
        try:
            body = json.loads(raw.decode("utf-8"))
        except ValueError:
            return {}, None
        return (body if isinstance(body, dict) else {}), body
    if ctype == "multipart/form-data":
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + raw
        )
        params: dict[str, Any] = {}
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name and not part.get_filename():
                params[name] = (
                    part.get_content()
                    if part.get_content_maintype() == "text"
                    else part.get_payload(decode=True).decode("utf-8", "replace")
                )
        return params, None
    # form-encoded (also the default: WebClient labels empty bodies as form)
    text = raw.decode("utf-8", "replace")
    if ctype not in ("application/x-www-form-urlencoded", "") and text.lstrip().startswith("{"):
        try:
            body = json.loads(text)
            return (body if isinstance(body, dict) else {}), body
        except ValueError:
            pass
    return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}, None


class _Handler(BaseHTTPRequestHandler):
    fake: FakeSlack
    protocol_version = "HTTP/1.1"
    server_version = "FakeSlack/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _send_json(self, status: int, headers: dict[str, str], body: Any) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _serve(self, verb: str) -> None:
        url = urlparse(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        try:
            if url.path.startswith("/api/"):
                params, _ = _parse_body(self.headers.get("Content-Type", ""), raw)
                merged = dict(query)
                merged.update(params)
                token = None
                auth = self.headers.get("Authorization") or ""
                if auth.lower().startswith("bearer "):
                    token = auth[7:].strip()
                if "token" in merged:
                    form_token = merged.pop("token")
                    token = token or (str(form_token) if form_token else None)
                method = url.path[len("/api/") :].strip("/")
                status, headers, body = self.fake.handle_api(method, merged, token)
            elif url.path.startswith("/response/"):
                rid = url.path[len("/response/") :].strip("/")
                params, body_json = _parse_body(self.headers.get("Content-Type", ""), raw)
                if body_json is None and "payload" in params:  # form-encoded payload=...
                    try:
                        body_json = json.loads(params["payload"])
                    except ValueError:
                        body_json = None
                if body_json is None and params:
                    body_json = params
                status, headers, body = self.fake.handle_response_url(rid, body_json)
            elif url.path.startswith("/_fake/"):
                status, headers, body = self._control(verb, url.path[len("/_fake/") :].strip("/"), query, raw)
            else:
                status, headers, body = 404, {}, {"ok": False, "error": "not_found"}
        except Exception as e:  # never let a bug in the fake hang a client
            status, headers, body = 500, {}, {"ok": False, "error": "fake_internal_error", "detail": repr(e)}
        if status == 0:
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            return
        self._send_json(status, headers, body)

    # ---------------------------------------------------------------- control API (other processes)

    def _control(
        self, verb: str, action: str, q: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        fake = self.fake
        body: dict[str, Any] = {}
        if raw:
            try:
                body = json.loads(raw.decode("utf-8"))
            except ValueError:
                return 400, {}, {"ok": False, "error": "invalid_json"}
        args = dict(q)
        args.update(body)
        ok: dict[str, Any] = {"ok": True}
        if action == "state":
            return 200, {}, {**ok, **fake.state()}
        if action == "messages":
            return 200, {}, {**ok, "messages": fake.messages(args["channel"])}
        if action == "all_messages":
            return 200, {}, {**ok, "messages": fake.all_messages(args["channel"])}
        if action == "replies":
            return 200, {}, {**ok, "messages": fake.replies(args["channel"], args["ts"])}
        if action == "ephemerals":
            return 200, {}, {**ok, "ephemerals": fake.ephemerals(args.get("channel"))}
        if action == "calls":
            return 200, {}, {**ok, "calls": fake.call_log(args.get("method"))}
        if action == "responses":
            return 200, {}, {**ok, "responses": fake.responses(args["id"])}
        if action == "socket_received":
            return 200, {}, {**ok, "messages": fake.socket_received(args.get("envelope_id"))}
        if action == "call_count":
            params = {k: v for k, v in args.items() if k != "method"}
            return 200, {}, {**ok, "count": fake.call_count(args.get("method"), **params)}
        if action == "dm_channels":
            return 200, {}, {**ok, "dm_channels": fake.dm_channels()}
        if action == "dm_channel":
            return 200, {}, {**ok, "channel": fake.dm_channel(args["user"])}
        if action == "views":
            return 200, {}, {**ok, "views": fake.views()}
        if action == "triggers":
            return 200, {}, {**ok, "triggers": fake.triggers()}
        if action == "edits":
            if args.get("ts"):
                return 200, {}, {**ok, "edits": fake.edits(args["channel"], args["ts"])}
            return 200, {}, {**ok, "counts": fake.edit_counts(args.get("channel"))}
        if verb != "POST":
            return 405, {}, {"ok": False, "error": "use_post"}
        if action == "fail":
            fake.fail_next(
                int(args.get("n", 1)),
                status=int(args.get("status", 500)),
                retry_after=None if args.get("retry_after") is None else int(args["retry_after"]),
                method=args.get("method"),
                error=args.get("error"),
            )
        elif action == "outage":
            fake.outage(
                float(args.get("seconds", 0)),
                status=int(args.get("status", 500)),
                method=args.get("method"),
                retry_after=None if args.get("retry_after") is None else int(args["retry_after"]),
                error=args.get("error"),
            )
        elif action == "delay":
            fake.set_delay(args["method"], float(args.get("seconds") or 0), when=args.get("when", "before"))
        elif action == "release":
            fake.release_delays()
        elif action == "error":
            fake.set_error(args["method"], args.get("error"), status=int(args.get("status", 200)))
        elif action == "clear_faults":
            fake.clear_faults()
        elif action == "revoke":
            fake.set_token_revoked(_truthy(args.get("revoked", True)))
        elif action == "scopes":
            fake.set_scopes(args.get("scopes") or [])
        elif action == "channel":
            fake.add_channel(
                args["id"],
                members=args.get("members") or [],
                bot_is_member=_truthy(args.get("bot_is_member", True)),
                name=args.get("name"),
                is_private=_truthy(args.get("is_private", False)),
            )
        elif action == "usergroup":
            fake.add_usergroup(args["id"], args.get("users") or [])
        elif action == "user":
            fake.add_user(
                args["id"],
                name=args.get("name"),
                real_name=args.get("real_name"),
                is_admin=_truthy(args.get("is_admin", False)),
                is_bot=_truthy(args.get("is_bot", False)),
                deleted=_truthy(args.get("deleted", False)),
                tz=args.get("tz", "UTC"),
                email=args.get("email"),
            )
        elif action == "open_dm":
            return 200, {}, {**ok, "channel": fake.open_dm(args["user"])}
        elif action == "dm_error":
            fake.set_dm_error(args["user"], args.get("error"))
        elif action == "trigger_id":
            return 200, {}, {**ok, "trigger_id": fake.new_trigger_id(args.get("user"))}
        elif action == "rate_limit":

            def num(key: str) -> float | None:
                return None if args.get(key) in (None, "") else float(args[key])

            burst = num("burst")
            fake.set_rate_limit(
                args["method"],
                num("per_minute"),
                per_second=num("per_second"),
                burst=None if burst is None else int(burst),
                per_channel=_truthy(args.get("per_channel", False)),
            )
        elif action == "message":
            m = fake.add_message(
                args["channel"],
                args.get("text", ""),
                user=args.get("user", "U0HUMAN"),
                metadata=args.get("metadata"),
                thread_ts=args.get("thread_ts"),
            )
            return 200, {}, {**ok, "message": m}
        elif action == "response_url":
            url = fake.new_response_url()
            return 200, {}, {**ok, "url": url, "id": fake._response_id(url)}
        elif action == "socket_send":
            try:
                eid = fake.socket_send(body, timeout=float(q.get("timeout", 5)))
            except TimeoutError:
                return 409, {}, {"ok": False, "error": "no_socket_connection"}
            return 200, {}, {**ok, "envelope_id": eid}
        elif action == "reset_calls":
            fake.reset_calls()
        else:
            return 404, {}, {"ok": False, "error": "unknown_action"}
        return 200, {}, ok


# ---------------------------------------------------------------------- process mode


def _build_arg_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m tests.fakes.slack_api",
        description="Fake Slack Web API + Socket Mode server. Prints the base API URL and serves until SIGTERM.",
    )
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument(
        "--channel",
        action="append",
        default=[],
        help="channel id, repeatable; 'C1:U1,U2' gives that channel its own members",
    )
    ap.add_argument("--member", action="append", default=[], help="user id added to every --channel, repeatable")
    ap.add_argument("--not-member", action="append", default=[], help="channel id the bot is NOT a member of")
    ap.add_argument("--usergroup", action="append", default=[], help="'S1:U1,U2', repeatable")
    ap.add_argument("--admin", action="append", default=[], help="user id marked is_admin, repeatable")
    ap.add_argument("--user", action="append", default=[], help="'U1' or 'U1:alice@example.com', repeatable")
    ap.add_argument("--deactivated-user", action="append", default=[], help="user id marked deleted, repeatable")
    ap.add_argument("--trigger-ttl", type=float, default=3.0, help="seconds a trigger id stays valid for views.open")
    ap.add_argument("--token", default="xoxb-test-token", help="valid bot token")
    ap.add_argument("--app-token", default=None, help="exact app token (default: any xapp-...)")
    ap.add_argument("--scopes", default=",".join(DEFAULT_SCOPES))
    ap.add_argument("--ts-start", type=str, default=None, help="deterministic ts start, e.g. 1700000000.000100")
    ap.add_argument("--no-socket-mode", action="store_true")
    return ap


def build_from_args(ns: argparse.Namespace) -> FakeSlack:
    fake = FakeSlack(
        host=ns.host,
        port=ns.port,
        bot_token=ns.token,
        app_token=ns.app_token,
        scopes=[s for s in ns.scopes.split(",") if s],
        ts_start=ns.ts_start,
        socket_mode=not ns.no_socket_mode,
        trigger_ttl=ns.trigger_ttl,
    )
    for u in ns.admin:
        fake.add_user(u, is_admin=True)
    for spec in ns.user:
        uid, _, email = spec.partition(":")
        fake.add_user(uid, is_admin=uid in ns.admin, email=email or None)
    for u in ns.deactivated_user:
        fake.add_user(u, deleted=True)
    for spec in ns.channel:
        cid, _, own = spec.partition(":")
        members = [m for m in own.split(",") if m] + [m for m in ns.member if m not in own.split(",")]
        fake.add_channel(cid, members=members, bot_is_member=cid not in ns.not_member)
    for spec in ns.usergroup:
        gid, _, users = spec.partition(":")
        fake.add_usergroup(gid, [u for u in users.split(",") if u])
    return fake


def main(argv: list[str] | None = None) -> int:
    ns = _build_arg_parser().parse_args(argv)
    fake = build_from_args(ns).start()
    stop = threading.Event()

    def _on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    print(fake.api_url, flush=True)
    print(f"fake slack: api {fake.api_url} socket-mode port {fake.ws_port}", file=sys.stderr, flush=True)
    try:
        while not stop.wait(0.2):
            pass
    finally:
        fake.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
