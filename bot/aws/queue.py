"""The SQS queue EventBridge fills with root events: long-poll, and delete once stored."""

from __future__ import annotations

import re

from botocore.exceptions import BotoCoreError, ClientError

from bot.aws.errors import account_error
from bot.aws.sessions import CLIENT_CONFIG, AwsSessions

_REGION = re.compile(r"sqs[.-]([a-z0-9-]+)\.amazonaws")


class QueueError(Exception):
    """SQS failed (denied, missing queue, network): the consumer backs off and tries again."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code  # the AWS error code (or the botocore error's name), never the message


class Queue:
    def __init__(self, sessions: AwsSessions, url: str):
        match = _REGION.search(url)
        self.url = url
        self.client = sessions.base.client(
            "sqs", region_name=match.group(1) if match else sessions.region, config=CLIENT_CONFIG
        )

    def receive(self, wait: int = 20, batch: int = 10) -> list[dict]:
        try:
            response = self.client.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=batch,
                WaitTimeSeconds=wait,
                MessageSystemAttributeNames=["SentTimestamp", "ApproximateReceiveCount"],
            )
        except (ClientError, BotoCoreError) as exc:
            raise QueueError(self._describe(exc), account_error("hub", exc).code) from None
        return response.get("Messages", [])

    def delete(self, receipt_handles: list[str]) -> None:
        try:
            for start in range(0, len(receipt_handles), 10):
                entries = [
                    {"Id": str(n), "ReceiptHandle": handle}
                    for n, handle in enumerate(receipt_handles[start : start + 10])
                ]
                self.client.delete_message_batch(QueueUrl=self.url, Entries=entries)
        except (ClientError, BotoCoreError) as exc:
            raise QueueError(self._describe(exc), account_error("hub", exc).code) from None

    def _describe(self, exc: Exception) -> str:
        error = account_error("hub", exc)
        hint = (
            (
                "grant sqs:ReceiveMessage, sqs:DeleteMessage and sqs:GetQueueAttributes on the queue "
                "(deploy/hub-role.yaml)"
            )
            if "Denied" in error.code
            else error.hint
        )
        return f"{error.code}: {error.message}" + (f" - {hint}" if hint else "")
