"""Discover the Organization's ACTIVE accounts (ListAccounts, 20 a page)."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from bot.aws.errors import AwsSetupError, account_error
from bot.aws.sessions import AwsSessions
from bot.models import Account


def discover_accounts(sessions: AwsSessions) -> list[Account]:
    """Every ACTIVE account; AwsSetupError when the hub may not list them."""
    client = sessions.base_client("organizations")
    accounts = []
    try:
        for page in client.get_paginator("list_accounts").paginate(PaginationConfig={"PageSize": 20}):
            for item in page.get("Accounts", []):
                state = item.get("State") or item.get("Status")  # Status is deprecated for State
                if state == "ACTIVE":
                    accounts.append(Account(id=item["Id"], name=item.get("Name")))
    except (ClientError, BotoCoreError) as exc:
        error = account_error("organization", exc)
        raise AwsSetupError(f"ROOTCHECK_ORG_DISCOVERY: cannot list the Organization's accounts: {error.code}: "
                            f"{error.message} - run the hub in the management or a delegated administrator "
                            "account with organizations:ListAccounts") from None
    return accounts
