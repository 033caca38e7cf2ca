"""One base session; per-account assumed-role credentials that refresh themselves; cached clients.

A new `boto3.Session` costs about half a second of model loading. Each account instead gets a
light botocore session that shares the base session's data loader, created once per process and
reused by every sweep. Its credentials are botocore `DeferredRefreshableCredentials`: AssumeRole
runs on first use and again shortly before expiry, about once per account per lifetime.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import CredentialProvider, CredentialResolver, DeferredRefreshableCredentials

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
        self._sessions: dict[str, boto3.Session] = {}
        self._clients: dict[tuple[str, str, str], Any] = {}
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
        return self._cached(key, lambda: self._account_session(account.id, role).client(
            service, region_name=region or self.region, config=CLIENT_CONFIG))

    def open(self, account: Account) -> None:
        """Assume the account's role now (once; botocore refreshes it later), so a denied role
        fails one task instead of every call."""
        role = self.role_arn(account)
        if role is not None:
            self._account_session(account.id, role).get_credentials().get_frozen_credentials()

    def _cached(self, key: tuple[str, str, str], make: Any) -> Any:
        with self._lock:
            client = self._clients.get(key)
        if client is None:
            client = make()
            with self._lock:
                client = self._clients.setdefault(key, client)
        return client

    def _account_session(self, account_id: str, role_arn: str) -> boto3.Session:
        with self._lock:
            session = self._sessions.get(account_id)
            if session is None:
                core = botocore.session.Session()
                core.register_component("data_loader", self._core.get_component("data_loader"))
                core.register_component("credential_provider", CredentialResolver(
                    [_AssumedRoleProvider(lambda: self._assume(role_arn))]))
                session = boto3.Session(botocore_session=core, region_name=self.region)
                self._sessions[account_id] = session
        return session

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
