"""A small AWS stand-in HTTP server that real boto3 clients talk to.

It speaks the real wire protocols of the few calls rootcheck makes, so botocore
serialises requests and parses answers exactly as it does against AWS:

* CloudTrail ``LookupEvents``          JSON 1.1   (``X-Amz-Target``)
* IAM ``GenerateCredentialReport``,
  ``GetCredentialReport``, ``ListAccountAliases``   query -> XML
* STS ``GetCallerIdentity``, ``AssumeRole``        query -> XML
* Account ``ListRegions``              rest-JSON  (``POST /listRegions``)
* Organizations ``ListAccounts``,
  ``ListTagsForResource``              JSON 1.1   (the hub only; every registered account is a member)

Point boto3 at it with ``AWS_ENDPOINT_URL_{CLOUDTRAIL,IAM,STS,ACCOUNT,ORGANIZATIONS}`` (see
:meth:`AwsStandIn.env`) or ``endpoint_url=``.  All services share one base URL.

Who is calling and where
    Every request is routed by the SigV4 credential scope in ``Authorization``
    (``Credential=AKID/20261128/us-east-1/cloudtrail/aws4_request``): the
    service name picks the protocol, the region is the CloudTrail region, and the
    access key id is looked up in a key table to find the caller's account.  The
    hub key (default ``AKIAHUBTESTKEY000001``) belongs to the hub account
    (default ``111111111111``); ``AssumeRole`` issues ``ASIA...`` keys that belong
    to the role's account and expire.  Signatures are NOT verified.

Typical use::

    standin = AwsStandIn(latency=0.0, rate_per_second=2.0, external_id="xid")
    url = standin.start()
    standin.add_account("222222222222", alias="prod",
                        report_csv=root_report_csv("222222222222", mfa_active=False),
                        deny={"cloudtrail:LookupEvents"})
    standin.add_events("222222222222", "us-east-1", [record, ...])
    os.environ.update(standin.env())
    ...
    standin.stats.snapshot()
    standin.stop()

As a process (benchmarks, running the bot by hand)::

    python -m tests.fakes.aws_standin --port 0 --accounts 1000 \
        --seed-root-logins 10 --latency 0.1 [--config accounts.json] [--manifest out.json]

prints its base URL on one line and serves until SIGTERM/SIGINT.  Unsigned
``GET /_standin/stats`` returns the counters as JSON, ``GET /_standin/health``
answers ``ok``.

Only the standard library is used.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import collections
import csv
import fnmatch
import hashlib
import io
import json
import math
import os
import re
import secrets
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape as _xml_escape

__all__ = [
    "AwsStandIn",
    "Stats",
    "CREDENTIAL_REPORT_COLUMNS",
    "DEFAULT_REGIONS",
    "HUB_ACCOUNT",
    "HUB_ACCESS_KEY",
    "HUB_SECRET_KEY",
    "root_report_csv",
    "root_login_record",
    "main",
]

HUB_ACCOUNT = "111111111111"
HUB_ACCESS_KEY = "AKIAHUBTESTKEY000001"
HUB_SECRET_KEY = "standin/hub/secret/key/0000000000000000"

IAM_NS = "https://iam.amazonaws.com/doc/2010-05-08/"
STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
CLOUDTRAIL_TARGET_PREFIX = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101."

CREDENTIAL_REPORT_COLUMNS = (
    "user",
    "arn",
    "user_creation_time",
    "password_enabled",
    "password_last_used",
    "password_last_changed",
    "password_next_rotation",
    "mfa_active",
    "access_key_1_active",
    "access_key_1_last_rotated",
    "access_key_1_last_used_date",
    "access_key_1_last_used_region",
    "access_key_1_last_used_service",
    "access_key_2_active",
    "access_key_2_last_rotated",
    "access_key_2_last_used_date",
    "access_key_2_last_used_region",
    "access_key_2_last_used_service",
    "cert_1_active",
    "cert_1_last_rotated",
    "cert_2_active",
    "cert_2_last_rotated",
)

_DEFAULT_ENABLED = (
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "ap-south-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-southeast-1",
    "ap-southeast-2",
    "sa-east-1",
)
_DEFAULT_OPT_IN = ("af-south-1", "ap-east-1", "eu-south-1", "me-south-1")
#: Region name -> RegionOptStatus.  CloudTrail calls into a region whose status is
#: DISABLED/DISABLING answer ``UnrecognizedClientException``, as AWS does.
DEFAULT_REGIONS: dict[str, str] = {
    **{r: "ENABLED_BY_DEFAULT" for r in _DEFAULT_ENABLED},
    **{r: "DISABLED" for r in _DEFAULT_OPT_IN},
}

_SCOPE_RE = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request")
_ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/(?:[\w+=,.@/-]*/)?([\w+=,.@-]{1,64})$")
_SESSION_NAME_RE = re.compile(r"^[\w+=,.@-]{2,64}$")
_LOOKUP_KEYS = {
    "EventId",
    "EventName",
    "ReadOnly",
    "Username",
    "ResourceType",
    "ResourceName",
    "EventSource",
    "AccessKeyId",
}
_PROTOCOLS = {"cloudtrail": "json", "iam": "query", "sts": "query", "account": "rest-json", "organizations": "json"}


# --------------------------------------------------------------------------- helpers


def _fmt_bool(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _fmt_time(value: Any) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat(timespec="seconds")
    return str(value)


def root_report_csv(
    account_id: str = HUB_ACCOUNT,
    *,
    user_creation_time: Any = "2019-03-04T10:11:12+00:00",
    password_enabled: Any = "not_supported",
    password_last_used: Any = "no_information",
    password_last_changed: Any = "not_supported",
    password_next_rotation: Any = "not_supported",
    mfa_active: Any = True,
    key1_active: Any = False,
    key1_last_rotated: Any = "N/A",
    key1_last_used: Any = "N/A",
    key1_last_used_region: str = "N/A",
    key1_last_used_service: str = "N/A",
    key2_active: Any = False,
    key2_last_rotated: Any = "N/A",
    key2_last_used: Any = "N/A",
    key2_last_used_region: str = "N/A",
    key2_last_used_service: str = "N/A",
    cert1_active: Any = False,
    cert1_last_rotated: Any = "N/A",
    cert2_active: Any = False,
    cert2_last_rotated: Any = "N/A",
    extra_rows: Iterable[Mapping[str, Any]] = (),
) -> str:
    """Build a credential-report CSV (22-column header + ``<root_account>`` row).

    The defaults describe a clean root user: password fields ``not_supported`` /
    ``no_information``, MFA on, no access keys, no certificates.  Booleans become
    ``true``/``false``; ``datetime`` values become ISO-8601 UTC (``+00:00``).
    ``extra_rows`` are further rows (e.g. IAM users) as column -> value mappings;
    missing columns default to ``N/A`` (``false`` for the ``*_active`` columns).
    """
    root = {
        "user": "<root_account>",
        "arn": f"arn:aws:iam::{account_id}:root",
        "user_creation_time": user_creation_time,
        "password_enabled": password_enabled,
        "password_last_used": password_last_used,
        "password_last_changed": password_last_changed,
        "password_next_rotation": password_next_rotation,
        "mfa_active": mfa_active,
        "access_key_1_active": key1_active,
        "access_key_1_last_rotated": key1_last_rotated,
        "access_key_1_last_used_date": key1_last_used,
        "access_key_1_last_used_region": key1_last_used_region,
        "access_key_1_last_used_service": key1_last_used_service,
        "access_key_2_active": key2_active,
        "access_key_2_last_rotated": key2_last_rotated,
        "access_key_2_last_used_date": key2_last_used,
        "access_key_2_last_used_region": key2_last_used_region,
        "access_key_2_last_used_service": key2_last_used_service,
        "cert_1_active": cert1_active,
        "cert_1_last_rotated": cert1_last_rotated,
        "cert_2_active": cert2_active,
        "cert_2_last_rotated": cert2_last_rotated,
    }
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CREDENTIAL_REPORT_COLUMNS)
    for row in (root, *extra_rows):
        values = []
        for col in CREDENTIAL_REPORT_COLUMNS:
            default = "false" if col.endswith("_active") else "N/A"
            v = row.get(col, default)
            values.append(_fmt_bool(v) if isinstance(v, bool) else _fmt_time(v))
        writer.writerow(values)
    return out.getvalue()


def root_login_record(
    account_id: str,
    when: datetime | float | None = None,
    *,
    mfa_used: bool = False,
    success: bool = True,
    region: str = "us-east-1",
    event_id: str | None = None,
    source_ip: str = "192.0.2.10",
) -> dict:
    """A real-shaped CloudTrail record of a root ``ConsoleLogin`` (for seeding)."""
    if when is None:
        when = time.time()
    if not isinstance(when, datetime):
        when = datetime.fromtimestamp(float(when), UTC)
    record = {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "Root",
            "principalId": account_id,
            "arn": f"arn:aws:iam::{account_id}:root",
            "accountId": account_id,
            "accessKeyId": "",
        },
        "eventTime": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "signin.amazonaws.com",
        "eventName": "ConsoleLogin",
        "awsRegion": region,
        "sourceIPAddress": source_ip,
        "userAgent": "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
        "requestParameters": None,
        "responseElements": {"ConsoleLogin": "Success" if success else "Failure"},
        "additionalEventData": {
            "LoginTo": "https://console.aws.amazon.com/console/home",
            "MobileVersion": "No",
            "MFAUsed": "Yes" if mfa_used else "No",
        },
        "eventID": event_id or str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsConsoleSignIn",
        "managementEvent": True,
        "recipientAccountId": account_id,
        "eventCategory": "Management",
    }
    if not success:
        record["errorMessage"] = "Failed authentication"
    return record


def _parse_event_time(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _iso_ms(ts: float) -> str:
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _to_xml(value: Any) -> str:
    if isinstance(value, dict):
        return "".join(f"<{k}>{_to_xml(v)}</{k}>" for k, v in value.items() if v is not None)
    if isinstance(value, (list, tuple)):
        return "".join(f"<member>{_to_xml(v)}</member>" for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return _xml_escape(str(value))


def _b64_token(obj: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode()


def _unb64_token(token: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(token.encode()))


class AwsError(Exception):
    """An AWS error answer: ``code`` (``__type`` / ``<Code>``), message, HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status = code, message, status


# --------------------------------------------------------------------------- state


class Stats:
    """Thread-safe counters.  Read them with :meth:`snapshot` or the helpers.

    * ``calls[(service, action, account)]`` - every request received (errors too);
      ``account`` is the *caller's* account (``"unknown"`` for an unknown key).
    * ``errors[(service, action, code)]`` - error answers by code.
    * ``throttled[(account, region)]`` - ThrottlingException answers.
    * ``assume_role[account]`` - AssumeRole attempts naming a role in ``account``
      (``assume_role_ok`` counts the ones that issued credentials).
    * ``max_rate[(account, region)]`` - the most LookupEvents requests (throttled
      ones included) that arrived within any 1 s window.
    * ``assume_role_peak`` - the most AssumeRole requests that arrived within any 1 s window.
    * ``peak_connections`` - the most client connections open at once.
    * ``requests`` - with ``record_requests``: (service, action, Authorization,
      X-Amz-Security-Token) of every signed request, in arrival order.
    * ``pages`` - with ``record_pages``: every LookupEvents page answered, in order, as
      ``(time, account, region, (attribute key, value), event ids)``; ``time`` is the wall
      clock when the page was answered (after ``latency``). :meth:`page_served` finds one.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.calls: collections.Counter = collections.Counter()
            self.errors: collections.Counter = collections.Counter()
            self.throttled: collections.Counter = collections.Counter()
            self.assume_role: collections.Counter = collections.Counter()
            self.assume_role_ok: collections.Counter = collections.Counter()
            self.max_rate: dict = {}
            self.assume_role_peak = 0
            self.peak_connections = 0
            self.requests: list = []
            self.pages: list = []

    def _bump(self, name: str, key: Any, n: int = 1) -> None:
        with self._lock:
            getattr(self, name)[key] += n

    def _observe_rate(self, key: tuple, rate: int) -> None:
        with self._lock:
            if rate > self.max_rate.get(key, 0):
                self.max_rate[key] = rate

    def count(self, service: str | None = None, action: str | None = None, account: str | None = None) -> int:
        """Sum of ``calls`` matching the given (optional) service/action/account."""
        with self._lock:
            return sum(
                n
                for (s, a, acct), n in self.calls.items()
                if (service is None or s == service)
                and (action is None or a == action)
                and (account is None or acct == account)
            )

    def page_served(self, event_id: str) -> float | None:
        """When the first LookupEvents page holding ``event_id`` was answered (``record_pages``)."""
        with self._lock:
            return next((page[0] for page in self.pages if event_id in page[4]), None)

    @property
    def throttled_total(self) -> int:
        with self._lock:
            return sum(self.throttled.values())

    def snapshot(self) -> dict:
        """A JSON-friendly copy; tuple keys are joined with ``:``."""
        with self._lock:
            j = lambda c: {":".join(k) if isinstance(k, tuple) else k: v for k, v in c.items()}  # noqa: E731
            return {
                "calls": j(self.calls),
                "errors": j(self.errors),
                "throttled": j(self.throttled),
                "throttled_total": sum(self.throttled.values()),
                "assume_role": dict(self.assume_role),
                "assume_role_ok": dict(self.assume_role_ok),
                "max_rate": j(self.max_rate),
                "assume_role_peak": self.assume_role_peak,
                "peak_connections": self.peak_connections,
            }


@dataclass
class _Principal:
    access_key: str
    secret_key: str
    account: str
    arn: str
    user_id: str
    session_token: str | None = None
    expiration: float | None = None  # epoch seconds


@dataclass(frozen=True)
class _Event:
    sort_key: tuple  # (-time, -seq): ascending order == newest first
    time: float
    attrs: dict  # lookup attribute -> value(s)
    item: dict  # the LookupEvents item, ready to serialise


@dataclass
class _Account:
    account_id: str
    aliases: list = field(default_factory=list)
    report_csv: str | None = None
    report_state: str = "absent"  # absent | in_progress | complete | expired
    report_remaining: int = 0  # further Generate calls until COMPLETE
    report_generated: float | None = None
    deny: tuple = ()
    deny_assume_role: bool = False
    external_id: str | None = None
    regions: dict | None = None
    fail_regions: frozenset = frozenset()
    name: str | None = None
    tags: dict = field(default_factory=dict)
    rate_per_second: float | None = None  # overrides the stand-in's LookupEvents limit
    fail_next_pages: str | None = None  # error code answered to LookupEvents with a NextToken


# --------------------------------------------------------------------------- HTTP


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # default 5 drops SYNs at concurrency 64
    allow_reuse_address = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so botocore's pool reuses sockets
    server_version = "AwsStandIn/1.0"
    standin: AwsStandIn  # set on a per-instance subclass

    def setup(self) -> None:
        super().setup()
        # headers and body go out in two sends: without this, Nagle + delayed ACK add ~40 ms
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.standin._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.standin._track(self.connection, False)

    def log_message(self, fmt: str, *args: Any) -> None:  # quiet unless verbose
        if self.standin.verbose:
            sys.stderr.write("aws_standin: " + (fmt % args) + "\n")

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, headers, payload = self.standin._handle_http(self.command, self.path, self.headers, body)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


# --------------------------------------------------------------------------- the stand-in


class AwsStandIn:
    """In-process AWS stand-in; see the module docstring.

    Parameters (all keyword-only):
        latency: seconds slept before answering every request (no lock is held).
        rate_per_second: LookupEvents limit per (account, region); ``None``/0 turns
            it off.  A sliding window: at most ``ceil(rate)`` requests admitted in
            any ``ceil(rate)/rate`` seconds (2.0 -> 2 per 1 s).
        page_size: the most events one LookupEvents page returns (MaxResults is
            capped to it; AWS's maximum is 50).
        credential_lifetime: seconds AssumeRole credentials live (also capped by
            the request's DurationSeconds).  Expired keys get ``ExpiredToken``.
        external_id: the ExternalId every AssumeRole must carry (``None``: any).
        role_name: the only role name that exists in member accounts (``None``: any).
        report_ready_after: polls (Generate, or Get after the first) until the credential
            report is COMPLETE (0: the first call already answers COMPLETE).
        report_max_age: seconds after which Generate starts a new report over a complete
            one (AWS: 4 hours); younger, Generate answers COMPLETE and keeps it.
        record_requests: keep every signed request's Authorization and security token
            in ``stats.requests``.
        record_pages: keep every LookupEvents page answered (when, where, which event ids)
            in ``stats.pages``.
        fail_regions: regions where every CloudTrail call answers
            ``UnrecognizedClientException`` (as a disabled opt-in Region does).
        regions: RegionName -> RegionOptStatus for ListRegions (default
            :data:`DEFAULT_REGIONS`).
        hub_account / hub_access_key / hub_secret_key: the base credentials.
        host / port: where to listen (port 0: any free port).
        verbose: log each request to stderr.
    """

    LIST_REGIONS_DEFAULT_PAGE = 20
    MAX_SESSION_DURATION = 3600

    def __init__(
        self,
        *,
        latency: float = 0.0,
        rate_per_second: float | None = 2.0,
        page_size: int = 50,
        credential_lifetime: float = 3600,
        external_id: str | None = None,
        role_name: str | None = None,
        report_ready_after: int = 1,
        report_max_age: float = 4 * 3600,
        record_requests: bool = False,
        record_pages: bool = False,
        fail_regions: Iterable[str] = (),
        regions: Mapping[str, str] | None = None,
        hub_account: str = HUB_ACCOUNT,
        hub_access_key: str = HUB_ACCESS_KEY,
        hub_secret_key: str = HUB_SECRET_KEY,
        host: str = "127.0.0.1",
        port: int = 0,
        verbose: bool = False,
    ) -> None:
        self.latency = float(latency)
        self.rate_per_second = rate_per_second
        self.page_size = int(page_size)
        self.credential_lifetime = float(credential_lifetime)
        self.external_id = external_id
        self.role_name = role_name
        self.report_ready_after = int(report_ready_after)
        self.report_max_age = float(report_max_age)
        self.record_requests = record_requests
        self.record_pages = record_pages
        self._assume_arrivals: collections.deque = collections.deque()
        self.fail_regions = frozenset(fail_regions)
        self.regions = dict(regions or DEFAULT_REGIONS)
        self.hub_account = hub_account
        self.hub_access_key = hub_access_key
        self.hub_secret_key = hub_secret_key
        self.host, self.port = host, int(port)
        self.verbose = verbose
        self.stats = Stats()

        self._lock = threading.RLock()
        self._accounts: dict[str, _Account] = {}
        self._principals: dict[str, _Principal] = {}
        self._events: dict[tuple, tuple] = {}  # (acct, region) -> sorted tuple of _Event (copy on write)
        self._seq = 0
        self._key_counter = 0
        self._arrivals: dict[tuple, collections.deque] = collections.defaultdict(collections.deque)
        self._admitted: dict[tuple, collections.deque] = collections.defaultdict(collections.deque)
        self._conns: set = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

        self._principals[hub_access_key] = _Principal(
            hub_access_key,
            hub_secret_key,
            hub_account,
            f"arn:aws:iam::{hub_account}:user/rootcheck-hub",
            "AIDASTANDINHUBUSER01",
        )
        self.add_account(hub_account)

    # ------------------------------------------------------------ lifecycle

    def start(self) -> str:
        """Bind and serve in a daemon thread; returns the base URL."""
        if self._server is not None:
            return self.url
        handler = type("_BoundHandler", (_Handler,), {"standin": self})
        self._server = _Server((self.host, self.port), handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="aws-standin", kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving and drop open keep-alive connections."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> AwsStandIn:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env(self, region: str = "us-east-1") -> dict[str, str]:
        """AWS_* variables that point boto3 at this stand-in with the hub credentials.

        Merge them over ``os.environ`` (and drop any inherited ``AWS_PROFILE`` /
        ``AWS_SESSION_TOKEN``).  Config/credential files are set to ``os.devnull``
        so a developer's ``~/.aws`` cannot leak in; override ``AWS_CONFIG_FILE`` to
        use role profiles.
        """
        url = self.url
        return {
            "AWS_ACCESS_KEY_ID": self.hub_access_key,
            "AWS_SECRET_ACCESS_KEY": self.hub_secret_key,
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            "AWS_ENDPOINT_URL_CLOUDTRAIL": url,
            "AWS_ENDPOINT_URL_IAM": url,
            "AWS_ENDPOINT_URL_STS": url,
            "AWS_ENDPOINT_URL_ACCOUNT": url,
            "AWS_ENDPOINT_URL_ORGANIZATIONS": url,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }

    # ------------------------------------------------------------ seeding

    def add_account(
        self,
        account_id: str,
        *,
        alias: str | Iterable[str] | None = None,
        report_csv: str | None = None,
        report_state: str | None = None,
        deny: Iterable[str] | None = None,
        deny_assume_role: bool | None = None,
        external_id: str | None = None,
        regions: Mapping[str, str] | None = None,
        fail_regions: Iterable[str] | None = None,
        name: str | None = None,
        tags: Mapping[str, str] | None = None,
        rate_per_second: float | None = None,
        fail_next_pages: str | None = None,
    ) -> None:
        """Register (or update: ``None`` keeps the current value) a member account.

        alias: the ListAccountAliases answer (a string or a list).
        report_csv: the credential report text (default: a clean root row).
        report_state: ``"absent"`` (Get answers ReportNotPresent until Generate),
            ``"complete"`` (a report already exists) or ``"expired"``.
        deny: ``"service:Action"`` patterns (fnmatch; ``"iam:*"``, ``"*"``) answered
            AccessDenied / AccessDeniedException for callers in this account.
        deny_assume_role: AssumeRole into this account answers AccessDenied.
        external_id: per-account ExternalId, overriding the stand-in's.
        regions: per-account ListRegions answer (RegionName -> RegionOptStatus).
        fail_regions: regions whose CloudTrail calls answer UnrecognizedClientException.
        name: the account's name in Organizations ListAccounts (default ``account-<id>``).
        tags: the account's Organizations tags (ListTagsForResource).
        rate_per_second: this account's LookupEvents limit per Region, instead of the
            stand-in's (0: every LookupEvents call is throttled).
        fail_next_pages: an error code (e.g. ``InvalidNextTokenException``) answered to
            every LookupEvents call that asks for a further page.
        """
        if not re.fullmatch(r"\d{12}", account_id):
            raise ValueError(f"account id must be 12 digits: {account_id!r}")
        with self._lock:
            acct = self._accounts.get(account_id) or _Account(account_id)
            if alias is not None:
                acct.aliases = [alias] if isinstance(alias, str) else list(alias)
            if report_csv is not None:
                acct.report_csv = report_csv
            if report_state is not None:
                if report_state not in ("absent", "complete", "expired"):
                    raise ValueError(f"report_state: {report_state!r}")
                acct.report_state = report_state
                acct.report_generated = None if report_state == "absent" else time.time()
            if deny is not None:
                acct.deny = (deny,) if isinstance(deny, str) else tuple(deny)
            if deny_assume_role is not None:
                acct.deny_assume_role = bool(deny_assume_role)
            if external_id is not None:
                acct.external_id = external_id
            if regions is not None:
                acct.regions = dict(regions)
            if fail_regions is not None:
                acct.fail_regions = frozenset(fail_regions)
            if name is not None:
                acct.name = name
            if tags is not None:
                acct.tags = dict(tags)
            if rate_per_second is not None:
                acct.rate_per_second = rate_per_second
            if fail_next_pages is not None:
                acct.fail_next_pages = fail_next_pages
            self._accounts[account_id] = acct

    def add_events(self, account_id: str, region: str, records: Iterable[dict | str]) -> None:
        """Seed CloudTrail records (dicts or JSON strings) into (account, region).

        Records are served as given (``CloudTrailEvent`` is their JSON).  An
        unparsable ``eventTime`` (e.g. ``"redacted"``) is treated as "now".
        """
        if account_id not in self._accounts:
            self.add_account(account_id)
        new = []
        with self._lock:
            for record in records:
                if isinstance(record, str):
                    record = json.loads(record)
                self._seq += 1
                new.append(self._make_event(record, self._seq))
            key = (account_id, region)
            self._events[key] = tuple(sorted(self._events.get(key, ()) + tuple(new), key=lambda e: e.sort_key))

    @staticmethod
    def _make_event(record: dict, seq: int) -> _Event:
        ui = record.get("userIdentity") or {}
        typ = ui.get("type")
        if typ == "Root":
            username = "root"
        elif typ == "IAMUser":
            username = ui.get("userName")
        else:
            issuer = (ui.get("sessionContext") or {}).get("sessionIssuer") or {}
            username = issuer.get("userName") or ui.get("userName")
        ts = _parse_event_time(record.get("eventTime"))
        if ts is None:
            ts = time.time()
        ro = record.get("readOnly", False)
        read_only = ("true" if ro else "false") if isinstance(ro, bool) else str(ro).lower()
        event_id = record.get("eventID") or str(uuid.uuid4())
        access_key = ui.get("accessKeyId") or None
        resources = record.get("resources") or []
        item = {
            "EventId": event_id,
            "EventName": record.get("eventName"),
            "ReadOnly": read_only,
            "AccessKeyId": access_key,
            "EventTime": int(ts) if ts == int(ts) else ts,
            "EventSource": record.get("eventSource"),
            "Username": username,
            "Resources": [],
            "CloudTrailEvent": json.dumps(record),
        }
        item = {k: v for k, v in item.items() if v is not None}
        attrs = {
            "EventId": {event_id},
            "EventName": {record.get("eventName")},
            "ReadOnly": {read_only},
            "Username": {username},
            "EventSource": {record.get("eventSource")},
            "AccessKeyId": {access_key},
            "ResourceType": {r.get("type") for r in resources if isinstance(r, dict)},
            "ResourceName": {r.get("ARN") or r.get("arn") for r in resources if isinstance(r, dict)},
        }
        return _Event((-ts, -seq), ts, attrs, item)

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | str | os.PathLike, **overrides: Any) -> AwsStandIn:
        """Build a stand-in from a JSON config (a dict or a file path).

        Shape: constructor keywords at the top level, plus ``"accounts": [{"id":
        "222222222222", "alias": ..., "report_csv": ..., "report_root": {kwargs of
        root_report_csv}, "report_state": ..., "deny": [...], "deny_assume_role":
        ..., "external_id": ..., "regions": {...}, "fail_regions": [...],
        "events": {"us-east-1": [record | "path/to/record.json", ...]}}]``.
        Relative event paths are resolved against the config file's folder.
        ``overrides`` win over the file's keywords.
        """
        base = os.getcwd()
        if not isinstance(config, Mapping):
            path = os.fspath(config)
            base = os.path.dirname(os.path.abspath(path))
            with open(path, encoding="utf-8") as fh:
                config = json.load(fh)
        kwargs = {k: v for k, v in config.items() if k != "accounts"}
        kwargs.update(overrides)
        standin = cls(**kwargs)
        for spec in config.get("accounts", []):
            acct = str(spec["id"])
            report = spec.get("report_csv")
            if report is None and spec.get("report_root") is not None:
                report = root_report_csv(acct, **spec["report_root"])
            standin.add_account(
                acct,
                alias=spec.get("alias"),
                report_csv=report,
                report_state=spec.get("report_state"),
                deny=spec.get("deny"),
                deny_assume_role=spec.get("deny_assume_role"),
                external_id=spec.get("external_id"),
                regions=spec.get("regions"),
                fail_regions=spec.get("fail_regions"),
            )
            for region, records in (spec.get("events") or {}).items():
                loaded = []
                for rec in records:
                    if isinstance(rec, str) and not rec.lstrip().startswith("{"):
                        with open(os.path.join(base, rec), encoding="utf-8") as fh:
                            rec = json.load(fh)
                    loaded.append(rec)
                standin.add_events(acct, region, loaded)
        return standin

    # ------------------------------------------------------------ HTTP plumbing

    def _track(self, conn: Any, add: bool) -> None:
        with self._lock:
            (self._conns.add if add else self._conns.discard)(conn)
            open_now = len(self._conns)
        with self.stats._lock:
            self.stats.peak_connections = max(self.stats.peak_connections, open_now)

    def _handle_http(self, method: str, raw_path: str, headers: Any, body: bytes) -> tuple[int, dict, bytes]:
        split = urlsplit(raw_path)
        if split.path.startswith("/_standin/"):
            return self._control(split.path)

        auth = headers.get("Authorization") or ""
        m = _SCOPE_RE.search(auth)
        if not m:  # presigned query auth
            qs = dict(parse_qsl(split.query))
            cred = qs.get("X-Amz-Credential", "")
            m = _SCOPE_RE.search("Credential=" + cred) if cred else None
        if not m:
            return self._render_error(
                "query", "", AwsError("MissingAuthenticationToken", "Request is missing Authentication Token", 403)
            )
        access_key, _date, region, service = m.groups()
        protocol = _PROTOCOLS.get(service)
        if protocol is None:
            return self._render_error(
                "json", "", AwsError("UnknownServiceException", f"aws_standin does not serve {service!r}", 400)
            )

        params: dict = {}
        if protocol == "json":
            action = (headers.get("X-Amz-Target") or "").rsplit(".", 1)[-1]
        elif protocol == "query":
            params = dict(parse_qsl(split.query, keep_blank_values=True))
            params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            action = params.get("Action", "")
        else:
            action = {"/listRegions": "ListRegions"}.get(split.path, split.path.strip("/"))
        if protocol in ("json", "rest-json"):
            try:
                params = json.loads(body or b"{}")
            except ValueError:
                return self._render_error(
                    protocol, action, AwsError("SerializationException", "Request body is not valid JSON", 400)
                )

        token = headers.get("X-Amz-Security-Token")
        if self.record_requests:
            with self.stats._lock:
                self.stats.requests.append((service, action, auth, token))
        return self._dispatch(protocol, service, action, region, access_key, token, params)

    def _control(self, path: str) -> tuple[int, dict, bytes]:
        if path == "/_standin/health":
            return 200, {"Content-Type": "text/plain"}, b"ok"
        if path == "/_standin/stats":
            return 200, {"Content-Type": "application/json"}, json.dumps(self.stats.snapshot()).encode()
        return 404, {"Content-Type": "text/plain"}, b"not found"

    def _dispatch(
        self, protocol: str, service: str, action: str, region: str, access_key: str, token: str | None, params: dict
    ) -> tuple[int, dict, bytes]:
        now = time.time()
        with self._lock:
            principal = self._principals.get(access_key)
        self.stats._bump("calls", (service, action, principal.account if principal else "unknown"))

        handler: Callable[[], Any] | None = None
        early: AwsError | None = None
        try:
            handler = self._admit(protocol, service, action, region, principal, token, params, now)
        except AwsError as exc:
            early = exc

        if self.latency > 0:
            time.sleep(self.latency)  # no lock held

        try:
            if early is not None:
                raise early
            assert handler is not None
            result = handler()
        except AwsError as exc:
            self.stats._bump("errors", (service, action, exc.code))
            return self._render_error(protocol, action, exc)
        except Exception as exc:  # a bug here must still be a well-formed AWS answer
            err = AwsError("InternalFailure", f"aws_standin: {type(exc).__name__}: {exc}", 500)
            self.stats._bump("errors", (service, action, err.code))
            return self._render_error(protocol, action, err)
        return self._render_ok(protocol, service, action, result)

    def _admit(
        self,
        protocol: str,
        service: str,
        action: str,
        region: str,
        principal: _Principal | None,
        token: str | None,
        params: dict,
        now: float,
    ) -> Callable[[], Any]:
        """Authentication, region, authorisation and rate checks; returns the handler."""
        if principal is None or (principal.session_token and token != principal.session_token):
            if protocol == "query":
                raise AwsError("InvalidClientTokenId", "The security token included in the request is invalid.", 403)
            raise AwsError(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
                400 if protocol == "json" else 403,
            )
        if principal.expiration is not None and now >= principal.expiration:
            if protocol == "query":
                raise AwsError("ExpiredToken", "The security token included in the request is expired", 403)
            raise AwsError(
                "ExpiredTokenException",
                "The security token included in the request is expired",
                400 if protocol == "json" else 403,
            )
        with self._lock:
            acct = self._accounts[principal.account]
            status = (acct.regions or self.regions).get(region)
        if service == "cloudtrail" and (
            region in self.fail_regions or region in acct.fail_regions or status in ("DISABLED", "DISABLING")
        ):
            raise AwsError("UnrecognizedClientException", "The security token included in the request is invalid", 400)

        table = {
            ("cloudtrail", "LookupEvents"): self._lookup_events,
            ("iam", "GenerateCredentialReport"): self._generate_report,
            ("iam", "GetCredentialReport"): self._get_report,
            ("iam", "ListAccountAliases"): self._list_aliases,
            ("sts", "GetCallerIdentity"): self._caller_identity,
            ("sts", "AssumeRole"): self._assume_role,
            ("account", "ListRegions"): self._list_regions,
            ("organizations", "ListAccounts"): self._list_accounts,
            ("organizations", "ListTagsForResource"): self._list_tags,
        }
        fn = table.get((service, action))
        if fn is None:
            if protocol == "query":
                raise AwsError(
                    "InvalidAction", f"Could not find operation {action} for version {params.get('Version', '')}", 400
                )
            raise AwsError("UnknownOperationException", f"aws_standin does not implement {action}", 400)

        op = f"{service}:{action}"
        if service != "sts" and any(fnmatch.fnmatchcase(op, pat) for pat in acct.deny):
            msg = (
                f"User: {principal.arn} is not authorized to perform: {op} "
                f"because no identity-based policy allows the {op} action"
            )
            if protocol == "query":
                raise AwsError("AccessDenied", msg, 403)
            raise AwsError("AccessDeniedException", msg, 400 if protocol == "json" else 403)

        if (service, action) == ("sts", "AssumeRole"):
            self._observe_assume_role(now)
        rate = self.rate_per_second if acct.rate_per_second is None else acct.rate_per_second
        if (service, action) == ("cloudtrail", "LookupEvents") and (
            not self._rate_ok((acct.account_id, region), now, rate) or acct.rate_per_second == 0
        ):
            self.stats._bump("throttled", (acct.account_id, region))
            raise AwsError("ThrottlingException", "Rate exceeded", 400)

        return lambda: fn(principal, acct, region, params)

    def _observe_assume_role(self, now: float) -> None:
        with self._lock:
            arrivals = self._assume_arrivals
            arrivals.append(now)
            while arrivals[0] <= now - 1.0:
                arrivals.popleft()
            peak = len(arrivals)
        with self.stats._lock:
            self.stats.assume_role_peak = max(self.stats.assume_role_peak, peak)

    def _rate_ok(self, key: tuple, now: float, rate: float | None) -> bool:
        with self._lock:
            arrivals = self._arrivals[key]
            arrivals.append(now)
            while arrivals and arrivals[0] <= now - 1.0:
                arrivals.popleft()
            observed = len(arrivals)
            ok = True
            if rate:
                limit = max(1, math.ceil(rate))
                window = limit / float(rate)
                admitted = self._admitted[key]
                while admitted and admitted[0] <= now - window:
                    admitted.popleft()
                if len(admitted) >= limit:
                    ok = False
                else:
                    admitted.append(now)
        self.stats._observe_rate(key, observed)
        return ok

    # ------------------------------------------------------------ rendering

    @staticmethod
    def _request_id() -> str:
        return str(uuid.uuid4())

    def _render_ok(self, protocol: str, service: str, action: str, result: Any) -> tuple[int, dict, bytes]:
        rid = self._request_id()
        if protocol == "query":
            ns = IAM_NS if service == "iam" else STS_NS
            xml = (
                f'<{action}Response xmlns="{ns}"><{action}Result>{_to_xml(result)}</{action}Result>'
                f"<ResponseMetadata><RequestId>{rid}</RequestId></ResponseMetadata></{action}Response>"
            )
            return 200, {"Content-Type": "text/xml", "x-amzn-RequestId": rid}, xml.encode()
        ctype = "application/x-amz-json-1.1" if protocol == "json" else "application/json"
        return 200, {"Content-Type": ctype, "x-amzn-RequestId": rid}, json.dumps(result).encode()

    def _render_error(self, protocol: str, action: str, err: AwsError) -> tuple[int, dict, bytes]:
        rid = self._request_id()
        if protocol == "query":
            kind = "Receiver" if err.status >= 500 else "Sender"
            xml = (
                f"<ErrorResponse><Error><Type>{kind}</Type><Code>{_xml_escape(err.code)}</Code>"
                f"<Message>{_xml_escape(err.message)}</Message></Error>"
                f"<RequestId>{rid}</RequestId></ErrorResponse>"
            )
            return err.status, {"Content-Type": "text/xml", "x-amzn-RequestId": rid}, xml.encode()
        headers = {"x-amzn-RequestId": rid, "x-amzn-ErrorType": err.code}
        if protocol == "json":
            headers["Content-Type"] = "application/x-amz-json-1.1"
        else:
            headers["Content-Type"] = "application/json"
        body = json.dumps({"__type": err.code, "message": err.message}).encode()
        return err.status, headers, body

    # ------------------------------------------------------------ CloudTrail

    def _lookup_events(self, principal: _Principal, acct: _Account, region: str, p: dict) -> dict:
        attrs = p.get("LookupAttributes") or []
        if len(attrs) > 1:
            raise AwsError("InvalidLookupAttributesException", "You can only specify one lookup attribute.", 400)
        attr_key = attr_val = None
        if attrs:
            attr_key, attr_val = attrs[0].get("AttributeKey"), attrs[0].get("AttributeValue")
            if attr_key not in _LOOKUP_KEYS or attr_val is None:
                raise AwsError("InvalidLookupAttributesException", f"Invalid lookup attribute key: {attr_key}", 400)
        start, end = p.get("StartTime"), p.get("EndTime")
        start = float(start) if start is not None else None
        end = float(end) if end is not None else None
        if start is not None and end is not None and start > end:
            raise AwsError("InvalidTimeRangeException", "Start time must be earlier than or equal to end time.", 400)
        max_results = p.get("MaxResults")
        if max_results is not None and int(max_results) < 1:
            raise AwsError("InvalidMaxResultsException", "MaxResults must be between 1 and 50.", 400)
        limit = min(int(max_results or self.page_size), self.page_size)

        fingerprint = hashlib.sha256(
            json.dumps([acct.account_id, region, attr_key, attr_val, start, end, p.get("EventCategory")]).encode()
        ).hexdigest()[:16]
        cursor = None
        if p.get("NextToken") and acct.fail_next_pages:
            raise AwsError(acct.fail_next_pages, "The next page cannot be read.", 400)
        if p.get("NextToken"):
            try:
                tok = _unb64_token(p["NextToken"])
                assert tok["f"] == fingerprint
                cursor = tuple(tok["k"])
            except Exception:
                raise AwsError("InvalidNextTokenException", "Invalid NextToken.", 400) from None

        if p.get("EventCategory") == "insight":
            return {"Events": []}
        events = self._events.get((acct.account_id, region), ())
        pos = bisect.bisect_right(events, cursor, key=lambda e: e.sort_key) if cursor else 0
        out: list[_Event] = []
        more = False
        for ev in events[pos:]:
            if start is not None and ev.time < start:
                break  # newest first: everything after is older still
            if end is not None and ev.time > end:
                continue
            if attr_key is not None and attr_val not in ev.attrs[attr_key]:
                continue
            if len(out) == limit:
                more = True
                break
            out.append(ev)
        result: dict = {"Events": [e.item for e in out]}
        if more:
            result["NextToken"] = _b64_token({"k": list(out[-1].sort_key), "f": fingerprint})
        if self.record_pages:
            with self.stats._lock:
                self.stats.pages.append(
                    (
                        time.time(),
                        acct.account_id,
                        region,
                        (attr_key, attr_val),
                        frozenset(e.item["EventId"] for e in out),
                    )
                )
        return result

    # ------------------------------------------------------------ IAM

    def _generate_report(self, principal: _Principal, acct: _Account, region: str, p: dict) -> dict:
        with self._lock:
            if acct.report_state in ("absent", "expired"):
                acct.report_remaining = self.report_ready_after
                if acct.report_remaining <= 0:
                    acct.report_state, acct.report_generated = "complete", time.time()
                    return {"State": "COMPLETE"}
                acct.report_state = "in_progress"
                return {"State": "STARTED", "Description": "No report exists. Starting a new report generation task"}
            if acct.report_state == "in_progress":
                acct.report_remaining -= 1
                if acct.report_remaining <= 0:
                    acct.report_state, acct.report_generated = "complete", time.time()
                    return {"State": "COMPLETE"}
                return {"State": "INPROGRESS"}
            if time.time() - (acct.report_generated or 0) > self.report_max_age:
                acct.report_state, acct.report_remaining = "in_progress", self.report_ready_after
                if acct.report_remaining <= 0:
                    acct.report_state, acct.report_generated = "complete", time.time()
                    return {"State": "COMPLETE"}
                return {"State": "STARTED", "Description": "Starting a new report generation task"}
            return {"State": "COMPLETE"}

    def _get_report(self, principal: _Principal, acct: _Account, region: str, p: dict) -> dict:
        with self._lock:
            if acct.report_state == "in_progress":  # polling with Get advances generation too
                acct.report_remaining -= 1
                if acct.report_remaining <= 0:
                    acct.report_state, acct.report_generated = "complete", time.time()
            state, generated = acct.report_state, acct.report_generated
            content = acct.report_csv or root_report_csv(acct.account_id)
        if state == "absent":
            raise AwsError(
                "ReportNotPresent",
                "Credential report not present. Call GenerateCredentialReport to generate a new report.",
                410,
            )
        if state == "in_progress":
            raise AwsError("ReportInProgress", "Credential report is being generated.", 404)
        if state == "expired":
            raise AwsError(
                "ReportExpired",
                "The credential report is expired. Call GenerateCredentialReport to generate a new report.",
                410,
            )
        return {
            "Content": base64.b64encode(content.encode("utf-8")).decode("ascii"),
            "ReportFormat": "text/csv",
            "GeneratedTime": _iso_ms(generated or time.time()),
        }

    def _list_aliases(self, principal: _Principal, acct: _Account, region: str, p: dict) -> dict:
        aliases = list(acct.aliases)
        start = int(p.get("Marker") or 0)
        size = int(p.get("MaxItems") or 100)
        page = aliases[start : start + size]
        truncated = start + size < len(aliases)
        out: dict = {"AccountAliases": page, "IsTruncated": truncated}
        if truncated:
            out["Marker"] = str(start + size)
        return out

    # ------------------------------------------------------------ STS

    def _caller_identity(self, principal: _Principal, acct: _Account, region: str, p: dict) -> dict:
        return {"UserId": principal.user_id, "Account": principal.account, "Arn": principal.arn}

    def _assume_role(self, principal: _Principal, acct: _Account, region: str, p: dict) -> dict:
        role_arn = p.get("RoleArn", "")
        session = p.get("RoleSessionName", "")
        m = _ROLE_ARN_RE.match(role_arn)
        if not m:
            raise AwsError("ValidationError", f"{role_arn} is invalid", 400)
        target, name = m.groups()
        self.stats._bump("assume_role", target)
        if not _SESSION_NAME_RE.match(session):
            raise AwsError(
                "ValidationError",
                "1 validation error detected: Value at 'roleSessionName' failed to satisfy constraint",
                400,
            )
        duration = p.get("DurationSeconds")
        if duration is not None:
            duration = int(duration)
            if duration < 900 or duration > 43200:
                raise AwsError(
                    "ValidationError",
                    "1 validation error detected: Value at 'durationSeconds' failed to satisfy constraint",
                    400,
                )
            if duration > self.MAX_SESSION_DURATION:
                raise AwsError(
                    "ValidationError",
                    "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
                    400,
                )
        denied = AwsError(
            "AccessDenied",
            f"User: {principal.arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
            403,
        )
        with self._lock:
            target_acct = self._accounts.get(target)
            if target_acct is None or target_acct.deny_assume_role:
                raise denied
            if self.role_name is not None and name != self.role_name:
                raise denied
            wanted = target_acct.external_id if target_acct.external_id is not None else self.external_id
            if wanted is not None and p.get("ExternalId") != wanted:
                raise denied
            self._key_counter += 1
            lifetime = min(self.credential_lifetime, float(duration or self.MAX_SESSION_DURATION))
            role_id = f"AROASTANDIN{target}"[:21]
            issued = _Principal(
                access_key=f"ASIASTANDIN{self._key_counter:09d}",
                secret_key=secrets.token_urlsafe(30),
                account=target,
                arn=f"arn:aws:sts::{target}:assumed-role/{name}/{session}",
                user_id=f"{role_id}:{session}",
                session_token="FwoGZXIvYXdzEStandIn" + secrets.token_urlsafe(48),
                expiration=time.time() + lifetime,
            )
            self._principals[issued.access_key] = issued
        self.stats._bump("assume_role_ok", target)
        return {
            "Credentials": {
                "AccessKeyId": issued.access_key,
                "SecretAccessKey": issued.secret_key,
                "SessionToken": issued.session_token,
                "Expiration": _iso_ms(issued.expiration),
            },
            "AssumedRoleUser": {"AssumedRoleId": issued.user_id, "Arn": issued.arn},
        }

    # ------------------------------------------------------------ Organizations

    def _organization_caller(self, principal: _Principal) -> None:
        if principal.account != self.hub_account:
            raise AwsError("AWSOrganizationsNotInUseException", "Your account is not a member of an organization.", 400)

    def _list_accounts(self, principal: _Principal, acct: _Account, region: str, p: dict) -> dict:
        self._organization_caller(principal)
        size = int(p.get("MaxResults") or 20)
        if not 1 <= size <= 20:
            raise AwsError("InvalidInputException", "MaxResults must be between 1 and 20", 400)
        start = int(_unb64_token(p["NextToken"])["o"]) if p.get("NextToken") else 0
        with self._lock:
            accounts = sorted(self._accounts.values(), key=lambda a: a.account_id)[start : start + size + 1]
        out: dict = {
            "Accounts": [
                {
                    "Id": a.account_id,
                    "Arn": f"arn:aws:organizations::{self.hub_account}:account/o-standin/{a.account_id}",
                    "Email": f"{a.account_id}@example.com",
                    "Name": a.name or f"account-{a.account_id}",
                    "Status": "ACTIVE",
                    "State": "ACTIVE",
                    "JoinedMethod": "CREATED",
                }
                for a in accounts[:size]
            ]
        }
        if len(accounts) > size:
            out["NextToken"] = _b64_token({"o": start + size})
        return out

    def _list_tags(self, principal: _Principal, acct: _Account, region: str, p: dict) -> dict:
        self._organization_caller(principal)
        with self._lock:
            target = self._accounts.get(p.get("ResourceId", ""))
        if target is None:
            raise AwsError(
                "TargetNotFoundException",
                "We can't find a root, OU, account, or policy with the TargetId that you specified.",
                400,
            )
        return {"Tags": [{"Key": k, "Value": v} for k, v in sorted(target.tags.items())]}

    # ------------------------------------------------------------ Account

    def _list_regions(self, principal: _Principal, acct: _Account, region: str, p: dict) -> dict:
        target = acct
        if p.get("AccountId") and p["AccountId"] != acct.account_id:
            with self._lock:
                target = self._accounts.get(p["AccountId"])
            if target is None:
                raise AwsError(
                    "AccessDeniedException", f"The caller is not authorized to access account {p['AccountId']}", 403
                )
        wanted = set(p.get("RegionOptStatusContains") or ())
        regions = [
            {"RegionName": r, "RegionOptStatus": s}
            for r, s in sorted((target.regions or self.regions).items())
            if not wanted or s in wanted
        ]
        size = int(p.get("MaxResults") or self.LIST_REGIONS_DEFAULT_PAGE)
        if not 1 <= size <= 50:
            raise AwsError("ValidationException", "MaxResults must be between 1 and 50", 400)
        start = 0
        if p.get("NextToken"):
            try:
                start = int(_unb64_token(p["NextToken"])["o"])
            except Exception:
                raise AwsError("ValidationException", "Invalid NextToken", 400) from None
        out: dict = {"Regions": regions[start : start + size]}
        if start + size < len(regions):
            out["NextToken"] = _b64_token({"o": start + size})
        return out


# --------------------------------------------------------------------------- CLI


def _generated_account_id(i: int) -> str:
    return f"{200000000000 + i:012d}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tests.fakes.aws_standin", description="Serve an AWS stand-in until SIGTERM/SIGINT."
    )
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--config", help="JSON config file (see AwsStandIn.from_config)")
    ap.add_argument(
        "--accounts", type=int, default=0, help="generate N member accounts 200000000001.. (alias acct-00001..)"
    )
    ap.add_argument(
        "--seed-root-logins",
        type=int,
        default=0,
        help="K of the generated accounts (spread evenly) get one root ConsoleLogin "
        "in us-east-1, one hour ago, and a matching credential report",
    )
    ap.add_argument("--noise-events", type=int, default=0, help="IAM-user events per generated account in us-east-1")
    ap.add_argument("--latency", type=float, default=None)
    ap.add_argument("--rate", type=float, default=None, help="LookupEvents req/s per account+region (0: off)")
    ap.add_argument("--page-size", type=int, default=None)
    ap.add_argument("--credential-lifetime", type=float, default=None)
    ap.add_argument("--external-id", default=None)
    ap.add_argument("--role-name", default=None)
    ap.add_argument("--report-ready-after", type=int, default=None)
    ap.add_argument(
        "--report-max-age",
        type=float,
        default=None,
        help="seconds after which Generate makes a new report (default 4 h, as AWS)",
    )
    ap.add_argument("--manifest", help="write a JSON manifest (url, hub credentials, accounts)")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)

    overrides = {
        k: v
        for k, v in {
            "host": args.host,
            "port": args.port,
            "latency": args.latency,
            "rate_per_second": args.rate,
            "page_size": args.page_size,
            "credential_lifetime": args.credential_lifetime,
            "external_id": args.external_id,
            "role_name": args.role_name,
            "report_ready_after": args.report_ready_after,
            "report_max_age": args.report_max_age,
            "verbose": args.verbose or None,
        }.items()
        if v is not None
    }
    standin = AwsStandIn.from_config(args.config, **overrides) if args.config else AwsStandIn(**overrides)

    n, k = args.accounts, min(args.seed_root_logins, args.accounts)
    login_idx = {(j * n) // k for j in range(k)} if k else set()
    now = time.time()
    root_accounts = []
    for i in range(n):
        acct = _generated_account_id(i + 1)
        report = None
        if i in login_idx:
            when = datetime.fromtimestamp(now - 3600 - i, UTC)
            standin.add_events(acct, "us-east-1", [root_login_record(acct, when, mfa_used=True)])
            report = root_report_csv(acct, password_last_used=when.replace(microsecond=0))
            root_accounts.append(acct)
        standin.add_account(acct, alias=f"acct-{i + 1:05d}", name=f"acct-{i + 1:05d}", report_csv=report)
        if args.noise_events:
            standin.add_events(
                acct,
                "us-east-1",
                [
                    {
                        "eventVersion": "1.08",
                        "userIdentity": {
                            "type": "IAMUser",
                            "userName": "deployer",
                            "accountId": acct,
                            "arn": f"arn:aws:iam::{acct}:user/deployer",
                            "accessKeyId": "AKIAEXAMPLE",
                        },
                        "eventTime": datetime.fromtimestamp(now - 60 * (e + 1), UTC).strftime(
                            "%Y-%m-%dT%H:%M:%SZ"
                        ),
                        "eventSource": "s3.amazonaws.com",
                        "eventName": "ListBuckets",
                        "awsRegion": "us-east-1",
                        "readOnly": True,
                        "eventID": str(uuid.uuid4()),
                        "eventType": "AwsApiCall",
                        "recipientAccountId": acct,
                    }
                    for e in range(args.noise_events)
                ],
            )

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    url = standin.start()
    if args.manifest:
        with open(args.manifest, "w", encoding="utf-8") as fh:
            json.dump(
                {
                    "url": url,
                    "hub_account": standin.hub_account,
                    "hub_access_key": standin.hub_access_key,
                    "hub_secret_key": standin.hub_secret_key,
                    "accounts": [_generated_account_id(i + 1) for i in range(n)],
                    "root_login_accounts": root_accounts,
                    "env": standin.env(),
                },
                fh,
                indent=1,
            )
    print(url, flush=True)
    while not stop.wait(0.5):
        pass
    standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
