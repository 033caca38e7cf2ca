"""What `/healthz` and `/metrics` may say: states, counts and error codes from a fixed list, each
with a fixed "what to do". They are served on a port that may be public, so account and channel
ids, ARNs and AWS or Slack messages never appear there; those go to the logs and `/rootcheck status`.
"""

from __future__ import annotations

FIX = {
    "aws_credentials": "give the hub AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID or an instance/task role)",
    "aws_organizations": "grant organizations:ListAccounts to the hub, or set ROOTCHECK_ORG_DISCOVERY=false",
    "aws_access": "AWS refused the hub's credentials: run `rootcheck doctor`",
    "configuration": "fix the setting named in the logs: run `rootcheck doctor`",
    "sweep_failed": "the sweep failed: see the logs and `/rootcheck status`",
    "slack_not_in_channel": "invite the bot to the alert channel (/invite @rootcheck)",
    "slack_channel": "check ROOTCHECK_CHANNEL and the accounts' channels: see `/rootcheck status`",
    "slack_token": "fix SLACK_BOT_TOKEN: reinstall the app and copy its xoxb- token",
    "slack_scope": "add the missing scope (manifest.yml) and reinstall the app",
    "slack_message": "an alert's message can no longer be updated: see `/rootcheck open`",
    "slack_unavailable": "Slack is failing; rootcheck keeps retrying",
    "queue_access": "grant sqs:ReceiveMessage, sqs:DeleteMessage and sqs:GetQueueAttributes on the queue",
    "queue_missing": "check ROOTCHECK_QUEUE_URL: the queue does not exist",
    "queue_unavailable": "SQS is failing; rootcheck keeps retrying",
}
_SLACK = {
    "not_in_channel": "slack_not_in_channel",
    "channel_not_found": "slack_channel",
    "is_archived": "slack_channel",
    "invalid_auth": "slack_token",
    "token_revoked": "slack_token",
    "account_inactive": "slack_token",
    "not_authed": "slack_token",
    "missing_scope": "slack_scope",
    "message_not_found": "slack_message",
    "cant_update_message": "slack_message",
    "edit_window_closed": "slack_message",
}


def error(code: str | None) -> dict:
    """`{"error": code, "fix": text}` for /healthz: only codes of the fixed list."""
    return {"error": code, "fix": FIX.get(code) if code else None}


def sweep_code(exc: BaseException) -> str:
    """A failed sweep (no account was checked), as a code of the fixed list."""
    name, text = type(exc).__name__, str(exc)
    if name == "ConfigError":
        return "configuration"
    if name == "AwsSetupError":
        if "no AWS credentials" in text:
            return "aws_credentials"
        return "aws_organizations" if "ROOTCHECK_ORG_DISCOVERY" in text else "aws_access"
    return "sweep_failed"


def slack_code(code: str | None) -> str | None:
    """A Slack error code (`not_in_channel`, `ratelimited`, `network: …`) as a code of the fixed list."""
    return None if code is None else _SLACK.get(code, "slack_unavailable")


def queue_code(aws_code: str | None) -> str | None:
    if aws_code is None:
        return None
    if "Denied" in aws_code or aws_code in ("UnauthorizedOperation", "InvalidClientTokenId"):
        return "queue_access"
    return "queue_missing" if "NonExistentQueue" in aws_code else "queue_unavailable"
