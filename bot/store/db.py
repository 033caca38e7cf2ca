"""Opening the database: engine options per dialect, and Alembic migrations applied at start.

SQLite runs in WAL mode with a busy timeout, so readers never block the writer. A database
whose schema is newer than this rootcheck is refused rather than guessed at.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

MIGRATIONS = Path(__file__).with_name("migrations")
MIGRATION_LOCK = 0x726F6F746D67  # "rootmg": replicas starting together migrate one at a time


class StoreError(Exception):
    """The store cannot be used as configured: one line naming what to fix."""


def open_engine(url: str) -> Engine:
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
    except (ArgumentError, SQLAlchemyError, ImportError) as exc:
        raise StoreError(f"ROOTCHECK_DATABASE_URL: cannot use it ({exc.__class__.__name__}: {exc})") from None
    return engine


def migrate(engine: Engine) -> str:
    """Upgrade the schema to this version's head; refuse a database from a newer rootcheck."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    script = ScriptDirectory.from_config(config)
    known = {rev.revision for rev in script.walk_revisions()}
    try:
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":  # held until this transaction ends
                connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
            current = MigrationContext.configure(connection).get_current_revision()
            if current is not None and current not in known:
                raise StoreError(f"the database schema ({current}) is newer than this rootcheck "
                                 f"(knows up to {script.get_current_head()}): upgrade rootcheck, "
                                 "or point ROOTCHECK_DATABASE_URL at another database")
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except OperationalError as exc:
        raise StoreError(f"ROOTCHECK_DATABASE_URL: cannot open the database ({exc.orig})") from None
    return script.get_current_head() or ""


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
