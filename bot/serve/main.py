"""`rootcheck serve`: start everything, then stop cleanly on SIGTERM (exit 0).

Order on start: settings, logging, store (migrated), the scheduler lock check for SQLite,
HTTP server, Socket Mode, scheduler. On SIGTERM: stop taking work, let in-flight jobs finish,
release the scheduler lock, close connections.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import NoReturn

from waitress.server import create_server

from bot.config import ConfigError, Settings, load_settings, require

log = logging.getLogger("rootcheck")
HTTP_THREADS = 16
STOP_TIMEOUT = 8.0  # seconds for running jobs: within `docker stop`'s default grace of 10 s


def main() -> int:
    from bot import logs  # noqa: PLC0415
    from bot.store import Store, StoreError  # noqa: PLC0415

    settings = load_settings()
    socket_mode = settings.slack_app_token is not None
    require(settings, "SLACK_BOT_TOKEN", "ROOTCHECK_CHANNEL", *(() if socket_mode else ("SLACK_SIGNING_SECRET",)))
    logs.configure(settings.log_format, _secrets(settings))
    try:
        store = Store(settings.database_url)
    except StoreError as exc:
        raise ConfigError(str(exc)) from None
    if store.is_sqlite and not store.leadership.try_acquire():
        raise ConfigError(
            f"ROOTCHECK_DATABASE_URL: another rootcheck serve already runs the scheduler on "
            f"{store.engine.url.database}; SQLite supports one replica, use PostgreSQL for several"
        )
    return _run(settings, store, socket_mode)


def _run(settings: Settings, store, socket_mode: bool) -> int:
    from bot.serve.app import Work, build_app, build_bot, start_socket_mode, wsgi_app  # noqa: PLC0415
    from bot.serve.scheduler import Scheduler  # noqa: PLC0415

    bot = build_bot(settings, store)
    work = Work()
    app = build_app(settings, bot, work, socket_mode)
    server = create_server(
        wsgi_app(bot, None if socket_mode else app),
        host=settings.host,
        port=settings.port,
        threads=HTTP_THREADS,
        ident="rootcheck",
    )
    http = threading.Thread(target=server.run, name="rootcheck-http", daemon=True)
    http.start()
    log.info("listening on %s:%s (%s mode)", settings.host, server.effective_port, "Socket" if socket_mode else "HTTP")
    app_token = settings.slack_app_token
    socket_handler = start_socket_mode(app, app_token.get_secret_value()) if app_token is not None else None
    # reminders are checked often enough for ROOTCHECK_REMIND_AFTER to mean what it says
    remind_every = min(30.0, max(0.5, settings.remind_after.total_seconds() / 4))
    bot.scheduler = Scheduler(bot, settings.sweep_interval, remind_every=remind_every)
    bot.scheduler.start()
    if settings.queue_url:
        from bot.serve.consumer import start_consumer  # noqa: PLC0415

        bot.consumer = start_consumer(settings.queue_url, bot)
    _wait_for_signal()
    log.info("stopping: finishing in-flight work")
    bot.deliverer.stopping.set()  # the post in flight finishes; the rest of its batch waits in the store
    if bot.consumer is not None:
        bot.consumer.stop()
    if socket_handler is not None:
        socket_handler.close()
    finished = bot.scheduler.stop(timeout=STOP_TIMEOUT)
    if not finished:
        log.warning(
            "stopping: a job did not finish within %ss; what it left is picked up at the next start", STOP_TIMEOUT
        )
    work.shutdown()
    server.close()
    store.close()
    log.info("stopped")
    if not finished:
        _exit_now(0)
    return 0


def _exit_now(code: int) -> NoReturn:
    """Exit without waiting for the job that did not finish (a long sweep): the interpreter's exit
    joins its thread, and first shuts down the pool its paced AWS calls are resubmitted to, so that
    wait never ended. What the job left is in the store, as after a kill -9, and is picked up at the
    next start (claims reconciled, cursors not advanced)."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _wait_for_signal() -> None:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass


def _secrets(settings: Settings) -> list[str]:
    values = [settings.slack_bot_token, settings.slack_signing_secret, settings.slack_app_token, settings.external_id]
    return [value.get_secret_value() for value in values if value is not None]
