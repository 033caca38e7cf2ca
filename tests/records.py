"""Real-shaped CloudTrail records of root use, for seeding the AWS stand-in and the queue."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from tests.fakes.aws_standin import root_login_record

__all__ = ["root_call_record", "root_login_record"]


def root_call_record(
    account_id: str,
    when: datetime,
    event_name: str = "ListBuckets",
    *,
    key: str = "ASIAROOTSESSION0001",
    source_ip: str = "192.0.2.10",
    console: bool = True,
    read_only: bool = True,
    region: str = "us-east-1",
    event_source: str = "s3.amazonaws.com",
    event_id: str | None = None,
) -> dict:
    """A call made with root credentials: from a console session (`sessionCredentialFromConsole`),
    or, with `console=False`, with a root access key or `AssumeRoot` credentials."""
    record = {
        "eventVersion": "1.10",
        "userIdentity": {
            "type": "Root",
            "principalId": account_id,
            "arn": f"arn:aws:iam::{account_id}:root",
            "accountId": account_id,
            "accessKeyId": key,
            "sessionContext": {
                "attributes": {"creationDate": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "mfaAuthenticated": "false"}
            },
        },
        "eventTime": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": event_source,
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": source_ip,
        "userAgent": "console.amazonaws.com" if console else "aws-cli/2.17.0",
        "requestParameters": None,
        "responseElements": None,
        "eventID": event_id or str(uuid.uuid4()),
        "readOnly": read_only,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account_id,
        "eventCategory": "Management",
    }
    if console:
        record["sessionCredentialFromConsole"] = "true"
    return record
