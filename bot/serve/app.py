"""The one wiring module: settings → store, AWS, Slack client, Bolt app, scheduler, HTTP server.

`rootcheck serve` is one process per replica: a threaded WSGI server (waitress) for
/slack/events, /healthz and /metrics; Socket Mode when SLACK_APP_TOKEN is set; the scheduler.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.authorization import AuthorizeResult

from bot.checks.grouping import HIGH_RISK_EVENTS
from bot.metrics import Metrics
from bot.serve.monitor import Monitor
from bot.serve.operations import Operations
from bot.slack import actions, commands, confirm_listeners
from bot.slack.authz import Authorizer
from bot.slack.confirm import Confirmer
from bot.slack.delivery import Deliverer
from bot.slack.notifier import Notifier, make_client
from bot.slack.people import People
from bot.store import Store
from bot.sweeper import Sweeper
from bot.timeutil import utcnow

log = logging.getLogger(__name__)
LISTENER_THREADS = 32  # Bolt's default of 5 would let lazy listeners queue (ours run in the request thread)
WORK_THREADS = 8
WORK_QUEUE = 256  # requests waiting for a work thread; past it, people are told to try again


class Busy(Exception):
    """The work queue is full: the request is refused now rather than queued without bound."""


class Work:
    """The listeners' work pool, with a bounded queue: a flood of clicks or commands (or a Slack
    that answers slowly) cannot grow memory without end; whoever is refused is told so."""

    def __init__(self, threads: int = WORK_THREADS, queue: int = WORK_QUEUE):
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="rootcheck-work")
        self._slots = threading.BoundedSemaphore(threads + queue)

    def submit(self, job: Callable[[], None]) -> None:
        if not self._slots.acquire(blocking=False):
            raise Busy()
        future = self._pool.submit(_logged(job))
        future.add_done_callback(lambda _: self._slots.release())

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)


def build_bot(settings, store: Store, clock=None, **collector_options) -> Operations:
    """Everything but the network listeners; tests and `serve` build the same object."""
    kwargs = {"clock": clock} if clock else {}
    holder = f"{socket.gethostname()}:{os.getpid()}"
    client = make_client(settings.slack_bot_token.get_secret_value(), settings.slack_api_url)
    sweeper = Sweeper(settings, **collector_options)
    monitor = Monitor(
        store,
        sweeper,
        settings.channel,
        settings.lookback,
        settings.remind_after,
        holder,
        HIGH_RISK_EVENTS | frozenset(settings.high_risk_events),
        settings.owner_tag,
        **kwargs,
    )
    metrics = Metrics()
    deliverer = Deliverer(
        store,
        Notifier(client),
        settings.remediation_url,
        settings.channel,
        monitor.account_name,
        settings.sweep_interval,
        settings.admins,
        holder,
        metrics=metrics,
        **kwargs,
    )
    people = People(client)
    authz = Authorizer(people, settings.admins, settings.channel, monitor.known, monitor.target)
    confirmer = Confirmer(
        store,
        deliverer.notifier,
        people,
        monitor.known,
        monitor.account_name,
        holder,
        settings.confirm_timeout,
        settings.remind_after,
        clock or utcnow,
    )
    return Operations(settings, store, monitor, deliverer, authz, metrics, holder, confirmer, **kwargs)


def build_app(settings, bot: Operations, work: Work, socket_mode: bool) -> App:
    """The Bolt app with every listener registered; no Slack call is made here."""
    client = bot.deliverer.notifier.client
    token = client.token

    def authorize(enterprise_id: str | None, team_id: str | None, user_id: str | None) -> AuthorizeResult:
        # One workspace, one bot token: no auth.test on the request path. Bolt's default would call it
        # for every request until one succeeds, so a burst after start-up (or a slow Slack) held acks.
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, user_id=user_id, bot_token=token)

    app = App(
        client=client,
        authorize=authorize,
        token_verification_enabled=False,
        signing_secret=None if socket_mode else settings.slack_signing_secret.get_secret_value(),
        # Every listener acks and hands its work to `work`, so it returns at once: run it in the
        # request thread and answer when it returns, rather than hand it to a second pool and poll
        # (every 10 ms) for the ack: that made the median ack 2-3x slower in bench/ack_latency.py.
        request_verification_enabled=not socket_mode,
        process_before_response=True,
        listener_executor=ThreadPoolExecutor(LISTENER_THREADS, thread_name_prefix="rootcheck-listener"),
    )

    commands.register(app, commands.Commands(bot), work.submit, Busy)
    actions.register(app, bot, work.submit, Busy)
    confirm_listeners.register(app, bot, work.submit, Busy)
    return app


def wsgi_app(bot: Operations, app: App | None) -> Callable:
    """/healthz and /metrics always; /slack/events when given the Bolt app (HTTP mode)."""
    slack = SlackRequestHandler(app) if app is not None else None

    def application(environ: dict, start_response: Callable) -> Any:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        if path == "/healthz" and method in ("GET", "HEAD"):
            ok, body = bot.health()
            return _respond(start_response, 200 if ok else 503, "application/json", json.dumps(body).encode())
        if path == "/metrics" and method in ("GET", "HEAD"):
            return _respond(start_response, 200, "text/plain; version=0.0.4; charset=utf-8", bot.metrics.render())
        if slack is not None and path == "/slack/events":
            started = time.monotonic()
            try:
                return slack(environ, start_response)
            finally:
                bot.metrics.ack_latency.observe(time.monotonic() - started)
        return _respond(start_response, 404, "text/plain", b"not found\n")

    return application


def start_socket_mode(app: App, app_token: str) -> Any:
    from slack_bolt.adapter.socket_mode import SocketModeHandler  # noqa: PLC0415

    handler = SocketModeHandler(app, app_token, web_client=app.client)
    handler.connect()
    return handler


def _respond(start_response: Callable, status: int, content_type: str, body: bytes) -> list[bytes]:
    reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
    start_response(f"{status} {reason}", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def _logged(job: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        try:
            job()
        except Exception:  # noqa: BLE001 - a listener's background work must never die silently
            log.exception("background work failed")

    return run
