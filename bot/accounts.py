"""Which accounts to sweep: ROOTCHECK_ACCOUNTS, ROOTCHECK_ACCOUNTS_FILE and Organizations, merged.

Pure: the file's text and the discovered accounts come in as data. For an account named by
several sources, each field comes from the first source that sets it (file, then Organizations,
then the plain list), and the owners of all of them are combined.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import yaml

from bot.models import Account

_ACCOUNT = re.compile(r"^\d{12}$")
_CHANNEL = re.compile(r"^[CG][A-Z0-9]{2,}$")
_ROLE_ARN = re.compile(r"^arn:aws[\w-]*:iam::(\d{12}):role/[\w+=,.@/-]+$")
_OWNER = re.compile(r"^(?:[UWS][A-Z0-9]{2,}|[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+)$")
_FIELDS = {"id", "name", "channel", "role_arn", "owners"}


class AccountsFileError(ValueError):
    """A bad accounts file, naming the entry and what is wrong with it."""


def parse_accounts_file(text: str, source: str = "ROOTCHECK_ACCOUNTS_FILE") -> list[Account]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AccountsFileError(f"{source}: not valid YAML ({exc.__class__.__name__})") from None
    if isinstance(data, dict) and "accounts" in data:
        data = data["accounts"]
    if not isinstance(data, list):
        raise AccountsFileError(f"{source}: expected a YAML list of accounts (each with an id)")
    return [_entry(item, number, source) for number, item in enumerate(data, 1)]


def merge_accounts(*sources: Iterable[Account]) -> list[Account]:
    """Accounts of all sources without duplicates, in first-seen order; owners combined."""
    merged: dict[str, Account] = {}
    for source in sources:
        for account in source:
            known = merged.get(account.id)
            merged[account.id] = (
                account
                if known is None
                else Account(
                    id=known.id,
                    name=known.name or account.name,
                    channel=known.channel or account.channel,
                    role_arn=known.role_arn or account.role_arn,
                    owners=tuple(dict.fromkeys(known.owners + account.owners)),
                )
            )
    return list(merged.values())


def split_owners(value: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(owners, rejected) from a list or a space-separated string (an Organizations tag value
    allows no commas): Slack user ids U…/W…, user-group ids S…, or email addresses."""
    items = value.split() if isinstance(value, str) else [str(v).strip() for v in value or () if str(v).strip()]
    good = tuple(dict.fromkeys(v for v in items if _OWNER.match(v)))
    return good, tuple(v for v in items if not _OWNER.match(v))


def _entry(item: Any, number: int, source: str) -> Account:
    where = f"{source}: entry {number}"
    if isinstance(item, (str, int)):
        item = {"id": str(item)}
    if not isinstance(item, dict):
        raise AccountsFileError(f"{where}: expected a mapping with id, name, channel, role_arn, owners")
    unknown = set(item) - _FIELDS
    if unknown:
        raise AccountsFileError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    account_id = str(item.get("id", "")).strip()
    if not _ACCOUNT.match(account_id):
        raise AccountsFileError(f"{where}: id must be a 12-digit account id, got {item.get('id')!r}")
    channel, role_arn = item.get("channel"), item.get("role_arn")
    if channel is not None and not _CHANNEL.match(str(channel)):
        raise AccountsFileError(f"{where} ({account_id}): channel must be a Slack channel ID like C0123ABCD")
    if role_arn is not None:
        match = _ROLE_ARN.match(str(role_arn))
        if not match or match.group(1) != account_id:
            raise AccountsFileError(f"{where} ({account_id}): role_arn must be an IAM role ARN in that account")
    owners_value = item.get("owners")
    if owners_value is not None and not isinstance(owners_value, (str, list)):
        raise AccountsFileError(
            f"{where} ({account_id}): owners must be a list of Slack user ids, user-group ids or email addresses"
        )
    owners, rejected = split_owners(owners_value)
    if rejected:
        raise AccountsFileError(
            f"{where} ({account_id}): owners: not a Slack user id (U…/W…), user-group id "
            f"(S…) or email address: {', '.join(map(repr, rejected))}"
        )
    name = item.get("name")
    return Account(
        id=account_id, name=str(name) if name is not None else None, channel=channel, role_arn=role_arn, owners=owners
    )
