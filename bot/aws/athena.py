"""`scan --athena`: the only boto3 calls for Glue, Athena and the query results in S3.

Glue `GetTable` says how the table is laid out; Athena runs the queries; each query's results
CSV is streamed from its S3 output location (not paged through `GetQueryResults`, which returns
1,000 rows a call). Every failure becomes an `AthenaError`: one line, with the fix.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError, PartialCredentialsError

from bot.aws.s3 import NO_CREDENTIALS, split_spec

CLIENT_CONFIG = Config(retries={"mode": "standard"}, user_agent_extra="rootcheck")
CHUNK = 1 << 20  # bytes of the results file read at a time
POLICY = "see the Athena policy in deploy/README.md"
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AllAccessDisabled"}


class AthenaError(Exception):
    """Why the Athena scan cannot go on: one line that says what to do."""


@dataclass(frozen=True)
class QueryStatus:
    """One `GetQueryExecution` answer, reduced to what the scan needs."""

    state: str  # QUEUED, RUNNING, SUCCEEDED, FAILED or CANCELLED
    scanned: int  # DataScannedInBytes so far
    reason: str  # StateChangeReason (with Athena's error type for a failure), or ""
    location: str | None  # the results CSV, s3://…


class Athena:
    """Glue, Athena and S3 clients of the current credentials and Region, shared by every call."""

    def __init__(self, workgroup: str | None):
        self.workgroup = workgroup
        try:
            session = boto3.session.Session()
            self._glue = session.client("glue", config=CLIENT_CONFIG)
            self._athena = session.client("athena", config=CLIENT_CONFIG)
            self._s3 = session.client("s3", config=CLIENT_CONFIG)
        except NoRegionError:
            raise AthenaError(
                "no AWS Region: set AWS_DEFAULT_REGION (or the region of your AWS_PROFILE) "
                "to the Region of the Athena table"
            ) from None
        except BotoCoreError as exc:  # e.g. AWS_PROFILE names a profile that does not exist
            raise AthenaError(f"cannot set up AWS: {exc}") from None
        self.region = self._athena.meta.region_name

    def table(self, database: str, name: str) -> dict:
        """The table's Glue entry (`glue:GetTable`)."""
        try:
            return self._glue.get_table(DatabaseName=database, Name=name)["Table"]
        except ClientError as exc:
            code, message = _error(exc)
            if code == "EntityNotFoundException":
                raise AthenaError(
                    f"table {database}.{name} is not in the Glue Data Catalog of {self.region}: "
                    f"{message} (check the name and AWS_DEFAULT_REGION, or create it: rootcheck athena-table "
                    "--bucket s3://… prints the DDL)"
                ) from None
            raise self._failure(
                exc,
                f"reading table {database}.{name} from the Glue Data Catalog",
                f"grant glue:GetTable (and glue:GetDatabase) on the catalog, database {database} "
                f"and table {database}/{name}",
            ) from None
        except (BotoCoreError, NoCredentialsError) as exc:
            raise _unreachable(exc, "Glue") from None

    def start(self, sql: str, database: str) -> str:
        """Start a query; its id."""
        request = {"QueryString": sql, "QueryExecutionContext": {"Database": database, "Catalog": "AwsDataCatalog"}}
        if self.workgroup:
            request["WorkGroup"] = self.workgroup
        try:
            return self._athena.start_query_execution(**request)["QueryExecutionId"]
        except ClientError as exc:
            code, message = _error(exc)
            if code == "InvalidRequestException" and "output location" in message.lower():
                raise AthenaError(
                    f"Athena has nowhere to write the results: {message} (set a query result location "
                    f"on workgroup {self.workgroup or 'primary'}, or name a workgroup that has one: "
                    "--athena WORKGROUP/DATABASE.TABLE)"
                ) from None
            if code == "InvalidRequestException" and "workgroup" in message.lower():
                raise AthenaError(
                    f"workgroup {self.workgroup}: {message} (check the name in --athena "
                    f"WORKGROUP/DATABASE.TABLE and the Region {self.region})"
                ) from None
            raise self._failure(
                exc,
                "starting an Athena query",
                "grant athena:StartQueryExecution, athena:GetQueryExecution and "
                f"athena:StopQueryExecution on workgroup {self.workgroup or 'primary'}",
            ) from None
        except (BotoCoreError, NoCredentialsError) as exc:
            raise _unreachable(exc, "Athena") from None

    def status(self, query_id: str) -> QueryStatus:
        """Where the query is (`athena:GetQueryExecution`)."""
        try:
            execution = self._athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        except ClientError as exc:
            raise self._failure(
                exc, f"following Athena query {query_id}", "grant athena:GetQueryExecution on the workgroup"
            ) from None
        except (BotoCoreError, NoCredentialsError) as exc:
            raise _unreachable(exc, "Athena") from None
        status = execution.get("Status", {})
        reason = status.get("StateChangeReason") or ""
        error = status.get("AthenaError") or {}
        if error.get("ErrorMessage") and error["ErrorMessage"] not in reason:
            reason = f"{reason} {error['ErrorMessage']}".strip()
        return QueryStatus(
            state=status.get("State", "QUEUED"),
            scanned=int(execution.get("Statistics", {}).get("DataScannedInBytes") or 0),
            reason=reason,
            location=execution.get("ResultConfiguration", {}).get("OutputLocation"),
        )

    def stop(self, query_id: str) -> None:
        """Stop a query (`athena:StopQueryExecution`); a failure to stop it is an AthenaError too."""
        try:
            self._athena.stop_query_execution(QueryExecutionId=query_id)
        except ClientError as exc:
            raise self._failure(
                exc,
                f"stopping Athena query {query_id} (stop it in the Athena console)",
                "grant athena:StopQueryExecution on the workgroup",
            ) from None
        except (BotoCoreError, NoCredentialsError) as exc:
            raise _unreachable(exc, "Athena") from None

    def results(self, location: str) -> Iterator[bytes]:
        """The results CSV, streamed in blocks of about a MiB (cut anywhere, even inside a character)."""
        try:
            bucket, key = split_spec(location)
            yield from self._s3.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(CHUNK)
        except ClientError as exc:
            code, message = _error(exc)
            if code in ("NoSuchKey", "NoSuchBucket", "404"):
                raise AthenaError(
                    f"the results {location} are gone ({code}): a lifecycle rule on the results "
                    "location may have removed them; run the scan again"
                ) from None
            raise self._failure(
                exc,
                f"reading the results {location}",
                f"grant s3:GetObject on {location.rsplit('/', 1)[0]}/* (and kms:Decrypt on its "
                "key if the results are encrypted with KMS)",
            ) from None
        except (BotoCoreError, NoCredentialsError) as exc:
            raise _unreachable(exc, "S3") from None
        except ValueError as exc:  # a location that is not s3://bucket/key
            raise AthenaError(f"cannot read the results {location}: {exc}") from None

    def _failure(self, exc: ClientError, doing: str, grant: str) -> AthenaError:
        code, message = _error(exc)
        if code in _DENIED:
            return AthenaError(f"AccessDenied {doing}: {message} ({grant}; {POLICY})")
        return AthenaError(f"{code} {doing}: {message}")


def _error(exc: ClientError) -> tuple[str, str]:
    error = exc.response.get("Error", {})
    code = error.get("Code") or str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or "ClientError")
    return str(code), str(error.get("Message") or exc).strip()


def _unreachable(exc: Exception, service: str) -> AthenaError:
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return AthenaError(NO_CREDENTIALS)
    return AthenaError(f"cannot reach {service}: {exc}")
