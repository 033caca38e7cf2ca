"""`rootcheck doctor`, AWS half: the identity in use, Organizations access, and for each
account whether the role can be assumed and each permission the checks need works.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from botocore.exceptions import BotoCoreError, ClientError

from bot.aws.errors import PERMISSION_OF, AwsSetupError, account_error, check_credentials
from bot.aws.organizations import discover_accounts
from bot.aws.sessions import AwsSessions
from bot.models import SIGNIN_REGION, Account, Check

REPORT_STATES_THAT_PROVE_ACCESS = {"ReportNotPresent", "ReportExpired", "ReportInProgress"}


def probe_identity(sessions: AwsSessions, org_discovery: bool) -> list[Check]:
    try:
        identity = check_credentials(sessions)
    except AwsSetupError as exc:
        return [Check("aws", "identity", False, str(exc), "configure the hub's AWS credentials")]
    checks = [Check("aws", "identity", True, f"{identity['Arn']} (account {identity['Account']})")]
    if org_discovery:
        try:
            count = len(discover_accounts(sessions, None))
            checks.append(Check("aws", "organizations:ListAccounts", True, f"{count} ACTIVE account(s)"))
        except AwsSetupError as exc:
            checks.append(
                Check(
                    "aws",
                    "organizations:ListAccounts",
                    False,
                    str(exc),
                    "grant organizations:ListAccounts to the hub (deploy/hub-role.yaml)",
                )
            )
    return checks


def regions_note(regions: list[str]) -> list[Check]:
    """A note when ROOTCHECK_REGIONS leaves out us-east-1: it is searched anyway."""
    if regions == ["all"] or SIGNIN_REGION in regions:
        return []
    return [
        Check(
            "aws",
            "ROOTCHECK_REGIONS",
            True,
            f"{SIGNIN_REGION} is not listed, and is searched anyway: AWS "
            "records every root sign-in and every global-service call there",
        )
    ]


def probe_accounts(sessions: AwsSessions, accounts: list[Account], all_regions: bool, workers: int = 16) -> list[Check]:
    with ThreadPoolExecutor(max(1, min(workers, len(accounts) or 1))) as pool:
        results = pool.map(lambda account: _probe_account(sessions, account, all_regions), accounts)
    return [check for checks in results for check in checks]


def _probe_account(sessions: AwsSessions, account: Account, all_regions: bool) -> list[Check]:
    subject = account.id + (f" ({account.name})" if account.name else "")
    role = sessions.role_arn(account)
    try:
        sessions.open(account)
    except (ClientError, BotoCoreError) as exc:
        error = account_error(account.id, exc, role_name=sessions.role_name)
        return [Check("account", subject, False, f"cannot assume {role}: {error.code}", error.hint)]
    via = f"role {role}" if role else "the hub's own credentials"
    failures = [check for check in (_try(sessions, account, subject, call) for call in _calls(all_regions)) if check]
    return failures or [Check("account", subject, True, f"all permissions work ({via})")]


def _calls(all_regions: bool) -> list[tuple[str, str, Callable]]:
    now = datetime.now(UTC)
    calls = [
        (
            "cloudtrail",
            "LookupEvents",
            lambda c: c.lookup_events(
                LookupAttributes=[{"AttributeKey": "Username", "AttributeValue": "root"}],
                StartTime=now - timedelta(hours=1),
                EndTime=now,
                MaxResults=1,
            ),
        ),
        ("iam", "GetCredentialReport", lambda c: c.get_credential_report()),
        ("iam", "GenerateCredentialReport", lambda c: c.generate_credential_report()),
        ("iam", "ListAccountAliases", lambda c: c.list_account_aliases()),
    ]
    if all_regions:
        calls.append(("account", "ListRegions", lambda c: c.list_regions(MaxResults=1)))
    return calls


def _try(sessions: AwsSessions, account: Account, subject: str, call: tuple[str, str, Callable]) -> Check | None:
    service, operation, invoke = call
    try:
        with sessions.acting_as(account):
            invoke(sessions.client(service))
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in REPORT_STATES_THAT_PROVE_ACCESS:
            return None
        error = account_error(account.id, exc, role_name=sessions.role_name)
        return Check("account", subject, False, f"{PERMISSION_OF[operation]}: {error.code}", error.hint)
    except BotoCoreError as exc:
        return Check("account", subject, False, f"{PERMISSION_OF[operation]}: {exc}", "check network access to AWS")
    return None
