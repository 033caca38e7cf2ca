"""One base session; per-account assumed-role credentials that refresh themselves; cached clients.

A new `boto3.Session` costs about half a second of model loading. Each account instead gets a
light botocore session that shares the base session's data loader and one ready-made set of event
handlers (registering them per session costs ~10 ms of CPU and ~130 KiB), created once per process
and reused by every sweep. Its credentials are botocore `DeferredRefreshableCredentials`: AssumeRole
runs on first use and again shortly before expiry, about once per account per lifetime.
"""

from __future__ import annotations

import gc
import threading
from typing import Any, Callable

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import CredentialProvider, CredentialResolver, DeferredRefreshableCredentials
from botocore.hooks import HierarchicalEmitter

from bot.models import Account

CLIENT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 6},  # explicit: botocore 1.44 changed the default
    connect_timeout=5,
    read_timeout=30,
    max_pool_connections=4,
    user_agent_extra="rootcheck",
)
SESSION_NAME = "rootcheck-audit"
ROLE_DURATION_SECONDS = 3600


class _AssumedRoleProvider(CredentialProvider):
    """Hands botocore refreshable credentials that call AssumeRole through the base session."""

    METHOD = "rootcheck-assume-role"

    def __init__(self, refresh: Any):
        super().__init__()
        self._refresh = refresh

    def load(self) -> DeferredRefreshableCredentials:
        return DeferredRefreshableCredentials(refresh_using=self._refresh, method=self.METHOD)


class AwsSessions:
    """Clients per (account, service, region), all derived from one base session."""

    def __init__(self, role_name: str, external_id: str | None = None, region: str = "us-east-1"):
        self._core = botocore.session.Session()
        self.base = boto3.Session(botocore_session=self._core)
        self.region = self.base.region_name or region
        self.role_name = role_name
        self._external_id = external_id
        self._lock = threading.Lock()
        self._sessions: dict[str, botocore.session.Session] = {}
        self._clients: dict[tuple[str, str, str], Any] = {}
        self._making: dict[tuple[int, Any], threading.Lock] = {}
        # The event handlers of every account session: botocore's built-in ones and boto3's, registered
        # once here instead of once per account (~10 ms and ~130 KiB each). Clients get a copy of them
        # (botocore copies a session's handlers into each client); nothing registers on the shared set.
        self._account_hooks = HierarchicalEmitter()
        boto3.Session(botocore_session=botocore.session.Session(event_hooks=self._account_hooks))
        self._exceptions = self._core._get_internal_component("exceptions_factory")  # noqa: SLF001
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
        return self._cached(("", service, region or self.region), lambda: self.base.client(
            service, region_name=region or self.region, config=CLIENT_CONFIG))

    def client(self, account: Account, service: str, region: str | None = None) -> Any:
        role = self.role_arn(account)
        if role is None:
            return self.base_client(service, region)
        key = (account.id, service, region or self.region)
        return self._cached(key, lambda: self._account_session(account.id, role).create_client(
            service, region_name=region or self.region, config=CLIENT_CONFIG))

    def open(self, account: Account) -> None:
        """Assume the account's role now (once; botocore refreshes it later), so a denied role
        fails one task instead of every call."""
        role = self.role_arn(account)
        if role is not None:
            self._account_session(account.id, role).get_credentials().get_frozen_credentials()

    def _cached(self, key: tuple[str, str, str], make: Any) -> Any:
        return self._once(self._clients, key, make)

    def _once(self, store: dict, key: Any, make: Callable[[], Any]) -> Any:
        """store[key], made once: concurrent callers for one key wait for the first (a client or a
        session costs milliseconds of CPU under the GIL); other keys are never blocked."""
        with self._lock:
            value = store.get(key)
            if value is not None:
                return value
            making = self._making.setdefault((id(store), key), threading.Lock())
        with making:
            with self._lock:
                value = store.get(key)
            if value is None:
                value = make()
                # A client is thousands of objects that live as long as the process. gc.freeze() takes every
                # object alive now out of the cyclic collector's sight (reference counting still frees
                # them); without it each full collection walks all clients, and a first sweep of 500
                # accounts paused every thread 14 times, up to 1 s each (a quarter of its CPU). The cost:
                # a cycle that is alive now and becomes garbage later is never collected. It happens once
                # per new client or session (the first sweep, a new account), not on every sweep.
                gc.freeze()
                with self._lock:
                    store[key] = value
                    self._making.pop((id(store), key), None)
        return value

    def _account_session(self, account_id: str, role_arn: str) -> botocore.session.Session:
        def make() -> botocore.session.Session:
            # What boto3.Session(botocore_session=core, region_name=...) would set up, without
            # registering boto3's handlers once more (they are in the shared set already)
            core = botocore.session.Session(event_hooks=self._account_hooks, include_builtin_handlers=False)
            core.user_agent_name = self._core.user_agent_name  # "Boto3 .. Botocore/..", as the base's clients
            core.user_agent_version = self._core.user_agent_version
            core.user_agent_extra = self._core.user_agent_extra
            core.set_config_variable("region", self.region)
            core.register_component("data_loader", self._core.get_component("data_loader"))
            # one set of exception classes per service, not one per account (~60 KiB an account)
            core._register_internal_component("exceptions_factory", self._exceptions)  # noqa: SLF001
            core.register_component("credential_provider", CredentialResolver(
                [_AssumedRoleProvider(lambda: self._assume(role_arn))]))
            return core
        return self._once(self._sessions, account_id, make)

    def _assume(self, role_arn: str) -> dict:
        params = {"RoleArn": role_arn, "RoleSessionName": SESSION_NAME, "DurationSeconds": ROLE_DURATION_SECONDS}
        if self._external_id:
            params["ExternalId"] = self._external_id
        credentials = self.base_client("sts").assume_role(**params)["Credentials"]
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": credentials["Expiration"].isoformat(),
        }
