"""Prometheus series (`rootcheck_*`) on a registry of our own, served at GET /metrics."""

from __future__ import annotations

import re
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

SLOW_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200)
_LABEL = re.compile(r"^[A-Za-z][A-Za-z0-9_.]{0,63}$")


def label(value: str | None) -> str:
    """A metric label value: an error code as AWS or Slack names it, or `other`; never free text (the
    port may be public: a message could carry an account id or an ARN)."""
    return value if value and _LABEL.match(value) else "other"


class Metrics:
    def __init__(self):
        r = self.registry = CollectorRegistry()
        self.sweeps = Counter("rootcheck_sweeps", "Sweeps finished, by result", ["result"], registry=r)
        self.sweep_seconds = Histogram(
            "rootcheck_sweep_duration_seconds", "Sweep duration", registry=r, buckets=SLOW_BUCKETS
        )
        self.accounts_checked = Counter("rootcheck_accounts_checked", "Accounts checked", registry=r)
        self.accounts_failed = Counter("rootcheck_accounts_failed", "Account checks that failed", registry=r)
        self.aws_errors = Counter("rootcheck_aws_errors", "AWS errors by code", ["code"], registry=r)
        self.findings = Counter(
            "rootcheck_findings", "New findings by kind and severity", ["kind", "severity"], registry=r
        )
        self.findings_grouped = Counter(
            "rootcheck_findings_grouped", "New findings that joined an existing alert", registry=r
        )
        self.alerts_opened = Counter(
            "rootcheck_alerts_opened", "Alerts opened (each one top-level message)", registry=r
        )
        self.posts = Counter("rootcheck_slack_posts", "Alerts posted to Slack", registry=r)
        self.edits = Counter("rootcheck_slack_edits", "Alert messages edited (chat.update)", registry=r)
        self.edits_coalesced = Counter(
            "rootcheck_slack_edits_coalesced",
            "Alert changes shown by a later edit instead of one of their own",
            registry=r,
        )
        self.render_failures = Counter("rootcheck_render_failures", "Alerts that could not be rendered", registry=r)
        self.high_risk_to_alert = Histogram(
            "rootcheck_high_risk_to_alert_seconds",
            "High-risk root call (event time) to its own alert in Slack",
            registry=r,
            buckets=(1, 2, 5, 10, 30, 60, 300, 600, 1800, 3600),
        )
        self.acks = Counter("rootcheck_acks", "Alerts acknowledged", registry=r)
        self.reminders = Counter("rootcheck_reminders", "Reminders posted", registry=r)
        self.slack_errors = Counter("rootcheck_slack_errors", "Slack errors by code", ["code"], registry=r)
        self.ack_latency = Histogram(
            "rootcheck_ack_latency_seconds",
            "Slack request received to ack()",
            registry=r,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5),
        )
        self.time_to_ack = Histogram(
            "rootcheck_time_to_acknowledge_seconds", "Alert posted to human ack", registry=r, buckets=SLOW_BUCKETS
        )
        self.last_sweep = Gauge("rootcheck_last_sweep_timestamp_seconds", "When the last sweep finished", registry=r)
        self.failing_accounts = Gauge("rootcheck_failing_accounts", "Accounts failing in the last sweep", registry=r)
        self.queue_messages = Counter("rootcheck_queue_messages", "Queue messages by result", ["result"], registry=r)
        self.event_to_post = Histogram(
            "rootcheck_event_to_post_seconds",
            "CloudTrail event time to Slack post",
            registry=r,
            buckets=(1, 2, 5, 10, 30, 60, 300, 600, 1800, 3600),
        )
        self.healthy = Gauge("rootcheck_healthy", "1 while /healthz answers 200", registry=r)

    def observe_ack(self, posted_at: datetime | None, now: datetime) -> None:
        self.acks.inc()
        if posted_at is not None:
            self.time_to_ack.observe((now - posted_at).total_seconds())

    def render(self) -> bytes:
        return generate_latest(self.registry)
