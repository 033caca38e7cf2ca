"""AWS failures as data: the account, the AWS error code, and what to do about it."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, NoCredentialsError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from bot.models import AccountError

PERMISSION_OF = {
    "LookupEvents": "cloudtrail:LookupEvents",
    "GenerateCredentialReport": "iam:GenerateCredentialReport",
    "GetCredentialReport": "iam:GetCredentialReport",
    "ListAccountAliases": "iam:ListAccountAliases",
    "ListRegions": "account:ListRegions",
    "ListAccounts": "organizations:ListAccounts",
    "ListTagsForResource": "organizations:ListTagsForResource",
    "AssumeRole": "sts:AssumeRole",
}
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"}
_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired"}
_REGION_OFF = {"UnrecognizedClientException", "InvalidClientTokenId", "OptInRequired", "AuthFailure"}
_THROTTLED = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
}
_TRANSIENT = {
    "RequestTimeout",
    "RequestTimeoutException",
    "PriorRequestNotComplete",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "ServiceFailure",
}


def is_retryable(exc: Exception) -> bool:
    """Worth another attempt later: throttling, a 5xx or a transient error code, a dropped connection."""
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return code in _THROTTLED or code in _TRANSIENT or status >= 500
    return isinstance(exc, (BotocoreConnectionError, HTTPClientError))


def account_error(
    account_id: str, exc: Exception, region: str | None = None, role_name: str = "RootCheckAudit"
) -> AccountError:
    """Translate a boto3/botocore exception into an AccountError with a fix."""
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "ClientError")
        message = exc.response.get("Error", {}).get("Message", str(exc))
        return AccountError(account_id, code, message, _hint(exc.operation_name, code, role_name), region)
    if isinstance(exc, NoCredentialsError):
        return AccountError(
            account_id,
            "NoCredentials",
            str(exc),
            "give the hub AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID or an instance role)",
            region,
        )
    if isinstance(exc, BotoCoreError):
        return AccountError(
            account_id, type(exc).__name__, str(exc), "check network access to the AWS endpoint and retry", region
        )
    return AccountError(account_id, type(exc).__name__, str(exc) or repr(exc), "", region)


def _hint(operation: str, code: str, role_name: str) -> str:
    if operation == "AssumeRole" and code in _DENIED:
        return (
            f"deploy the {role_name} role in this account (deploy/member-role.yaml) trusting the hub, "
            "and check ROOTCHECK_EXTERNAL_ID matches its ExternalId"
        )
    if code in _DENIED:
        permission = PERMISSION_OF.get(operation, operation)
        return f"grant {permission} to the {role_name} role (see deploy/member-role.yaml)"
    if code in _EXPIRED:
        return "the hub's AWS credentials have expired: refresh them (or the role session) and retry"
    if code in _REGION_OFF:
        return "the Region may be disabled for this account: enable it, or leave it out of ROOTCHECK_REGIONS"
    if code in _THROTTLED:
        return "AWS kept throttling after retries: lower ROOTCHECK_CONCURRENCY or sweep less often"
    return ""


class AwsSetupError(Exception):
    """The hub cannot talk to AWS at all (no credentials, invalid keys): a configuration error."""


def check_credentials(sessions) -> dict:
    """The caller identity, or AwsSetupError with a one-line reason."""
    try:
        return sessions.identity()
    except NoCredentialsError:
        raise AwsSetupError(
            "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/"
            "AWS_SECRET_ACCESS_KEY, or run with an instance or task role"
        ) from None
    except ClientError as exc:
        error = account_error("hub", exc)
        raise AwsSetupError(f"AWS rejected the hub credentials: {error.code}: {error.message}") from None
    except BotoCoreError as exc:
        raise AwsSetupError(f"cannot reach AWS STS: {exc}") from None
