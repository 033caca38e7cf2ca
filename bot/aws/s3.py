"""`--events s3://bucket/prefix/`: a CloudTrail archive read straight from S3, as named bytes.

The listing is lazy (one page of keys at a time) and object bodies are fetched a few at a time
on a small thread pool with a bounded read-ahead, in listing order: memory stays flat however
large the archive, and the archive is never downloaded first. Every failure is one line through
`on_error` naming the bucket and prefix, never a traceback.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

from bot.checks.records import is_archive_file
from bot.models import Document

FETCH_THREADS = 8
READ_AHEAD = 16  # objects fetched or being fetched ahead of the consumer ...
READ_AHEAD_BYTES = 64 * 1024 * 1024  # ... and their size: at least one object, however large
CLIENT_CONFIG = Config(retries={"mode": "standard"}, max_pool_connections=FETCH_THREADS, user_agent_extra="rootcheck")

_DENIED = {"AccessDenied", "AccessDeniedException", "AllAccessDisabled", "AccountProblem"}
_BAD_CREDENTIALS = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "TokenRefreshRequired",
}
NO_CREDENTIALS = (
    "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
    "or run with an instance or task role"
)


class _Stop(Exception):
    """This spec cannot be read any further; the message has been reported."""


def split_spec(spec: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` → (`bucket`, `some/prefix`); ValueError without a bucket."""
    rest = spec[len("s3://") :] if spec.startswith("s3://") else spec
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ValueError("no bucket name (use s3://bucket/prefix/)")
    return bucket, prefix


def iter_s3_documents(
    spec: str, on_error: Callable[[str], None], keep: Callable[[str], bool] = lambda name: True
) -> Iterator[Document]:
    """The trail files under an S3 prefix (or the one object it names), in listing order.

    Keys ending in `.json`, `.json.gz` or `.jsonl` whose `s3://bucket/key` name `keep` accepts
    (date folders inside the window) are read; a key named exactly is read whatever its suffix.
    """
    try:
        bucket, prefix = split_spec(spec)
    except ValueError as exc:
        on_error(f"{spec}: {exc}")
        return
    where = f"s3://{bucket}/{prefix}"
    try:
        client = boto3.session.Session().client("s3", config=CLIENT_CONFIG)
    except BotoCoreError as exc:  # e.g. AWS_PROFILE names a profile that does not exist
        on_error(f"{where}: cannot set up AWS: {exc}")
        return
    reader = _Reader(client, bucket, prefix, where, on_error)
    try:
        yield from reader.documents(keep)
    except _Stop:
        return
    finally:
        reader.close()


class _Reader:
    def __init__(self, client, bucket: str, prefix: str, where: str, on_error: Callable[[str], None]):
        self.client, self.bucket, self.prefix, self.where = client, bucket, prefix, where
        self._on_error = on_error
        self._pool: ThreadPoolExecutor | None = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def documents(self, keep: Callable[[str], bool]) -> Iterator[Document]:
        """Fetch ahead on the pool, within READ_AHEAD objects and READ_AHEAD_BYTES; yield in order."""
        pending: deque[tuple[str, int, Future]] = deque()
        in_flight = 0
        for key, size in self._keys(keep):
            while pending and (len(pending) >= READ_AHEAD or in_flight + size > READ_AHEAD_BYTES):
                key_done, size_done, future = pending.popleft()
                in_flight -= size_done
                document = self._collect(key_done, future)
                if document is not None:
                    yield document
            if self._pool is None:
                self._pool = ThreadPoolExecutor(FETCH_THREADS, thread_name_prefix="rootcheck-s3")
            pending.append((key, size, self._pool.submit(self._get, key)))
            in_flight += size
        while pending:
            key_done, _, future = pending.popleft()
            document = self._collect(key_done, future)
            if document is not None:
                yield document

    def _keys(self, keep: Callable[[str], bool]) -> Iterator[tuple[str, int]]:
        """Keys to read, lazily, page by page. An exact key is read whatever its name."""
        folder = self.prefix if not self.prefix or self.prefix.endswith("/") else self.prefix + "/"
        listed = 0
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
                for item in page.get("Contents", ()):
                    key, size = item["Key"], int(item.get("Size") or 0)
                    if key == self.prefix:
                        listed += 1
                        yield key, size
                    elif key.startswith(folder):  # s3://b/logs means the folder logs/, not logs-old/
                        listed += 1
                        if not key.endswith("/") and is_archive_file(key) and keep(f"s3://{self.bucket}/{key}"):
                            yield key, size
        except ClientError as exc:
            if _code(exc) in _DENIED and self.prefix and not self.prefix.endswith("/") and listed == 0:
                yield from self._named_object(exc)  # GetObject may be allowed where ListBucket is not
                return
            self._fail(exc)
        except (BotoCoreError, NoCredentialsError) as exc:
            self._fail(exc)
        if listed == 0:
            self._on_error(f"{self.where}: no objects under this prefix in bucket {self.bucket}")

    def _named_object(self, list_error: ClientError) -> Iterator[tuple[str, int]]:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.prefix)
        except (ClientError, BotoCoreError):
            self._fail(list_error)
        yield self.prefix, int(head.get("ContentLength") or 0)

    def _get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def _collect(self, key: str, future: Future) -> Document | None:
        name = f"s3://{self.bucket}/{key}"
        try:
            return Document(name=name, data=future.result())
        except ClientError as exc:
            if _code(exc) in _DENIED | _BAD_CREDENTIALS:  # the rest would fail alike: stop this prefix
                self._fail(exc, key)
            self._on_error(f"{name}: {_code(exc)}: {_message(exc)}")
        except (BotoCoreError, NoCredentialsError) as exc:
            self._on_error(f"{name}: cannot read ({exc})")
        return None

    def _fail(self, exc: Exception, key: str | None = None) -> None:
        """Report why this prefix cannot be read, in one line, and stop reading it."""
        self._on_error(f"{self.where}: {_explain(exc, self.bucket, self.prefix, key)}")
        raise _Stop


def _explain(exc: Exception, bucket: str, prefix: str, key: str | None) -> str:
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return NO_CREDENTIALS
    if not isinstance(exc, ClientError):
        return f"cannot reach S3 ({exc})"
    code, message = _code(exc), _message(exc)
    if code in _DENIED:
        what = f"reading s3://{bucket}/{key}" if key else f"listing prefix '{prefix}' of bucket {bucket}"
        kms = ", and kms:Decrypt on the bucket's KMS key" if "kms" in message.lower() else ""
        return (
            f"AccessDenied {what}: {message} (needs s3:ListBucket on arn:aws:s3:::{bucket} and "
            f"s3:GetObject on arn:aws:s3:::{bucket}/{prefix}*{kms})"
        )
    if code == "NoSuchBucket":
        return f"NoSuchBucket: bucket {bucket} does not exist (check the name in s3://{bucket}/{prefix})"
    if code in _BAD_CREDENTIALS:
        return f"{code}: AWS rejected the credentials: {message}"
    return f"{code}: {message}"


def _code(exc: ClientError) -> str:
    return str(
        exc.response.get("Error", {}).get("Code")
        or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        or "ClientError"
    )


def _message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message") or exc).strip()
