"""Settings from the environment (and `.env`), validated once at the edge.

A missing or invalid setting stops start-up with one line naming the variable. Tokens are
`SecretStr`, so neither a repr nor a log line can print them.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.timeutil import parse_duration

DEFAULT_REMEDIATION_URL = "https://docs.aws.amazon.com/IAM/latest/UserGuide/root-user-best-practices.html"
DEFAULT_CONCURRENCY = 16
_ACCOUNT = re.compile(r"^\d{12}$")
_ADMIN = re.compile(r"^[UWS][A-Z0-9]{2,}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_EVENT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{1,127}$")

CsvList = Annotated[list[str], NoDecode]


class ConfigError(Exception):
    """One line that names the variable and says what is wrong with it."""


def _env(name: str, default: Any = None, **kwargs: Any) -> Any:
    if "default_factory" in kwargs:
        return Field(validation_alias=name, **kwargs)
    return Field(default, validation_alias=name, **kwargs)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    slack_bot_token: SecretStr | None = _env("SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = _env("SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = _env("SLACK_APP_TOKEN")
    slack_api_url: str = _env("ROOTCHECK_SLACK_API_URL", "https://slack.com/api/")
    channel: str | None = _env("ROOTCHECK_CHANNEL")
    accounts: CsvList = _env("ROOTCHECK_ACCOUNTS", default_factory=list)
    accounts_file: str | None = _env("ROOTCHECK_ACCOUNTS_FILE")
    owner_tag: str = _env("ROOTCHECK_OWNER_TAG", "rootcheck-owners", min_length=1, max_length=128)
    confirm_timeout: timedelta = _env("ROOTCHECK_CONFIRM_TIMEOUT", timedelta(minutes=15))
    high_risk_events: CsvList = _env("ROOTCHECK_HIGH_RISK_EVENTS", default_factory=list)
    org_discovery: bool = _env("ROOTCHECK_ORG_DISCOVERY", False)
    role_name: str = _env("ROOTCHECK_ROLE_NAME", "RootCheckAudit")
    external_id: SecretStr | None = _env("ROOTCHECK_EXTERNAL_ID")
    regions: CsvList = _env("ROOTCHECK_REGIONS", default_factory=lambda: ["us-east-1"])
    sweep_interval: timedelta = _env("ROOTCHECK_SWEEP_INTERVAL", timedelta(minutes=5))
    lookback: timedelta = _env("ROOTCHECK_LOOKBACK", timedelta(hours=24))
    database_url: str = _env("ROOTCHECK_DATABASE_URL", "sqlite:///rootcheck.db")
    admins: CsvList = _env("ROOTCHECK_ADMINS", default_factory=list)
    remediation_url: str = _env("ROOTCHECK_REMEDIATION_URL", DEFAULT_REMEDIATION_URL)
    remind_after: timedelta = _env("ROOTCHECK_REMIND_AFTER", timedelta(minutes=30))
    concurrency: int = _env("ROOTCHECK_CONCURRENCY", DEFAULT_CONCURRENCY, ge=1, le=512)
    log_format: str = _env("ROOTCHECK_LOG_FORMAT", "text", pattern="^(text|json)$")
    queue_url: str | None = _env("ROOTCHECK_QUEUE_URL")
    retention: timedelta = _env("ROOTCHECK_RETENTION", timedelta(days=400))
    host: str = _env("ROOTCHECK_HOST", "0.0.0.0")
    port: int = _env("PORT", 3000, ge=0, le=65535)

    @field_validator("accounts", "admins", "regions", "high_risk_events", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("accounts")
    @classmethod
    def _account_ids(cls, value: list[str]) -> list[str]:
        bad = [item for item in value if not _ACCOUNT.match(item)]
        if bad:
            raise ValueError(f"not 12-digit account ids: {', '.join(bad)}")
        return list(dict.fromkeys(value))

    @field_validator("admins")
    @classmethod
    def _admin_ids(cls, value: list[str]) -> list[str]:
        bad = [item for item in value if not _ADMIN.match(item)]
        if bad:
            raise ValueError(f"not Slack user (U…/W…) or user-group (S…) ids: {', '.join(bad)}")
        return value

    @field_validator("high_risk_events")
    @classmethod
    def _event_names(cls, value: list[str]) -> list[str]:
        bad = [item for item in value if not _EVENT_NAME.match(item)]
        if bad:
            raise ValueError(f"not CloudTrail event names (like StopLogging): {', '.join(bad)}")
        return value

    @field_validator("regions")
    @classmethod
    def _region_names(cls, value: list[str]) -> list[str]:
        if [v.lower() for v in value] == ["all"]:
            return ["all"]
        bad = [item for item in value if not _REGION.match(item)]
        if bad or not value:
            raise ValueError(
                f"not AWS Region names: {', '.join(bad) or '(empty)'}; use e.g. us-east-1,eu-west-1 or all"
            )
        return list(dict.fromkeys(value))

    @field_validator("sweep_interval", "lookback", "remind_after", "retention", "confirm_timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if isinstance(value, (str, int, float)):
            duration = parse_duration(str(value))
            if duration.total_seconds() <= 0:
                raise ValueError("must be more than zero")
            return duration
        return value

    @property
    def all_regions(self) -> bool:
        return self.regions == ["all"]


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment; raises ConfigError naming the first bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]) if error.get("loc") else "configuration"
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        raise ConfigError(f"{name}: {message}") from None


def require(settings: Settings, *names: str) -> None:
    """Stop with one line when a setting that this command needs is missing."""
    fields = {field.validation_alias: key for key, field in Settings.model_fields.items()}
    for name in names:
        if not getattr(settings, fields[name]):
            raise ConfigError(f"{name}: required for this command but not set")
