"""The Organization's ACTIVE accounts, with their names and, from an account tag, their owners.

Organizations is a global service whose requests count against the management (or delegated
administrator) account, shared with everything else there. AWS publishes no per-operation rate for
it (throttled calls answer TooManyRequestsException, which botocore retries), so every call,
retries included, is spaced to at most `ORGANIZATIONS_RATE` per second: ListAccounts (20 a page) and
one ListTagsForResource per account, ~17 minutes for 10,000 accounts' owners. That is why the
running bot refreshes this data about hourly, not on every sweep.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bot.accounts import split_owners
from bot.aws.errors import AwsSetupError, account_error
from bot.aws.sessions import AwsSessions
from bot.models import Account
from bot.pacing import Pacer

log = logging.getLogger(__name__)

ORGANIZATIONS_RATE = 10.0  # calls per second
_PACE = Pacer(1.0 / ORGANIZATIONS_RATE)


def discover_accounts(sessions: AwsSessions, owner_tag: str | None) -> list[Account]:
    """Every ACTIVE account with its name, and its owners when `owner_tag` is given.

    AwsSetupError when the hub may not list the accounts. A tag that cannot be read leaves that
    account without owners from Organizations; the failures are logged once, with the fix.
    """
    client = _client(sessions)
    accounts = []
    try:
        for page in client.get_paginator("list_accounts").paginate(PaginationConfig={"PageSize": 20}):
            for item in page.get("Accounts", []):
                state = item.get("State") or item.get("Status")  # Status is deprecated for State
                if state == "ACTIVE":
                    accounts.append(Account(id=item["Id"], name=item.get("Name")))
    except (ClientError, BotoCoreError) as exc:
        error = account_error("organization", exc)
        raise AwsSetupError(
            f"ROOTCHECK_ORG_DISCOVERY: cannot list the Organization's accounts: {error.code}: "
            f"{error.message} - run the hub in the management or a delegated administrator "
            "account with organizations:ListAccounts"
        ) from None
    return _with_owners(client, accounts, owner_tag) if owner_tag else accounts


def _with_owners(client: Any, accounts: list[Account], owner_tag: str) -> list[Account]:
    result, failed = [], []
    for account in accounts:
        try:
            tags = {
                tag["Key"]: tag["Value"]
                for page in client.get_paginator("list_tags_for_resource").paginate(ResourceId=account.id)
                for tag in page.get("Tags", [])
            }
        except (ClientError, BotoCoreError) as exc:
            failed.append(account_error(account.id, exc))
            result.append(account)
            continue
        owners, rejected = split_owners(tags.get(owner_tag, ""))
        if rejected:
            log.warning(
                "account %s: tag %s: not a Slack user id, user-group id or email address: %s",
                account.id,
                owner_tag,
                ", ".join(rejected),
            )
        result.append(Account(account.id, account.name, owners=owners))
    if failed:
        first = failed[0]
        log.warning(
            "owner tag %s could not be read for %d of %d account(s), e.g. account %s: %s: %s - grant "
            "organizations:ListTagsForResource to the hub (deploy/hub-role.yaml); those accounts keep only "
            "the owners of the accounts file",
            owner_tag,
            len(failed),
            len(accounts),
            first.account_id,
            first.code,
            first.message,
        )
    return result


def _client(sessions: AwsSessions) -> Any:
    client = sessions.base_client("organizations")
    client.meta.events.register("before-sign.organizations", _hold, unique_id="rootcheck-organizations-pace")
    return client


def _hold(**kwargs: Any) -> None:
    _PACE.hold("organizations")
