"""`rootcheck doctor`, Slack half: the token works and has the scopes, the app token or
signing secret is there, and every alert channel exists with the bot in it.
"""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError

from bot.models import Account, Check
from bot.slack.ids import BOT_SCOPES
from bot.slack.notifier import FIXES, make_client
from bot.slack.people import People


def probe_slack(
    token: str | None,
    app_token: str | None,
    signing_secret: bool,
    base_url: str,
    channels: list[str],
    accounts: Sequence[Account] = (),
) -> list[Check]:
    if not token:
        return [Check("slack", "SLACK_BOT_TOKEN", False, "not set", "set the bot token (xoxb-…) of the app")]
    client = make_client(token, base_url, retries=1)
    checks = [_auth(client)]
    if not checks[0].ok:
        return checks
    checks.append(_mode(app_token, signing_secret, base_url))
    checks += [_channel(client, channel) for channel in channels]
    people = People(client)
    checks += [_owners(client, people, account) for account in accounts if account.owners]
    return checks


def _owners(client: WebClient, people: People, account: Account) -> Check:
    """The account's owners resolve to people, and the bot can open a direct message with each."""
    subject = f"owners of {account.id}"
    try:
        resolved = people.resolve(account.owners)
    except (SlackApiError, SlackRequestError, OSError) as exc:
        return Check(
            "slack",
            subject,
            False,
            f"cannot resolve them: {_error(exc)}",
            FIXES.get(_error(exc), "check the scopes users:read, users:read.email and usergroups:read"),
        )
    problems = [f"{email} resolves to nobody" for email in resolved.unresolved]
    for user in resolved.users:
        try:
            client.conversations_open(users=user)
        except (SlackApiError, SlackRequestError, OSError) as exc:
            problems.append(f"no direct message to {user}: {_error(exc)}")
    if problems:
        return Check(
            "slack",
            subject,
            False,
            "; ".join(problems),
            "fix the owners in the accounts file or the owner tag (a Slack user id, user-group id or "
            "an email address a member uses); a deactivated user cannot be asked",
        )
    return Check("slack", subject, True, f"{len(resolved.users)} owner(s) can be asked")


def _auth(client: WebClient) -> Check:
    try:
        response = client.auth_test()
    except (SlackApiError, SlackRequestError, OSError) as exc:
        return Check(
            "slack",
            "auth.test",
            False,
            _error(exc),
            FIXES.get(_error(exc), "check SLACK_BOT_TOKEN and ROOTCHECK_SLACK_API_URL"),
        )
    granted = {s.strip() for s in (response.headers.get("x-oauth-scopes") or "").split(",") if s.strip()}
    missing = sorted(set(BOT_SCOPES) - granted) if granted else []
    detail = f"team {response.get('team')}, bot user {response.get('user_id')}"
    if missing:
        return Check(
            "slack",
            "scopes",
            False,
            f"{detail}; missing scopes: {', '.join(missing)}",
            "add them to the app (manifest.yml lists them all) and reinstall it",
        )
    return Check("slack", "auth.test", True, detail)


def _mode(app_token: str | None, signing_secret: bool, base_url: str) -> Check:
    if not app_token:
        if signing_secret:
            return Check("slack", "HTTP mode", True, "SLACK_SIGNING_SECRET is set")
        return Check(
            "slack",
            "HTTP mode",
            False,
            "SLACK_SIGNING_SECRET is not set",
            "copy the signing secret from the app's Basic Information page, or set SLACK_APP_TOKEN",
        )
    try:
        WebClient(token=app_token, base_url=base_url, timeout=10).apps_connections_open(app_token=app_token)
    except (SlackApiError, SlackRequestError, OSError) as exc:
        return Check(
            "slack",
            "Socket Mode",
            False,
            f"apps.connections.open: {_error(exc)}",
            "create an app-level token with connections:write and set SLACK_APP_TOKEN",
        )
    return Check("slack", "Socket Mode", True, "the app-level token opens a connection")


def _channel(client: WebClient, channel: str) -> Check:
    try:
        info = client.conversations_info(channel=channel)["channel"]
    except (SlackApiError, SlackRequestError, OSError) as exc:
        return Check("slack", f"channel {channel}", False, _error(exc), FIXES.get(_error(exc), "check the channel ID"))
    name = f"#{info.get('name', channel)}"
    if info.get("is_archived"):
        return Check("slack", f"channel {channel}", False, f"{name} is archived", FIXES["is_archived"])
    if not info.get("is_member"):
        return Check(
            "slack",
            f"channel {channel}",
            False,
            f"the bot is not in {name}",
            f"invite it: /invite @rootcheck in {name}",
        )
    return Check("slack", f"channel {channel}", True, f"{name}: the bot can post")


def _error(exc: Exception) -> str:
    if isinstance(exc, SlackApiError) and exc.response is not None:
        return str(exc.response.get("error", "error"))
    return f"network: {exc.__class__.__name__}"
