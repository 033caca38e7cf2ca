"""One base session, clients shared by every account, and per-account credentials that refresh themselves.

An account is its credentials, not its clients: one client per (service, Region) serves every account.
Before each HTTP attempt is signed, a `before-sign` handler puts the credentials of the account the
calling worker acts for (`acting_as`, a `ContextVar`) into `request.context['signing']['request_credentials']`,
which botocore (>= 1.34.70) signs with instead of the client's own. A call made outside `acting_as`
raises `NoAccountContext` before anything is sent: a shared client never signs with the hub's
credentials by accident (that would read the hub's events as a member's).

Each member account's credentials are botocore `DeferredRefreshableCredentials`: AssumeRole through
one shared STS client on first use, and again when botocore's advisory refresh window opens. The
expiry botocore sees is pulled forward by a random part of the credentials' lifetime, so credentials
assumed in one sweep are not all refreshed in the same sweep an hour later. AssumeRole counts against
the hub's STS request rate, shared with everything else in the hub account: it is spaced to at most
`ASSUME_ROLE_RATE` calls per second.
"""

from __future__ import annotations

import contextvars
import gc
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config
from botocore.credentials import Credentials, DeferredRefreshableCredentials

from bot.models import Account
from bot.pacing import Pacer

SESSION_NAME = "rootcheck-audit"
ROLE_DURATION_SECONDS = 3600
ASSUME_ROLE_RATE = 50.0  # per second, hub-wide: well above a sweep's need (~30/s for 10,000 accounts at 16 workers)
ADVISORY_REFRESH = timedelta(minutes=15)  # botocore refreshes assumed-role credentials this long before expiry
JITTER_SHARE = 0.25  # of the time between issue and botocore's refresh window, taken off the expiry at random

# The hub's own calls (STS, Organizations, SQS): botocore's standard retries, one quota for the hub.
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 4},
    connect_timeout=5,
    read_timeout=30,
    user_agent_extra="rootcheck",
)

_ACTING_AS: contextvars.ContextVar[Credentials] = contextvars.ContextVar("rootcheck_account_credentials")


class NoAccountContext(RuntimeError):
    """A call through a shared account client outside `AwsSessions.acting_as`: a bug, never signed."""


def _sign_for_current_account(request: Any, **kwargs: Any) -> None:
    """The one `before-sign` handler of every shared account client."""
    credentials = _ACTING_AS.get(None)
    if credentials is None:
        raise NoAccountContext(
            f"{kwargs.get('operation_name')}: a shared AWS client was called outside "
            "AwsSessions.acting_as(account); refusing to sign it with the hub's credentials"
        )
    request.context.setdefault("signing", {})["request_credentials"] = credentials


class AwsSessions:
    """The hub's session, shared clients per (service, Region), and each account's credentials.

    Account clients are configured without botocore retries: on a client shared by every account,
    standard mode's single retry quota would let one throttled account spend every account's retries,
    and its backoff would sleep in a worker. The collector retries instead, per account, on its timer.
    """

    def __init__(
        self, role_name: str, external_id: str | None = None, region: str = "us-east-1", max_pool_connections: int = 16
    ):
        self.base = boto3.Session()
        self.region = self.base.region_name or region
        self.role_name = role_name
        self._external_id = external_id
        pool = {"max_pool_connections": max_pool_connections}  # the pool bounds sockets, per client
        self._hub_config = CLIENT_CONFIG.merge(Config(**pool))
        self._account_config = CLIENT_CONFIG.merge(
            Config(retries={"mode": "standard", "total_max_attempts": 1}, **pool)
        )
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, str, str], Any] = {}
        self._credentials: dict[str, Credentials] = {}
        self._assume_pace = Pacer(1.0 / ASSUME_ROLE_RATE)
        self._identity: dict | None = None

    def identity(self) -> dict:
        """The base credentials' caller identity (Account, Arn); raises NoCredentialsError."""
        if self._identity is None:
            self._identity = self.base_client("sts").get_caller_identity()
        return self._identity

    def partition(self) -> str:
        return self.identity()["Arn"].split(":")[1]

    def role_arn(self, account: Account) -> str | None:
        """The role to assume for an account; None for the hub itself (its own credentials)."""
        if account.role_arn:
            return account.role_arn
        if account.id == self.identity()["Account"]:
            return None
        return f"arn:{self.partition()}:iam::{account.id}:role/{self.role_name}"

    def base_client(self, service: str, region: str | None = None) -> Any:
        """A client signed with the hub's own credentials (STS, Organizations): never an account's."""
        return self._client("hub", service, region or self.region)

    def client(self, service: str, region: str | None = None) -> Any:
        """The shared client for (service, Region); call it only inside `acting_as(account)`."""
        return self._client("account", service, region or self.region)

    @contextmanager
    def acting_as(self, account: Account) -> Iterator[None]:
        """Calls made by this thread inside the block are signed with `account`'s credentials."""
        token = _ACTING_AS.set(self.credentials(account))
        try:
            yield
        finally:
            _ACTING_AS.reset(token)

    def credentials(self, account: Account) -> Credentials:
        """The account's credentials, made once: the hub's own, or refreshable assumed-role ones."""
        credentials = self._credentials.get(account.id)  # every task asks: no lock once made
        if credentials is None:
            role = self.role_arn(account)
            with self._lock:
                credentials = self._credentials.get(account.id)
                if credentials is None:
                    credentials = self._credentials[account.id] = (
                        self.base.get_credentials()
                        if role is None
                        else DeferredRefreshableCredentials(
                            refresh_using=lambda: self._assume(role), method="rootcheck-assume-role"
                        )
                    )
        return credentials

    def assume_wait(self, account: Account) -> float:
        """Seconds before `open(account)` may call AssumeRole (0: now, or no call is needed), so that
        a worker never sleeps for the hub's AssumeRole pace; a refresh inside a call still waits there."""
        if self.role_arn(account) is None or not self.credentials(account).refresh_needed():
            return 0.0
        return self._assume_pace.ready_in("AssumeRole")

    def open(self, account: Account) -> None:
        """Assume the account's role now (once; botocore refreshes it later), so a denied role
        fails one task instead of every call."""
        self.credentials(account).get_frozen_credentials()

    def _client(self, kind: str, service: str, region: str) -> Any:
        key = (kind, service, region)
        with self._lock:  # a handful of clients per process: building one under the lock is fine
            client = self._clients.get(key)
            if client is None:
                config = self._hub_config if kind == "hub" else self._account_config
                client = self.base.client(service, region_name=region, config=config)
                if kind == "account":
                    client.meta.events.register("before-sign", _sign_for_current_account)
                self._clients[key] = client
                # A client and the service model it loaded are ~10^5 objects that live as long as the process:
                # out of the cyclic collector's walks, a first sweep of 1,000 accounts spends 0.1 s instead of
                # 1.5 s collecting (a full collection holds the GIL, so every worker waits).
                gc.freeze()
        return client

    def _assume(self, role_arn: str) -> dict:
        params = {"RoleArn": role_arn, "RoleSessionName": SESSION_NAME, "DurationSeconds": ROLE_DURATION_SECONDS}
        if self._external_id:
            params["ExternalId"] = self._external_id
        self._assume_pace.hold("AssumeRole")
        credentials = self.base_client("sts").assume_role(**params)["Credentials"]
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": jittered_expiry(credentials["Expiration"], datetime.now(UTC)).isoformat(),
        }


def jittered_expiry(expiration: datetime, now: datetime, draw: float | None = None) -> datetime:
    """The expiry botocore is told: up to `JITTER_SHARE` of the time until its refresh window earlier.

    10,000 credentials assumed within one sweep would otherwise all enter the refresh window in the same
    sweep; this spreads their AssumeRole calls over several. Credentials already inside the window
    (shorter than 15 minutes) are left as they are.
    """
    usable = expiration - ADVISORY_REFRESH - now
    if usable <= timedelta(0):
        return expiration
    return expiration - usable * JITTER_SHARE * (random.random() if draw is None else draw)
